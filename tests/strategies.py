"""Hypothesis strategies that *construct* valid instances (never filter random ones) and mutate them into invalid
ones, each mutation saying whether the JSON Schema can express the rule it breaks."""
from __future__ import annotations

import copy
import itertools

from hypothesis import strategies as st

IDS = st.text(alphabet="abcdefghij._0123456789", min_size=1, max_size=6)
TYPES = st.text(alphabet="ABCDqkv.", min_size=1, max_size=4)
WEIGHTS = st.one_of(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
                    st.integers(min_value=-1000, max_value=1000))
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)), max_leaves=12)


@st.composite
def instance_dicts(draw, max_types: int = 3, max_per_type: int = 5) -> dict:
    """A valid ``geoshare-instance`` v1 dict: types, signed and hard edges (some across types), all caps."""
    type_names = draw(st.lists(TYPES, min_size=1, max_size=max_types, unique=True))
    ids = draw(st.lists(IDS, min_size=len(type_names), max_size=len(type_names) * max_per_type, unique=True))
    # every type gets at least one node: the first len(types) ids go one to each type
    node_type = type_names + [draw(st.sampled_from(type_names)) for _ in ids[len(type_names):]]
    nodes = []
    for nid, t in zip(ids, node_type):
        node = {"id": nid, "type": t, "params": draw(st.integers(min_value=0, max_value=10**6))}
        if draw(st.booleans()):
            node["layer"] = draw(st.integers(min_value=0, max_value=48))
        if draw(st.integers(0, 4)) == 0:
            node["meta"] = draw(st.dictionaries(st.text(max_size=4), JSON_SCALARS, max_size=2))
        nodes.append(node)
    pairs = list(itertools.combinations(range(len(ids)), 2))
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=len(pairs))) if pairs else []
    edges = []
    for i, j in chosen:
        if draw(st.booleans()):
            i, j = j, i
        if draw(st.integers(0, 5)) == 0:
            edges.append({"u": ids[i], "v": ids[j], "hard": True})
        else:
            e = {"u": ids[i], "v": ids[j], "w": draw(WEIGHTS)}
            if draw(st.integers(0, 5)) == 0:
                e["hard"] = False
            edges.append(e)
    budget = {"max_classes": draw(st.integers(min_value=len(type_names), max_value=len(type_names) + 6))}
    caps = draw(st.dictionaries(st.sampled_from(type_names), st.integers(min_value=1, max_value=4), max_size=2))
    if caps:
        budget["max_classes_per_type"] = caps
    if draw(st.booleans()):
        need = sum(max(n["params"] for n, t in zip(nodes, node_type) if t == tt) for tt in type_names)
        budget["max_params"] = need + draw(st.integers(min_value=0, max_value=10**6))
    d = {"format": "geoshare-instance", "version": 1, "nodes": nodes, "edges": edges, "budget": budget}
    if draw(st.booleans()):
        d["name"] = draw(st.text(max_size=8))
    if draw(st.booleans()):
        d["meta"] = draw(st.dictionaries(st.text(max_size=4), JSON_VALUES, max_size=3))
    return d


# A mutation breaks one rule. ``schema`` says whether JSON Schema can state that rule (then schema and parser
# must both reject); the others (uniqueness, references, budgets) only the reference parser can check.
def _drop(key):
    def f(d, draw):
        d.pop(key)
    return f


def _set(path_fn, value_strategy):
    def f(d, draw):
        obj, key = path_fn(d)
        obj[key] = draw(value_strategy)
    return f


def _dup_id(d, draw):
    d["nodes"].append(dict(d["nodes"][0]))


def _unknown_node(d, draw):
    d["edges"].append({"u": d["nodes"][0]["id"], "v": "zz-not-a-node", "w": 1.0})


def _self_loop(d, draw):
    nid = d["nodes"][0]["id"]
    d["edges"].append({"u": nid, "v": nid, "w": 1.0})


def _dup_edge(d, draw):
    if not d["edges"]:
        _self_loop(d, draw)
        return
    e = dict(d["edges"][0])
    e["u"], e["v"] = e["v"], e["u"]
    d["edges"].append(e)


def _budget_below_types(d, draw):
    n_types = len({n["type"] for n in d["nodes"]})
    if n_types == 1:
        d["budget"]["max_classes"] = 0
    else:
        d["budget"]["max_classes"] = draw(st.integers(min_value=1, max_value=n_types - 1))


def _unknown_cap_type(d, draw):
    d["budget"]["max_classes_per_type"] = {"no-such-type": 1}


