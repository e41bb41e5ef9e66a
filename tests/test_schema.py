"""The JSON Schemas (draft 2020-12): valid on what the package writes, and in agreement with the reference parser."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings

from geoshare_opt import Instance, InstanceError, solve
from geoshare_opt.schemas import load_schema

from conformance import CASES, medium_instance
from strategies import JSON_VALUES, instance_dicts, mutated_instance_dicts, perturbed_instance_dicts

jsonschema = pytest.importorskip("jsonschema")

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INSTANCE = jsonschema.Draft202012Validator(load_schema("instance"))
RESULT = jsonschema.Draft202012Validator(load_schema("result"))


def test_schemas_are_valid_draft_2020_12():
    for which in ("instance", "result"):
        schema = load_schema(which)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)


def test_schemas_ship_as_package_data():
    from importlib import resources
    names = {p.name for p in resources.files("geoshare_opt.schemas").iterdir()}
    assert {"instance-v1.schema.json", "result-v1.schema.json"} <= names


def test_generated_instances_validate(tmp_path):
    for case in CASES:
        INSTANCE.validate(case.instance().to_dict())
    INSTANCE.validate(json.loads(medium_instance().dumps()))


def test_converted_graphs_validate(reference_data):
    from geoshare_opt.convert import read_graph
    for rel in ("dimacs/myciel3.col", "gset/G14.txt"):
        INSTANCE.validate(read_graph(reference_data / rel).to_dict())


@pytest.mark.parametrize("solver", ["dsatur", "cpsat"])
def test_results_validate(solver):
    for case in CASES[:6] + [c for c in CASES if c.optimum is None]:
        res = solve(case.instance(), solver, time_limit=2, native={"num_workers": 1} if solver == "cpsat" else None)
        RESULT.validate(json.loads(res.dumps()))


def test_result_schema_rejects_inconsistent_status():
    res = solve(CASES[2].instance(), "cpsat", time_limit=2)
    good = json.loads(res.dumps())
    RESULT.validate(good)
    for bad in (dict(good, status="none"), dict(good, termination="infeasible"), dict(good, gap=-1),
                dict(good, instance_sha256="xyz"), dict(good, assignment={"a": 0.5})):
        assert not RESULT.is_valid(bad), bad


@FAST
@given(instance_dicts())
def test_schema_accepts_every_valid_instance(d):
    Instance.from_dict(d)
    errors = list(INSTANCE.iter_errors(d))
    assert not errors, errors[0].message


@FAST
@given(mutated_instance_dicts())
def test_schema_and_parser_agree_on_mutations(case):
    name, d, expressible = case
    with pytest.raises(InstanceError):
        Instance.from_dict(d)
    if expressible:
        assert not INSTANCE.is_valid(d), f"schema accepts the {name} mutation"


@FAST
@given(JSON_VALUES)
def test_schema_rejects_whatever_the_parser_rejects_structurally(value):
    """On arbitrary JSON: whatever the schema rejects, the parser rejects too (the parser is stricter, never
    looser); and whatever the parser accepts, the schema accepts."""
    try:
        Instance.from_dict(value)
        parsed = True
    except InstanceError:
        parsed = False
    if parsed:
        assert INSTANCE.is_valid(value)
    if not INSTANCE.is_valid(value):
        assert not parsed


@pytest.mark.parametrize("budget, ok", [
    ({"max_classes": 2, "max_params": None}, True),
    ({"max_classes": 2, "max_params": 10}, True),
    ({"max_classes": 2.0}, True),
    ({"max_classes": 2, "max_classes_per_type": None}, False),
    ({"max_classes": 2, "max_params": "10"}, False),
])
def test_schema_and_parser_agree_on_budget_edge_cases(budget, ok):
    d = {"format": "geoshare-instance", "version": 1, "nodes": [{"id": "a", "type": "t", "layer": None}],
         "budget": budget}
    assert INSTANCE.is_valid(d) == ok
    if ok:
        Instance.from_dict(d)
    else:
        with pytest.raises(InstanceError):
            Instance.from_dict(d)


def test_version_true_is_not_version_1():
    d = {"format": "geoshare-instance", "version": True, "nodes": [], "budget": {"max_classes": 1}}
    assert not INSTANCE.is_valid(d)
    with pytest.raises(InstanceError, match="unsupported version"):
        Instance.from_dict(d)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(perturbed_instance_dicts())
def test_schema_and_parser_agree_on_perturbed_instances(d):
    """Parser accepts => schema accepts; schema rejects => parser rejects. (The parser may reject more: unique
    ids, edge references, budgets.)"""
    try:
        Instance.from_dict(d)
        parsed = True
    except InstanceError:
        parsed = False
    if parsed:
        errors = list(INSTANCE.iter_errors(d))
        assert not errors, errors[0].message
