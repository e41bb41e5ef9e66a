"""Unit tests of the core: instance parsing and derived data, the checker, the result format, the solve driver."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from geoshare_opt import Instance, InstanceError, ResultError, evaluate
from geoshare_opt.api import run_backend, solve, warm_start_labels
from geoshare_opt.checker import canonical, check_result, find_instance, labels_from_assignment, objective_of_labels
from geoshare_opt.options import SolveOptions
from geoshare_opt.result import Result, compute_gap
from geoshare_opt.solvers import Registry
from geoshare_opt.solvers.base import Backend, Outcome

from conformance import brute_force_solve


def base_dict(**over):
    d = {"format": "geoshare-instance", "version": 1, "name": "t",
         "nodes": [{"id": "a", "type": "A"}, {"id": "b", "type": "A"}, {"id": "c", "type": "B"}],
         "edges": [{"u": "a", "v": "b", "w": 1.5}],
         "budget": {"max_classes": 2}}
    d.update(over)
    return d


# ---------------------------------------------------------------------- instance
def test_tiny_optimum_by_brute_force(tiny_instance):
    opt, labels = brute_force_solve(tiny_instance)
    assert opt == pytest.approx(2.0)
    assert evaluate(tiny_instance, labels).feasible


def test_round_trip_and_hash_stability(tiny_instance):
    d = tiny_instance.to_dict()
    again = Instance.from_dict(json.loads(json.dumps(d)))
    assert again.sha256 == tiny_instance.sha256
    # key order and whitespace do not change the hash
    shuffled = json.loads(json.dumps(d, sort_keys=True, indent=3))
    assert Instance.loads(json.dumps(shuffled, indent=5)).sha256 == tiny_instance.sha256
    # any content change does
    assert tiny_instance.with_budget(4, keep_caps=True).sha256 != tiny_instance.sha256


def test_save_load(tmp_path, tiny_instance):
    p = tmp_path / "i.json"
    tiny_instance.save(p)
    assert Instance.load(p).sha256 == tiny_instance.sha256
    assert not [x for x in tmp_path.iterdir() if x.name.endswith(".tmp")]


def test_integral_floats_read_as_integers():
    d = base_dict(budget={"max_classes": 2.0, "max_params": 10.0})
    d["nodes"][0]["params"] = 3.0
    inst = Instance.from_dict(d)
    assert inst.budget.max_classes == 2 and isinstance(inst.budget.max_classes, int)
    assert inst.nodes[0].params == 3 and isinstance(inst.nodes[0].params, int)


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d.update(format="other"), "'format'"),
    (lambda d: d.update(version=2), "unsupported version"),
    (lambda d: d.update(extra=1), "unknown top-level field"),
    (lambda d: d["nodes"].append({"id": "a", "type": "A"}), "duplicate node id"),
    (lambda d: d["edges"].append({"u": "a", "v": "zz", "w": 1}), "unknown node 'zz'"),
    (lambda d: d["edges"].append({"u": "b", "v": "b", "w": 1}), "self-loop"),
    (lambda d: d["edges"].append({"u": "b", "v": "a", "w": 1}), "duplicate edge"),
    (lambda d: d["edges"].append({"u": "a", "v": "c", "w": float("nan")}), "not finite"),
    (lambda d: d["edges"].append({"u": "a", "v": "c", "w": float("inf")}), "not finite"),
    (lambda d: d["edges"].append({"u": "a", "v": "c", "w": 10 ** 400}), "not finite"),
    (lambda d: d["edges"].append({"u": "a", "v": "c", "w": "1"}), "must be a number"),
    (lambda d: d["edges"].append({"u": "a", "v": "c", "w": True}), "must be a number"),
    (lambda d: d["edges"].append({"u": "a", "v": "c"}), "needs a weight"),
    (lambda d: d["edges"].append({"u": "a", "v": "c", "w": 1, "hard": True}), "must not carry a weight"),
    (lambda d: d["nodes"][0].update(params=-1), "non-negative integer"),
    (lambda d: d["nodes"][0].update(params=1.5), "non-negative integer"),
    (lambda d: d["nodes"][0].update(params=2 ** 60), "non-negative integer"),
    (lambda d: d["nodes"][0].update(params=True), "non-negative integer"),
    (lambda d: d["nodes"][0].update(id=""), "non-empty string 'id'"),
    (lambda d: d["nodes"][0].update(layer="3"), "layer"),
    (lambda d: d["nodes"][0].update(meta={"x": float("nan")}), "non-finite"),
    (lambda d: d.update(meta={"x": object()}), "not JSON data"),
    (lambda d: d.update(budget={"max_classes": 1}), "below the number of non-empty types"),
    (lambda d: d.update(budget={"max_classes": 0}), "positive integer"),
    (lambda d: d.update(budget={"max_classes": 2, "max_classes_per_type": {"Z": 1}}), "unknown type 'Z'"),
    (lambda d: d.update(budget={"max_classes": 2, "max_params": 1}), "max_params=1 is below 2"),
    (lambda d: d.update(budget=None), "'budget' must be an object"),
    (lambda d: d.update(nodes={}), "'nodes' must be a list"),
])
def test_bad_instances_one_line(mutate, needle):
    d = base_dict()
    mutate(d)
    with pytest.raises(InstanceError) as info:
        Instance.from_dict(d)
    msg = str(info.value)
    assert needle in msg and "\n" not in msg


@pytest.mark.parametrize("text, needle", [
    ("{", "malformed JSON"),
    ('{"w": NaN}', "non-finite"),
    ('{"w": 1e400}', "non-finite"),
    ("[" * 100000, "nested too deeply"),
    ("[]", "top level must be a JSON object"),
])
def test_bad_json_text(text, needle):
    with pytest.raises(InstanceError, match=needle):
        Instance.loads(text)


def test_unreadable_paths(tmp_path):
    with pytest.raises(InstanceError, match="not found"):
        Instance.load(tmp_path / "missing.json")
    with pytest.raises(InstanceError, match="directory"):
        Instance.load(tmp_path)
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InstanceError, match="UTF-8"):
        Instance.load(bad)


def test_numpy_scalars_from_python_callers():
    import networkx as nx
    g = nx.Graph()
    g.add_node(0, type="A", params=np.int64(5))
    g.add_node(1, type="A", params=np.int32(5))
    g.add_edge(0, 1, weight=np.float32(0.5))
    inst = Instance.from_networkx(g, 2)
    assert inst.params.tolist() == [5, 5]
    assert inst.edges[0].w == pytest.approx(0.5)
    json.dumps(inst.to_dict())  # still plain JSON


def test_parts_and_type_caps(tiny_instance):
    blk = tiny_instance.part("A")
    assert blk.n == 3 and np.allclose(blk.W, blk.W.T) and np.all(np.diag(blk.W) == 0)
    assert blk.hard[0, 2] and blk.hard[2, 0] and blk.W[0, 2] == 0
    assert blk.W[0, 1] == 1.0 and blk.W[1, 2] == -0.5
    assert blk.cap == 2            # per-type cap
    assert tiny_instance.part("B").cap == 2  # global 3 minus one class for A
    assert tiny_instance.part("B").W[0, 1] == 2.5    # the cross-type edge a-x is dropped
    assert tiny_instance.part("A") is blk and not blk.W.flags.writeable   # one shared, read-only part per type


def test_with_budget_goes_through_validation(tiny_instance):
    with pytest.raises(InstanceError):
        tiny_instance.with_budget(1)
    with pytest.raises(InstanceError):
        tiny_instance.with_budget(3, max_params=-1)


# ---------------------------------------------------------------------- checker
def test_evaluate_objective_and_breakdown(tiny_instance):
    ev = evaluate(tiny_instance, {"a": 5, "b": 7, "c": 7, "x": 1, "y": 1})
    assert ev.feasible and ev.objective == pytest.approx(2.0)
    assert ev.n_classes == 3 and ev.classes_per_type == {"A": 2, "B": 1}
    assert ev.stored_params == 4 + 4 + 3
    assert ev.objective_per_type == {"A": -0.5, "B": 2.5}


@pytest.mark.parametrize("assignment, needle", [
    ({"a": 0, "b": 1, "c": 0, "x": 2, "y": 2}, "hard edge"),
    ({"a": 0, "b": 1, "c": 1, "x": 0, "y": 2}, "mixes types"),
    ({"a": 0, "b": 1, "c": 1, "x": 2, "y": 3}, "exceed max_classes"),
    ({"a": 0, "b": 0, "c": 1, "x": 2, "y": 2}, None),  # {a,b}{c}{x,y}: feasible, params 4+2+3
])
def test_evaluate_violations(tiny_instance, assignment, needle):
    ev = evaluate(tiny_instance, assignment)
    if needle is None:
        assert ev.feasible
    else:
        assert not ev.feasible and any(needle in v for v in ev.violations)


def test_evaluate_caps():
    inst = Instance.build([{"id": i, "type": "t", "params": 5} for i in "abc"], [], 3,
                          max_classes_per_type={"t": 2}, max_params=10)
    ev = evaluate(inst, [0, 1, 2])
    assert not ev.feasible
    assert any("above its cap" in v for v in ev.violations)
    assert any("exceed max_params" in v for v in ev.violations)


@pytest.mark.parametrize("assignment, needle", [
    ({"a": 0}, "misses node"),
    ({"a": 0, "b": 0, "c": 0, "x": 1, "y": 1, "zz": 0}, "unknown node"),
    ({"a": 0.5, "b": 0, "c": 0, "x": 1, "y": 1}, "integers"),
    ({"a": True, "b": 0, "c": 0, "x": 1, "y": 1}, "integers"),
    ({"a": 2 ** 70, "b": 0, "c": 0, "x": 1, "y": 1}, "64-bit"),
    ([0, 1], "2 entries for 5 nodes"),
])
def test_bad_assignments(tiny_instance, assignment, needle):
    with pytest.raises(ResultError, match=needle):
        labels_from_assignment(tiny_instance, assignment)


def test_canonical_and_objective_of_labels(tiny_instance):
    assert canonical(np.array([7, 7, 3, 9, 3])).tolist() == [0, 0, 1, 2, 1]
    lab = np.array([0, 1, 1, 2, 2])
    assert objective_of_labels(tiny_instance, lab) == pytest.approx(evaluate(tiny_instance, lab).objective)


# ---------------------------------------------------------------------- result and gap
@pytest.mark.parametrize("obj, bound, gap", [
    (None, 1.0, None), (1.0, None, None), (0.0, 0.0, 0.0), (5.0, 5.0 - 1e-12, 0.0),
    (10.0, 5.0, 0.5), (-5.0, -10.0, 0.5), (0.0, -2.0, 1.0), (2.0, -2.0, 2.0),
])
def test_compute_gap(obj, bound, gap):
    assert compute_gap(obj, bound) == (None if gap is None else pytest.approx(gap))


def _result(**over):
    d = {"format": "geoshare-result", "version": 1, "instance_sha256": "0" * 64, "solver": "x",
         "termination": "optimal", "status": "feasible", "objective": 1.0, "bound": 1.0, "gap": 0.0,
         "wall_time_s": 0.1, "assignment": {"a": 0}}
    d.update(over)
    return d


@pytest.mark.parametrize("over, needle", [
    ({"format": "geoshare-instance"}, "'format'"),
    ({"version": 3}, "unsupported version"),
    ({"termination": "done"}, "unknown termination"),
    ({"status": "ok"}, "unknown status"),
    ({"assignment": {"a": "0"}}, "must be an integer"),
    ({"assignment": None}, "needs 'assignment'"),
    ({"objective": "1"}, "finite number"),
    ({"objective": None}, "needs a numeric 'objective'"),
    ({"bound": 10 ** 400}, "finite number"),
    ({"status": "none", "objective": None}, "assignment is present"),
    ({"options": []}, "must be objects"),
])
def test_bad_results(over, needle):
    with pytest.raises(ResultError, match=needle):
        Result.from_dict(_result(**over))


def test_result_nested_json():
    with pytest.raises(ResultError, match="nested too deeply"):
        Result.loads("[" * 100000)


# ---------------------------------------------------------------------- the driver
class _Fake(Backend):
    name = "fake"
    summary = "test double"
    exact = True
    gives_bound = True
    determinism = "deterministic"
    behaviour = None

    def run(self, instance, options, ctx):
        return type(self).behaviour(instance, options, ctx)


def _run(inst, behaviour, **opts):
    cls = type("F", (_Fake,), {"behaviour": staticmethod(behaviour)})
    return run_backend(inst, cls, SolveOptions(**opts))


GOOD = np.array([0, 1, 1, 2, 2])   # objective 2.0, optimal for tiny()
OK = np.array([0, 0, 1, 2, 2])     # objective 3.5, feasible


def test_driver_recomputes_objective_and_canonicalises(tiny_instance):
    res = _run(tiny_instance, lambda i, o, c: Outcome("optimal", GOOD + 10, 2.0))
    assert res.optimal and res.objective == pytest.approx(2.0) and res.gap == 0.0
    assert res.assignment == {"a": 0, "b": 1, "c": 1, "x": 2, "y": 2}
    assert check_result(tiny_instance, res) == []


def test_driver_keeps_incumbent_after_a_crash(tiny_instance):
    def crash(i, o, ctx):
        ctx.offer(OK)
        raise RuntimeError("boom")
    res = _run(tiny_instance, crash)
    assert res.termination == "error" and res.feasible and "boom" in res.message
    assert res.objective == pytest.approx(3.5)


def test_a_backends_numpy_and_infinite_stats_still_make_a_result_file(tiny_instance):
    """A third-party backend's stats may hold numpy numbers and arrays, tuples and infinities: the result is still
    one valid JSON document (inf as null), read back as written."""
    stats = {"nodes": np.int64(7), "bound": -float("inf"), "trace": (np.float32(1.5), float("nan")),
             "per_k": {np.int64(2): np.array([1, 2])}, "gap": np.float64(0.25)}
    res = _run(tiny_instance, lambda i, o, c: Outcome("optimal", GOOD, 2.0, stats=stats))
    back = Result.loads(res.dumps())
    assert back.stats == {"nodes": 7, "bound": None, "trace": [1.5, None], "per_k": {"2": [1, 2]}, "gap": 0.25}


def test_driver_keeps_incumbent_after_ctrl_c(tiny_instance):
    def interrupted(i, o, ctx):
        ctx.offer(OK)
        raise KeyboardInterrupt
    res = _run(tiny_instance, interrupted)
    assert res.termination == "interrupted" and res.feasible


def test_driver_prefers_better_offered_incumbent(tiny_instance):
    def worse_final(i, o, ctx):
        ctx.offer(GOOD)
        return Outcome("time_limit", OK, 1.0)
    res = _run(tiny_instance, worse_final)
    assert res.objective == pytest.approx(2.0) and res.bound == 1.0 and res.gap == pytest.approx(0.5)


def test_driver_rejects_infeasible_labels(tiny_instance):
    res = _run(tiny_instance, lambda i, o, c: Outcome("completed", np.array([0, 1, 0, 2, 2])))
    assert not res.feasible and "rejected by the checker" in res.message


def test_driver_drops_impossible_bound_and_false_claims(tiny_instance):
    res = _run(tiny_instance, lambda i, o, c: Outcome("optimal", OK, 3.0))
    assert res.termination == "optimal" and res.bound == 3.0  # 3.0 <= 3.5 is a valid bound
    res = _run(tiny_instance, lambda i, o, c: Outcome("optimal", OK, 9.0))
    assert res.termination == "error" and res.bound is None
    res = _run(tiny_instance, lambda i, o, c: Outcome("infeasible", OK))
    assert res.termination == "error" and res.feasible
    res = _run(tiny_instance, lambda i, o, c: Outcome("optimal", None, 1.0))
    assert res.termination == "error" and not res.feasible


def test_check_result_catches_tampering(tiny_instance):
    res = _run(tiny_instance, lambda i, o, c: Outcome("optimal", GOOD, 2.0))
    d = res.to_dict()
    for key, value in [("objective", 1.0), ("bound", 5.0), ("gap", 0.3)]:
        bad = Result.from_dict(dict(d, **{key: value}))
        assert check_result(tiny_instance, bad), key
    bad = Result.from_dict(dict(d, assignment=dict(d["assignment"], c=0)))  # a and c share: hard edge
    assert any("infeasible" in p for p in check_result(tiny_instance, bad))
    other = tiny_instance.with_budget(4, keep_caps=True)
    assert "not this one" in check_result(other, res)[0]


def test_warm_start_forms(tmp_path, tiny_instance):
    res = _run(tiny_instance, lambda i, o, c: Outcome("optimal", GOOD, 2.0))
    path = tmp_path / "r.json"
    res.save(path)
    for warm in (res, str(path), res.assignment, list(GOOD + 5)):
        assert warm_start_labels(tiny_instance, warm).tolist() == GOOD.tolist()
    with pytest.raises(ResultError, match="warm start does not fit"):
        warm_start_labels(tiny_instance, {"a": 0})


def test_solve_api_with_a_private_registry(tiny_instance):
    reg = Registry({}, entry_points=False)
    cls = type("F", (_Fake,), {"behaviour": staticmethod(lambda i, o, c: Outcome("optimal", GOOD, 2.0))})
    reg.register("fake", cls)
    res = solve(tiny_instance.to_dict(), "fake", registry=reg, seed=3, native={"k": 1})
    assert res.solver == "fake" and res.options["seed"] == 3 and res.options["native"] == {"k": 1}
    with pytest.raises(Exception, match="unknown solver 'nope'"):
        solve(tiny_instance, "nope", registry=reg)


@pytest.mark.parametrize("kw", [{"time_limit": -1}, {"time_limit": math.nan}, {"seed": -1}, {"threads": 0},
                                {"seed": True}])
def test_bad_options(kw):
    from geoshare_opt import InputError
    with pytest.raises(InputError):
        SolveOptions(**kw)


def test_core_never_imports_torch():
    import subprocess
    import sys
    code = ("import sys, geoshare_opt, geoshare_opt.api, geoshare_opt.compare, geoshare_opt.cli;"
            "from geoshare_opt.solvers import default_registry as r;"
            "[r.get(n) for n in r.names() if n in ('cpsat','highs','pulp','dsatur','anneal','auto')];"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


def test_ctrl_c_while_checking_keeps_the_answer(tiny_instance, monkeypatch):
    import geoshare_opt.api as api
    calls = {"n": 0}
    real = api.finish

    def flaky_finish(*a, **k):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(api, "finish", flaky_finish)
    res = _run(tiny_instance, lambda i, o, c: Outcome("completed", OK))
    assert res.feasible and res.termination == "completed" and "while checking" in res.message


def test_compare_rows_mark_best_and_bounds(tiny_instance):
    from geoshare_opt.compare import COLUMNS, compare
    reg = Registry({}, entry_points=False)
    reg.register("good", type("G", (_Fake,), {"behaviour": staticmethod(lambda i, o, c: Outcome("optimal", GOOD, 2.0))}))
    reg.register("ok", type("O", (_Fake,), {"behaviour": staticmethod(lambda i, o, c: Outcome("time_limit", OK, 1.5))}))
    reg.register("none", type("N", (_Fake,), {"behaviour": staticmethod(lambda i, o, c: Outcome("completed"))}))
    rows = compare([tiny_instance, tiny_instance.to_dict()], ["good", "ok", "none"], repeats=2, seed=5, registry=reg)
    assert len(rows) == 2 * 3 * 2 and all(set(COLUMNS) <= set(r) for r in rows)
    assert [r["seed"] for r in rows[:2]] == [5, 6]
    by = {(r["instance"], r["solver"]): r for r in rows}
    assert by[("tiny", "good")]["best"] and not by[("tiny", "ok")]["best"] and not by[("tiny", "none")]["best"]
    assert by[("tiny", "ok")]["best_bound"] == 2.0 and by[("tiny", "ok")]["gap"] == pytest.approx(2.0 / 3.5, rel=1e-6)
    with pytest.raises(Exception, match="unknown solver"):
        compare([tiny_instance], ["nope"], registry=reg)


def test_a_result_finds_the_instance_it_records_and_only_that_one(tmp_path, instance_file, tiny_instance):
    """``checker.find_instance`` (used by ``validate`` and ``apply``): the recorded ``instance_path`` first, then
    the files given, each only while it has the recorded hash."""
    res = solve(str(instance_file), "dsatur")
    assert res.instance_path == str(instance_file.resolve())
    inst, path = find_instance(res)
    assert inst.sha256 == tiny_instance.sha256 and path == res.instance_path
    beside = tmp_path / "beside" / "instance.json"
    beside.parent.mkdir()
    tiny_instance.save(beside)
    tiny_instance.with_budget(4).save(instance_file)          # the recorded file changed since the run
    assert find_instance(res) is None
    assert find_instance(res, beside)[1] == str(beside)
    instance_file.write_text("{not json")                     # an unreadable candidate is skipped, not an error
    assert find_instance(res, tmp_path / "missing.json") is None