def _params_budget_too_small(d, draw):
    need = sum(max(n["params"] for n in d["nodes"] if n["type"] == t) for t in {n["type"] for n in d["nodes"]})
    if need == 0:
        d["budget"]["max_params"] = -1
    else:
        d["budget"]["max_params"] = draw(st.integers(min_value=0, max_value=need - 1))


def _hard_with_weight(d, draw):
    d["edges"].append({"u": d["nodes"][0]["id"], "v": "x", "hard": True, "w": 1.0})


def _extra_key(where):
    def f(d, draw):
        target = {"top": d, "node": d["nodes"][0], "budget": d["budget"]}[where]
        target["zz_extra"] = draw(JSON_SCALARS)
    return f


def _edge_weight(d, draw):
    d["edges"].append({"u": d["nodes"][0]["id"], "v": "x",
                       "w": draw(st.one_of(st.text(max_size=3), st.booleans(), st.none(), st.lists(st.integers())))})


NOT_STRING = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.lists(st.integers()))
NOT_INT = st.one_of(st.none(), st.booleans(), st.text(max_size=3), st.floats(allow_nan=False).filter(
    lambda x: not float(x).is_integer()), st.lists(st.integers()))

MUTATIONS = {
    # name: (mutation, schema can express it)
    "drop_format": (_drop("format"), True),
    "drop_version": (_drop("version"), True),
    "drop_nodes": (_drop("nodes"), True),
    "drop_budget": (_drop("budget"), True),
    "bad_format": (_set(lambda d: (d, "format"), st.text(max_size=8).filter(lambda s: s != "geoshare-instance")), True),
    "bad_version": (_set(lambda d: (d, "version"), st.one_of(st.integers().filter(lambda v: v != 1),
                                                             st.just(True))), True),
    "nodes_not_list": (_set(lambda d: (d, "nodes"), st.one_of(st.none(), st.text(max_size=3), st.dictionaries(
        st.text(max_size=2), st.integers(), max_size=2))), True),
    "node_id_not_string": (_set(lambda d: (d["nodes"][0], "id"), NOT_STRING), True),
    "node_id_empty": (_set(lambda d: (d["nodes"][0], "id"), st.just("")), True),
    "node_type_not_string": (_set(lambda d: (d["nodes"][0], "type"), NOT_STRING), True),
    "negative_params": (_set(lambda d: (d["nodes"][0], "params"), st.integers(max_value=-1)), True),
    "params_not_int": (_set(lambda d: (d["nodes"][0], "params"), NOT_INT), True),
    "params_too_big": (_set(lambda d: (d["nodes"][0], "params"), st.integers(min_value=2**53, max_value=2**80)), True),
    "max_classes_not_int": (_set(lambda d: (d["budget"], "max_classes"), NOT_INT), True),
    "max_classes_zero": (_set(lambda d: (d["budget"], "max_classes"), st.integers(max_value=0)), True),
    "extra_top_key": (_extra_key("top"), True),
    "extra_node_key": (_extra_key("node"), True),
    "extra_budget_key": (_extra_key("budget"), True),
    "hard_with_weight": (_hard_with_weight, True),
    "weight_not_number": (_edge_weight, True),
    "duplicate_id": (_dup_id, False),
    "unknown_node": (_unknown_node, False),
    "self_loop": (_self_loop, False),
    "duplicate_edge": (_dup_edge, False),
    "budget_below_types": (_budget_below_types, False),
    "unknown_cap_type": (_unknown_cap_type, False),
    "params_budget_too_small": (_params_budget_too_small, False),
}


@st.composite
def mutated_instance_dicts(draw):
    """(name, invalid dict, schema can express the broken rule) from a valid instance and one mutation."""
    d = copy.deepcopy(draw(instance_dicts()))
    name = draw(st.sampled_from(sorted(MUTATIONS)))
    mutate, expressible = MUTATIONS[name]
    mutate(d, draw)
    return name, d, expressible


@st.composite
def perturbed_instance_dicts(draw):
    """A valid instance with one field (top level, a node's, an edge's or the budget's) replaced by arbitrary
    JSON or deleted: sometimes still valid, often not. For checking that schema and parser agree where they can."""
    d = copy.deepcopy(draw(instance_dicts(max_per_type=3)))
    targets = [d, d["budget"]] + d["nodes"] + d["edges"]
    obj = draw(st.sampled_from(targets))
    keys = sorted(obj) + ["zz_new", "w", "hard", "params", "layer", "meta", "max_params", "max_classes_per_type"]
    key = draw(st.sampled_from(keys))
    if draw(st.integers(0, 4)) == 0:
        obj.pop(key, None)
    else:
        obj[key] = draw(st.one_of(JSON_VALUES, st.integers(min_value=-2, max_value=3), st.booleans(),
                                  st.sampled_from(["geoshare-instance", "t", "", "A"])))
    return d
