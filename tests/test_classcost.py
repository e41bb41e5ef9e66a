"""The true class cost (geoshare_opt/classcost.py) and the ``classcost`` local-search backend: the formula against a
direct computation and against the torch version, sidecar checks, and the search's guarantees."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from geoshare_opt import InputError, Instance, evaluate, solve
from geoshare_opt.classcost import ClassCost, file_sha256, load_class_cost
from geoshare_opt.cli import cli

FIXTURES = Path(__file__).resolve().parent / "fixtures"


# ---------------------------------------------------------------------- a synthetic analysed network
def pair_cost(h1, w1, h2, w2) -> float:
    """The front end's diagonal tie weight of a pair (frontend/pairs.py), in float64."""
    s = h1 + h2
    hm = np.divide(h1 * h2, s, out=np.zeros_like(s), where=s > 0)
    return float(0.5 * (hm * (w1 - w2) ** 2).sum())


def write_tied_instance(tmp_path: Path, layers=(5, 4), shapes=((3, 4), (2, 6)), seed=0, weights=True,
                        equal_curvature=False, name="net", **budget) -> Path:
    """An instance + sidecar shaped like ``analyze``'s output: one type per entry of ``layers``; pair weights are the
    exact pair costs; the sidecar holds ``diag/`` and (unless ``weights=False``) ``weight/`` tensors."""
    from safetensors.numpy import save_file
    rng = np.random.default_rng(seed)
    nodes, edges, tensors = [], [], {}
    for t, (n, shape) in enumerate(zip(layers, shapes)):
        ids = [f"layer.{i}.t{t}.weight" for i in range(n)]
        hs, ws = [], []
        for i, nid in enumerate(ids):
            w = rng.normal(size=shape).astype(np.float32)
            h = (np.ones(shape) if equal_curvature else rng.random(shape) ** 2).astype(np.float32)
            if not equal_curvature:
                h[0, 0] = 0.0                       # entries without curvature cost nothing
            hs.append(h.astype(np.float64))
            ws.append(w.astype(np.float64))
            tensors[f"diag/{nid}"] = h
            if weights:
                tensors[f"weight/{nid}"] = w
            nodes.append({"id": nid, "type": f"t{t}:{shape[0]}x{shape[1]}", "params": int(np.prod(shape)),
                          "layer": i})
        for a, b in itertools.combinations(range(n), 2):
            edges.append((ids[a], ids[b], pair_cost(hs[a], ws[a], hs[b], ws[b])))
    side = tmp_path / f"{name}.curvature.safetensors"
    save_file(tensors, str(side), metadata={"format": "geoshare-curvature", "version": "1"})
    meta = {"mode": "tie", "estimator": "diag", "curvature": {"file": side.name, "sha256": file_sha256(side)}}
    budget.setdefault("max_classes", len(nodes))
    inst = Instance.build(nodes, edges, name=name, meta=meta, **budget)
    path = tmp_path / f"{name}.json"
    inst.save(path)
    return path


def direct_cost(cc_inst: Instance, path: Path, labels) -> float:
    """½ Σ_l Σ_p h_lp (w_lp − w̄_p)² with w̄ the curvature-weighted mean, class by class (the definition)."""
    from safetensors.numpy import load_file
    side = load_file(str(path.with_name(path.stem + ".curvature.safetensors")))
    total = 0.0
    for c in set(labels):
        members = [cc_inst.nodes[i].id for i in range(len(labels)) if labels[i] == c]
        H = np.stack([side[f"diag/{m}"].astype(np.float64) for m in members])
        W = np.stack([side[f"weight/{m}"].astype(np.float64) for m in members])
        hs = H.sum(0)
        wbar = np.divide((H * W).sum(0), hs, out=W.mean(0), where=hs > 0)
        total += 0.5 * float((H * (W - wbar) ** 2).sum())
    return total


def random_colouring(inst: Instance, rng) -> np.ndarray:
    labels = np.zeros(len(inst.nodes), dtype=np.int64)
    for ti, t in enumerate(inst.types):
        m = inst.type_members(t)
        labels[m] = 100 * ti + rng.integers(0, 3, size=len(m))
    return labels


# ---------------------------------------------------------------------- the formula
def test_class_cost_equals_the_direct_formula(tmp_path):
    path = write_tied_instance(tmp_path)
    inst = Instance.load(path)
    cc = load_class_cost(inst, path)
    rng = np.random.default_rng(1)
    for _ in range(10):
        labels = random_colouring(inst, rng)
        assert cc(labels) == pytest.approx(direct_cost(inst, path, labels), rel=1e-10, abs=1e-12)
    per = cc.cost(labels).per_type
    assert set(per) == set(inst.types) and sum(per.values()) == pytest.approx(cc(labels))


