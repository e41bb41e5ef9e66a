"""Parser fuzzing with hypothesis: only ``InstanceError`` ever escapes the parser, valid instances round-trip with
their hash, every single-rule mutation is rejected, and the checker agrees with a naive recomputation."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geoshare_opt import Instance, InstanceError, evaluate
from geoshare_opt.result import Result
from geoshare_opt.errors import ResultError

from strategies import JSON_VALUES, instance_dicts, mutated_instance_dicts

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(JSON_VALUES)
def test_parser_raises_only_instance_error_on_any_json(value):
    try:
        Instance.from_dict(value)
    except InstanceError as exc:
        assert "\n" not in str(exc)


@FAST
@given(st.dictionaries(st.sampled_from(["format", "version", "name", "nodes", "edges", "budget", "meta"]),
                       JSON_VALUES, max_size=7))
def test_parser_on_near_instances(d):
    d.setdefault("format", "geoshare-instance")
    d.setdefault("version", 1)
    try:
        Instance.from_dict(d)
    except InstanceError:
        pass


@FAST
@given(st.text(max_size=60))
def test_loads_on_any_text(text):
    try:
        Instance.loads(text)
    except InstanceError:
        pass
    try:
        Result.loads(text)
    except ResultError:
        pass


@FAST
@given(instance_dicts())
def test_valid_instances_parse_and_round_trip(d):
    inst = Instance.from_dict(d)
    again = Instance.from_dict(inst.to_dict())
    assert again.sha256 == inst.sha256
    assert Instance.loads(inst.dumps(indent=2)).sha256 == inst.sha256
    assert Instance.from_dict(json.loads(json.dumps(d))).sha256 == inst.sha256
    assert len(inst.nodes) == len(d["nodes"]) and len(inst.edges) == len(d["edges"])


@FAST
@given(mutated_instance_dicts())
def test_every_mutation_is_rejected(case):
    name, d, _ = case
    with pytest.raises(InstanceError):
        Instance.from_dict(d)


@FAST
@given(mutated_instance_dicts())
def test_mutations_rejected_from_text(case):
    name, d, _ = case
    try:
        text = json.dumps(d, allow_nan=False)
    except ValueError:
        return  # not expressible as JSON text
    with pytest.raises(InstanceError):
        Instance.loads(text)


def naive_objective(d: dict, labels: dict) -> float:
    """The objective straight from the definition, in plain Python."""
    total = 0.0
    for e in d["edges"]:
        if not e.get("hard", False) and labels[e["u"]] == labels[e["v"]]:
            total += float(e["w"])
    return total


def naive_feasible(d: dict, labels: dict) -> bool:
    types = {n["id"]: n["type"] for n in d["nodes"]}
    params = {n["id"]: n.get("params", 1) for n in d["nodes"]}
    classes: dict[int, list[str]] = {}
    for nid, c in labels.items():
        classes.setdefault(c, []).append(nid)
    if any(len({types[i] for i in members}) > 1 for members in classes.values()):
        return False
    if any(e.get("hard") and labels[e["u"]] == labels[e["v"]] for e in d["edges"]):
        return False
    b = d["budget"]
    if len(classes) > b["max_classes"]:
        return False
    for t, cap in b.get("max_classes_per_type", {}).items():
        if sum(1 for m in classes.values() if types[m[0]] == t) > cap:
            return False
    if "max_params" in b and sum(max(params[i] for i in m) for m in classes.values()) > b["max_params"]:
        return False
    return True


@FAST
@given(instance_dicts(), st.data())
def test_checker_matches_naive_recomputation(d, data):
    inst = Instance.from_dict(d)
    n = len(inst.nodes)
    raw = data.draw(st.lists(st.integers(min_value=-3, max_value=6), min_size=n, max_size=n))
    labels = {node.id: c for node, c in zip(inst.nodes, raw)}
    ev = evaluate(inst, labels)
    assert ev.objective == pytest.approx(naive_objective(d, labels), rel=1e-9, abs=1e-6)
    assert ev.feasible == naive_feasible(d, labels)
    assert ev.n_classes == len(set(raw))
    if ev.feasible:
        assert sum(ev.objective_per_type.values()) == pytest.approx(ev.objective, rel=1e-9, abs=1e-6)
    # relabelling classes never changes anything
    perm = {c: 100 - 7 * c for c in set(raw)}
    ev2 = evaluate(inst, np.array([perm[c] for c in raw]))
    assert ev2.objective == ev.objective and ev2.feasible == ev.feasible


@FAST
@given(JSON_VALUES)
def test_result_parser_raises_only_result_error(value):
    for candidate in (value, {"format": "geoshare-result", "version": 1, "instance_sha256": "0" * 64,
                              "solver": "x", "termination": "completed", "status": "feasible",
                              "objective": value, "assignment": value}):
        try:
            Result.from_dict(candidate)
        except ResultError as exc:
            assert "\n" not in str(exc)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(mutated_instance_dicts())
def test_cli_validate_on_mutations_is_one_line_exit_2(tmp_path, case):
    from click.testing import CliRunner
    from geoshare_opt.cli import cli
    name, d, _ = case
    path = tmp_path / "m.json"
    path.write_text(json.dumps(d))
    res = CliRunner().invoke(cli, ["validate", str(path)])
    assert res.exit_code == 2, (name, res.stdout, res.stderr)
    assert res.stdout == "" and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