def test_pairs_cost_their_edge_weight_and_equal_curvature_gives_two_over_size(tmp_path):
    path = write_tied_instance(tmp_path)
    inst = Instance.load(path)
    cc = load_class_cost(inst, path)
    u, v, w, _ = inst.edge_arrays
    for a, b, x in zip(u, v, w):
        assert cc.class_cost([a, b]) == pytest.approx(x, rel=1e-9)
    assert cc.class_cost([0]) == 0.0 and cc(np.arange(len(inst.nodes))) == 0.0
    # equal curvature: the class costs 2/|C| times its pair sum (formulations/sweep-and-classcost.md)
    path = write_tied_instance(tmp_path, equal_curvature=True, name="flat")
    inst = Instance.load(path)
    cc = load_class_cost(inst, path)
    members = list(inst.type_members(inst.types[0]))
    labels = np.arange(len(inst.nodes))
    labels[members] = 0
    pair_sum = evaluate(inst.with_budget(len(inst.nodes)), labels).objective
    assert cc.class_cost(members) == pytest.approx(2 / len(members) * pair_sum, rel=1e-9)


def test_class_cost_matches_the_torch_version(tmp_path):
    torch = pytest.importorskip("torch")
    from geoshare_opt.materialize.tie import class_cost, merge
    path = write_tied_instance(tmp_path)
    inst = Instance.load(path)
    cc = load_class_cost(inst, path)
    from safetensors.torch import load_file
    side = load_file(str(path.with_name("net.curvature.safetensors")))
    for members in ([0, 1, 2], [0, 4], [1, 2, 3, 4], [5, 6, 8]):
        ids = [inst.nodes[i].id for i in members]
        ws = [side[f"weight/{i}"] for i in ids]
        hs = [side[f"diag/{i}"] for i in ids]
        assert isinstance(ws[0], torch.Tensor)
        assert cc.class_cost(members) == pytest.approx(class_cost(ws, hs, merge(ws, hs)), rel=1e-6)


def test_front_end_sidecar_carries_weights_and_pair_weights_agree(tmp_path):
    pytest.importorskip("torch")
    from geoshare_opt.frontend import analyze
    out = tmp_path / "user.json"
    inst = analyze(f"{FIXTURES / 'user_spec.py'}:make", first_order=False, out=out)
    cc = load_class_cost(inst, out)
    u, v, w, _ = inst.edge_arrays
    for a, b, x in zip(u, v, w):      # the front end's pair weight is the class cost of the pair
        assert cc.class_cost([a, b]) == pytest.approx(x, rel=1e-4, abs=1e-12)


# ---------------------------------------------------------------------- the sidecar: clean errors
def test_sidecar_errors_are_input_errors(tmp_path):
    path = write_tied_instance(tmp_path)
    inst = Instance.load(path)
    bare = Instance.build([n.to_dict() for n in inst.nodes], [], len(inst.nodes))
    with pytest.raises(InputError, match="names no curvature sidecar"):
        load_class_cost(bare, path)
    old = write_tied_instance(tmp_path, weights=False, name="old")
    with pytest.raises(InputError, match="holds no weights"):
        load_class_cost(Instance.load(old), old)
    side = path.with_name("net.curvature.safetensors")
    side.write_bytes(side.read_bytes()[:-1] + b" ")
    with pytest.raises(InputError, match="does not match"):
        load_class_cost(inst, path)
    side.unlink()
    with pytest.raises(InputError, match="not found"):
        load_class_cost(inst, path)
    basis = Instance.from_dict(dict(inst.to_dict(), meta=dict(inst.meta, mode="basis")))
    with pytest.raises(InputError, match="tie mode"):
        load_class_cost(basis, path)


def test_mismatched_shapes_rejected():
    inst = Instance.build([{"id": "a", "type": "t"}, {"id": "b", "type": "t"}], [], 2)
    with pytest.raises(InputError, match="mixes tensor shapes"):
        ClassCost(inst, {"a": np.ones(3), "b": np.ones(4)}, {"a": np.ones(3), "b": np.ones(4)})
    with pytest.raises(InputError, match="no weight"):
        ClassCost(inst, {"a": np.ones(3), "b": np.ones(3)}, {"a": np.ones(3)})


# ---------------------------------------------------------------------- the local search backend
def _native(path: Path) -> dict:
    return {"sidecar": str(path.with_name(path.stem + ".curvature.safetensors"))}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_local_search_never_worsens_and_stays_feasible(tmp_path, seed):
    path = write_tied_instance(tmp_path, layers=(6, 5), seed=seed)
    full = Instance.load(path)
    cc = load_class_cost(full, path)
    total = int(full.params.sum())
    inst = full.with_budget(7, max_params=int(0.55 * total), max_classes_per_type={full.types[0]: 4})
    start = solve(inst, "cpsat", time_limit=20)
    assert start.feasible
    res = solve(inst, "classcost", warm_start=start, native=_native(path), seed=seed)
    assert res.feasible and evaluate(inst, res.assignment).feasible
    assert res.stats["objective"] == "true class cost"
    assert res.stats["true_cost"]["start"] == pytest.approx(cc(start.assignment))
    assert cc(res.assignment) <= cc(start.assignment) + 1e-12
    assert res.stats["true_cost"]["final"] == pytest.approx(cc(res.assignment))


def test_local_search_improves_on_the_graph_optimum_somewhere(tmp_path):
    """The graph optimum is not the true-cost optimum in general: on these instances the search finds better."""
    gains = []
    for seed in range(4):
        path = write_tied_instance(tmp_path, layers=(7,), shapes=((4, 4),), seed=seed, name=f"g{seed}")
        full = Instance.load(path)
        inst = full.with_budget(3)
        cc = load_class_cost(full, path)
        graph = solve(inst, "cpsat", time_limit=20)
        res = solve(inst, "classcost", warm_start=graph, native=_native(path))
        gains.append(cc(graph.assignment) - cc(res.assignment))
    assert min(gains) >= -1e-12 and max(gains) > 1e-6, gains


def test_local_search_is_deterministic_given_the_seed(tmp_path):
    path = write_tied_instance(tmp_path, layers=(6, 5))
    inst = Instance.load(path).with_budget(6)
    a = solve(inst, "classcost", native=_native(path), seed=3)
    b = solve(inst, "classcost", native=_native(path), seed=3)
    assert a.termination == "completed" and a.assignment == b.assignment


def test_local_search_respects_hard_edges_and_caps(tmp_path):
    path = write_tied_instance(tmp_path, layers=(6, 5))
    base = Instance.load(path)
    d = base.to_dict()
    t0 = base.type_members(base.types[0])
    hard = [(int(a), int(b)) for a, b in itertools.combinations(t0, 2) if (a + b) % 3 == 0]
    d["edges"] = [e for e in d["edges"]
                  if (base.index[e["u"]], base.index[e["v"]]) not in hard]
    d["edges"] += [{"u": base.nodes[a].id, "v": base.nodes[b].id, "hard": True} for a, b in hard]
    inst = Instance.from_dict(d).with_budget(6, max_classes_per_type={base.types[1]: 2})
    res = solve(inst, "classcost", native=_native(path), seed=0)
    assert res.feasible and res.stats["objective"] == "true class cost"
    labels = [res.assignment[n.id] for n in inst.nodes]
    assert all(labels[a] != labels[b] for a, b in hard)
    assert res.classes_per_type[base.types[1]] <= 2 and res.n_classes <= 6


def test_local_search_without_sidecar_optimises_the_graph_objective():
    nodes = [{"id": f"n{i}", "type": "t"} for i in range(5)]
    edges = [("n0", "n1", "hard"), ("n1", "n2", "hard"), ("n0", "n2", 1.0), ("n3", "n4", -1.0)]
    inst = Instance.build(nodes, edges, 3)
    res = solve(inst, "classcost", seed=0)
    assert res.feasible and "graph objective" in res.stats["objective"] and "no curvature sidecar" in res.stats["note"]
    assert res.objective == pytest.approx(-1.0)       # {n1} {n0 n3 n4} {n2}: the optimum


def test_local_search_bad_native_options(tmp_path):
    inst = Instance.build([{"id": "a", "type": "t"}], [], 1)
    with pytest.raises(InputError, match="max_rounds"):
        solve(inst, "classcost", native={"max_rounds": -1})
    with pytest.raises(InputError, match="itself"):
        solve(inst, "classcost", native={"start": "classcost"})
    with pytest.raises(InputError, match="names no curvature sidecar"):
        solve(inst, "classcost", native={"sidecar": str(tmp_path / "x.safetensors")})


# ---------------------------------------------------------------------- the command line
def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_cli_solve_true_cost_and_sidecar_filled_in(tmp_path):
    path = write_tied_instance(tmp_path, max_classes=5)
    res = run("solve", path, "--solver", "classcost", "--true-cost", "--quiet")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    cc = load_class_cost(Instance.load(path), path)
    assert out["true_cost"]["total"] == pytest.approx(cc(out["assignment"]))
    assert set(out["true_cost"]["per_type"]) == set(Instance.load(path).types)
    assert out["options"]["native"]["sidecar"].endswith("net.curvature.safetensors")
    assert out["stats"]["objective"] == "true class cost"


def test_true_cost_is_a_declared_result_field(tmp_path):
    """``annotate_true_cost`` fills ``Result.true_cost``; it survives a save and load and is absent when unset."""
    from geoshare_opt.classcost import annotate_true_cost
    from geoshare_opt.result import Result
    path = write_tied_instance(tmp_path, max_classes=5)
    inst = Instance.load(path)
    cc = load_class_cost(inst, path)
    plain = solve(inst, "dsatur")
    assert "true_cost" not in plain.to_dict()
    res = annotate_true_cost(solve(inst, "dsatur"), cc)
    assert res.true_cost["total"] == pytest.approx(cc(res.assignment))
    res.save(tmp_path / "r.json")
    assert Result.load(tmp_path / "r.json").true_cost == res.true_cost


def test_cli_true_cost_without_sidecar_is_bad_input(tmp_path, instance_file):
    res = run("solve", instance_file, "--true-cost", "--solver", "dsatur")
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr.strip().startswith("error: ") and "sidecar" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    old = write_tied_instance(tmp_path, weights=False, name="old")
    res = run("solve", old, "--true-cost", "--solver", "dsatur")
    assert res.exit_code == 2 and "holds no weights" in res.stderr


def test_cli_compare_true_cost_column(tmp_path):
    path = write_tied_instance(tmp_path, max_classes=5)
    csv_path = tmp_path / "c.csv"
    res = run("compare", path, "--solvers", "dsatur,classcost", "--true-cost", "--csv", csv_path,
              "--native", f"classcost:sidecar={path.with_name('net.curvature.safetensors')}")
    assert res.exit_code == 0, res.stderr
    rows = json.loads(res.stdout)
    cc = load_class_cost(Instance.load(path), path)
    assert all(r["true_cost"] is not None and r["true_cost"] >= 0 for r in rows)
    by = {r["solver"]: r["true_cost"] for r in rows}
    assert by["classcost"] <= cc(solve(Instance.load(path), "auto").assignment) + 1e-12
    assert csv_path.read_text().splitlines()[0].endswith(",true_cost")
    assert "true cost" in res.stderr


def true_cost_optimum(inst: Instance, cc) -> float:
    """min true cost over every feasible colouring (every partition of every type, then every combination)."""
    from conformance import _restricted_growth
    per_type = []
    for t in inst.types:
        m = [int(i) for i in inst.type_members(t)]
        per_type.append([(max(r) + 1, sum(cc.class_cost([m[j] for j, x in enumerate(r) if x == c])
                                          for c in range(max(r) + 1)), m[0])
                         for r in _restricted_growth(len(m))])
    best = np.inf
    p = [int(inst.params[inst.type_members(t)].max()) for t in inst.types]
    for combo in itertools.product(*per_type):
        k = [c[0] for c in combo]
        if sum(k) <= inst.budget.max_classes and (inst.budget.max_params is None
                                                 or sum(a * b for a, b in zip(k, p)) <= inst.budget.max_params):
            best = min(best, sum(c[1] for c in combo))
    return best


@pytest.mark.parametrize("seed", range(4))
def test_curves_and_dp_reach_the_true_optimum_on_small_instances(tmp_path, seed):
    """The per-type true-cost curves + DP move classes between types, which single moves under a tight parameter
    budget cannot: on these small instances the search lands on the enumerated true-cost optimum."""
    path = write_tied_instance(tmp_path, layers=(5, 4), shapes=((3, 3), (2, 5)), seed=seed)
    full = Instance.load(path)
    cc = load_class_cost(full, path)
    inst = full.with_budget(len(full.nodes), max_params=int(0.5 * full.params.sum()))
    graph = solve(inst, "cpsat")
    res = solve(inst, "classcost", warm_start=graph, native=_native(path))
    flat = solve(inst, "classcost", warm_start=graph, native=dict(_native(path), curves=False))
    opt = true_cost_optimum(inst, cc)
    assert cc(res.assignment) == pytest.approx(opt, rel=1e-9)
    assert opt - 1e-12 <= cc(res.assignment) <= cc(flat.assignment) + 1e-12 <= cc(graph.assignment) + 2e-12
    assert "dp_true_cost" in res.stats["curves"] or cc(res.assignment) == cc(graph.assignment)
