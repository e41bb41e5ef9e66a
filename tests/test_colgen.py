"""The set-partitioning engine (``colgen``): pricing kernels, per-type curves and whole instances against brute
force, bounds under a deadline, class-cost oracles, native options, and the sweep on a real instance."""
from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest
from conformance import _restricted_growth

from geoshare_opt import DiagonalClassCost, InputError, Instance, solve, sweep
from geoshare_opt.classcost import ClassCost
from geoshare_opt.solvers.colgen import Settings, TypeEngine, class_cost_curves, combine_curves
from geoshare_opt.solvers.colgen import _kernels
from geoshare_opt.solvers.colgen._local_search import iterated_tabu_search
from geoshare_opt.solvers.colgen.engine import merged_labels
from geoshare_opt.solvers.colgen.probing import contract, probe_pairs
from geoshare_opt.solvers.colgen.sdp_bound import SdpBound, sdp_bound, violated_cuts

from exact_cases import case
from test_exact_bruteforce import mismatches

REAL = Path(__file__).resolve().parents[1] / "benchmarks" / "solvers" / "real" / "instances" / "tiny-gpt-tie.json"


# ---------------------------------------------------------------------- brute-force references
def brute_curve(W: np.ndarray, hard: np.ndarray, cost=None) -> list[float]:
    """f(k) for k = 1..n (at most k classes) by enumerating every partition; inf where infeasible."""
    n = len(W)
    best = np.full(n + 1, np.inf)
    for lab in map(np.array, _restricted_growth(n)):
        same = lab[:, None] == lab[None, :]
        if np.any(hard & same):
            continue
        k = int(lab.max()) + 1
        value = float(np.triu(W * same, 1).sum()) if cost is None else sum(cost(np.flatnonzero(lab == c))
                                                                            for c in range(k))
        best[k] = min(best[k], value)
    return np.minimum.accumulate(best[1:]).tolist()


def random_type(rng, n: int, signed: bool, p_hard: float) -> tuple[np.ndarray, np.ndarray]:
    W = np.triu(rng.normal(size=(n, n)) if signed else rng.random((n, n)), 1)
    hard = np.triu(rng.random((n, n)) < p_hard, 1)
    W[hard] = 0.0
    return W + W.T, hard | hard.T


def random_types_with_curves(seed: int, trials: int):
    """(rng, W, hard, brute-force curve) for ``trials`` random types of 6-8 nodes, signed weights every other one,
    hard pairs in two of three."""
    rng = np.random.default_rng(seed)
    for trial in range(trials):
        W, hard = random_type(rng, int(rng.integers(6, 9)), signed=trial % 2 == 0, p_hard=0.1 * (trial % 3))
        yield rng, W, hard, brute_curve(W, hard)


# ---------------------------------------------------------------------- pricing kernels
def test_pricing_kernels_find_the_least_reduced_cost():
    rng = np.random.default_rng(0)
    for trial in range(120):
        m = int(rng.integers(1, 10))
        Q = np.triu(rng.normal(size=(m, m)), 1)
        Q = np.abs(Q + Q.T) if trial % 2 else Q + Q.T
        d = rng.normal(size=m) - 0.5
        conf = np.triu(rng.random((m, m)) < 0.2, 1)
        conf = (conf | conf.T).astype(np.uint8)
        best = min(d[list(S)].sum() + sum(Q[a, b] for a, b in itertools.combinations(S, 2))
                   for r in range(1, m + 1) for S in itertools.combinations(range(m), r)
                   if not any(conf[a, b] for a, b in itertools.combinations(S, 2)))
        vals, sets, least = _kernels.enumerate_best(Q, d, conf, 4, np.inf)
        assert least == pytest.approx(best, abs=1e-9) and vals[0] == pytest.approx(best, abs=1e-9)
        vals2, sets2, least2, complete, _ = _kernels.branch_and_bound_best(Q, d, conf, 4, np.inf, 0)
        assert complete and least2 == pytest.approx(best, abs=1e-9) and vals2[0] == pytest.approx(best, abs=1e-9)
        if Q.min() >= 0:    # sets with a member that only adds cost are dominated and may be left out
            assert np.all(vals2 >= vals - 1e-9)
        else:
            assert np.allclose(vals[np.isfinite(vals)], vals2[np.isfinite(vals2)])
        for v, row in zip(vals2, sets2):
            if np.isfinite(v):
                S = np.flatnonzero(row)
                assert not conf[np.ix_(S, S)].any()
                assert v == pytest.approx(d[S].sum() + sum(Q[a, b] for a, b in itertools.combinations(S, 2)))
        # a threshold only cuts the search: the bound it returns stays valid
        _, _, least3, _, _ = _kernels.branch_and_bound_best(Q, d, conf, 2, 0.0, 0)
        assert least3 <= best + 1e-12 and (best >= 0 or least3 == pytest.approx(best, abs=1e-9))
        # without the pair bound, and stopped at `keep` classes below the threshold: still a valid bound
        vals5, _, least5, _, _ = _kernels.branch_and_bound_best(Q, d, conf, 4, np.inf, 0, False)
        assert least5 == pytest.approx(best, abs=1e-9) and np.allclose(vals5, vals2)
        vals6, _, least6, complete6, _ = _kernels.branch_and_bound_best(Q, d, conf, 2, 0.0, 0, True, True)
        assert least6 <= best + 1e-12 and (vals6[1] < 0 or complete6)
        starts = np.vstack([np.eye(m, dtype=np.uint8), np.ones((1, m), dtype=np.uint8)])
        pins = np.concatenate([np.arange(m), [-1]])
        vals4, sets4, _ = _kernels.local_search_best(Q, d, conf, starts, pins, 3, np.inf, 10 ** 9)
        assert vals4[0] >= best - 1e-9
        for v, row in zip(vals4, sets4):    # every class it returns is conflict-free and priced right
            if np.isfinite(v):
                S = np.flatnonzero(row)
                assert not conf[np.ix_(S, S)].any()
                assert v == pytest.approx(d[S].sum() + np.triu(Q[np.ix_(S, S)], 1).sum(), abs=1e-9)


# ---------------------------------------------------------------------- one type, every k
@pytest.mark.parametrize("settings", [Settings(), Settings(enum_max=2, smoothing=0.0, keep=3)],
                         ids=["default", "branch-and-bound-pricing"])
def test_type_engine_proves_every_budget_against_brute_force(settings):
    rng = np.random.default_rng(5)
    for trial in range(50):
        n = int(rng.integers(2, 9))
        W, hard = random_type(rng, n, signed=trial % 3 != 0, p_hard=0.2 * (trial % 2))
        ref = brute_curve(W, hard)
        engine = TypeEngine(W, hard, settings=settings)
        # one engine, one column pool, every k: largest first (as the sweep asks) or in any order (a node's column
        # bounds must never leak into the next budget's root)
        order = range(n, 0, -1) if trial % 3 else rng.permutation(np.arange(1, n + 1)).tolist()
        for k in order:
            res = engine.solve(k)
            if not np.isfinite(ref[k - 1]):
                assert res.status == "infeasible", (trial, k, res.status)
                continue
            assert res.status == "optimal", (trial, k, res.status)
            assert res.value == pytest.approx(ref[k - 1], abs=1e-9)
            assert res.bound <= res.value + 1e-12
            assert len(np.unique(res.labels)) <= k and not np.any(hard & (res.labels[:, None] == res.labels))


def test_bound_is_valid_when_the_deadline_cuts_the_run():
    rng = np.random.default_rng(2)
    W, hard = random_type(rng, 9, signed=True, p_hard=0.0)
    optimum = brute_curve(W, hard)[2]
    for offset in np.linspace(0.0, 0.03, 31):      # cut anywhere: in an LP, in pricing, between nodes
        res = TypeEngine(W, hard).solve(3, time.monotonic() + offset)
        assert res.status in ("optimal", "feasible", "unknown")
        assert res.bound <= optimum + 1e-9
        if res.labels is not None:
            assert res.value >= optimum - 1e-9


def test_a_search_stopped_by_its_deadline_resumes_at_the_next_call():
    """Time given to one budget in several calls adds up: the second call continues the first one's open nodes
    (it does not start a new tree) and ends at the brute-force optimum."""
    rng = np.random.default_rng(4)
    for trial in range(6):
        W, hard = random_type(rng, 9, signed=trial % 2 == 0, p_hard=0.1 * (trial % 3))
        optimum = brute_curve(W, hard)[2]
        engine = TypeEngine(W, hard)
        first = engine.solve(3, time.monotonic())          # expired at once: the root stays open
        assert first.status in ("feasible", "unknown") and first.bound <= optimum + 1e-9
        again = engine.solve(3)
        if not np.isfinite(optimum):
            assert again.status == "infeasible"
            continue
        assert again.status == "optimal" and again.value == pytest.approx(optimum, abs=1e-9)
        assert again.stats["resumed"] == 1 and engine.solve(2).stats["resumed"] == 0


def test_sdp_bound_is_below_brute_force_and_exact_on_complete_graphs():
    rng = np.random.default_rng(11)
    for trial in range(40):
        n = int(rng.integers(3, 8))
        W, hard = random_type(rng, n, signed=trial % 2 == 0, p_hard=0.15 * (trial % 3))
        ref = brute_curve(W, hard)
        for k in range(2, n):
            assert sdp_bound(W, hard, k) <= ref[k - 1] + 1e-12, (trial, k)
    for n, k in ((6, 2), (9, 3), (12, 4)):       # K_n with unit weights: the equal split costs n(n − k)/2k
        bound = sdp_bound(np.ones((n, n)) - np.eye(n), np.zeros((n, n), dtype=bool), k)
        assert bound == pytest.approx(n * (n - k) / (2 * k), rel=1e-9) and bound <= n * (n - k) / (2 * k)
    assert sdp_bound(np.ones((4, 4)), np.zeros((4, 4), dtype=bool), 1) == -np.inf


def test_sdp_cuts_hold_for_every_colouring_and_only_raise_the_bound():
    """No colouring with at most k classes violates a triangle or clique cut; a round of cuts never lowers the
    bound and tightens it on random types; a deadline leaves a valid bound that the next call resumes."""
    rng = np.random.default_rng(13)
    for trial in range(30):
        n = int(rng.integers(4, 9))
        k = int(rng.integers(2, n))
        labels = rng.integers(0, k, n)
        X = np.where(labels[:, None] == labels[None, :], 1.0, -1.0 / (k - 1))
        assert violated_cuts(X, k, 1000)[0].shape[0] == 0, (trial, k)
    X = np.array([[1, 1, -1], [1, 1, 1], [-1, 1, 1]], dtype=float)      # 0~1, 1~2 but 0 and 2 apart
    rows, rhs = violated_cuts(X, 2, 10)
    assert rows.shape[0] == 1 and rhs[0] == -1 and (rows @ X[np.triu_indices(3, 1)])[0] == -3
    tighter = 0
    for trial in range(20):
        n = int(rng.integers(5, 9))
        W, hard = random_type(rng, n, signed=trial % 2 == 0, p_hard=0.15 * (trial % 3))
        ref = brute_curve(W, hard)
        for k in range(2, min(n, 5)):
            plain, cut = sdp_bound(W, hard, k, cuts=False), sdp_bound(W, hard, k)
            assert plain - 1e-9 * abs(plain) <= cut <= ref[k - 1] + 1e-12, (trial, k)
            tighter += cut > plain + 1e-6 * abs(ref[k - 1])
    assert tighter >= 8
    W, hard = random_type(rng, 12, signed=False, p_hard=0.0)
    ascent = SdpBound(W, hard, 3)
    early = ascent.improve(time.monotonic())
    assert np.isfinite(early) and not ascent.converged
    assert ascent.improve() >= early and ascent.converged
    assert ascent.value == pytest.approx(sdp_bound(W, hard, 3), rel=1e-4)
    sliced, values = SdpBound(W, hard, 3, iterations=200), []    # deadlines that land in every stage and round
    while not sliced.converged and len(values) < 2000:
        values.append(sliced.improve(time.monotonic() + 0.02))
    greedy = merged_labels(W, hard, 3)
    greedy_value = float(np.triu(W * (greedy[:, None] == greedy[None, :]), 1).sum())
    assert sliced.converged and values == sorted(values) and values[-1] <= greedy_value
    assert values[-1] == pytest.approx(ascent.value, rel=1e-3)


def test_probing_keeps_a_valid_bound_and_contraction_keeps_values():
    """With the optimum as the incumbent, whatever probing fixes, min(probe bounds, the contracted optimum plus
    the weight inside the groups) stays at or below the optimum; a contracted colouring costs the same in the
    original; probes do fix pairs on these instances (the check is not vacuous)."""
    fixed = 0
    for trial, (rng, W, hard, ref) in enumerate(random_types_with_curves(14, 24)):
        k = int(rng.integers(2, min(len(W) - 1, 4) + 1))
        if not np.isfinite(ref[k - 1]):
            continue
        root = SdpBound(W, hard, k)
        root.improve()
        probed = probe_pairs(root, hard, ref[k - 1], 2, None)
        fixed += probed.fixed
        Wc, hard_c, inside = contract(W, hard, probed.groups)
        contracted = brute_curve(Wc, hard_c)[min(k, len(Wc)) - 1] + inside
        assert min(probed.bound, contracted) <= ref[k - 1] + 1e-9, (trial, k)
        assert probed.fixed == 0 or probed.bound >= ref[k - 1]
        labels = rng.integers(0, k, len(Wc))
        same_c = labels[:, None] == labels[None, :]
        full = labels[probed.groups]
        same = full[:, None] == full[None, :]
        assert float(np.triu(W * same, 1).sum()) == pytest.approx(float(np.triu(Wc * same_c, 1).sum()) + inside)
    assert fixed >= 10


def test_probing_in_the_engine_proves_points_that_brute_force_confirms(monkeypatch):
    """Time-limited calls with the whole time kept back and probing down to 3 groups: every answer agrees with
    brute force, every bound is below the optimum, and probing settles some of the points."""
    from geoshare_opt.solvers.colgen import engine as engine_module

    monkeypatch.setattr(engine_module, "FINISH_SHARE", 1.0)
    monkeypatch.setattr(engine_module, "SDP_MIN_GAP", 0.0)
    monkeypatch.setattr(engine_module, "EXACT_GROUPS", 3)
    probed = by_probing = 0
    for trial, (_, W, hard, ref) in enumerate(random_types_with_curves(15, 16)):
        engine = TypeEngine(W, hard)
        for k in range(min(len(W) - 1, 4), 1, -1):
            res = engine.solve(k, time.monotonic() + 60)
            assert res.bound <= ref[k - 1] + 1e-9, (trial, k)
            if res.status == "optimal":
                assert res.value == pytest.approx(ref[k - 1], abs=1e-9), (trial, k)
            probed += res.stats.get("probe_fixed", 0) > 0
            # proven with no branch-and-price node: the global bound from probing closed the point
            by_probing += res.status == "optimal" and res.stats["nodes"] == 0 and \
                res.stats.get("contracted", {}).get("status") == "optimal"
    assert probed >= 5 and by_probing >= 10


def test_tabu_search_keeps_hard_pairs_apart_and_finds_small_optima():
    rng = np.random.default_rng(12)
    found = tried = 0
    for trial in range(40):
        n = int(rng.integers(4, 9))
        W, hard = random_type(rng, n, signed=trial % 2 == 0, p_hard=0.1 * (trial % 3))
        k = int(rng.integers(2, n))
        start = merged_labels(W, hard, k)
        if start is None:
            continue
        tried += 1
        labels, value = iterated_tabu_search(W, hard, start.astype(np.int64), k, 50, 200, trial)
        same = labels[:, None] == labels[None, :]
        assert labels.max() < k and not np.any(hard & same)
        assert value == pytest.approx(float(np.triu(W * same, 1).sum()), abs=1e-12)
        assert value <= float(np.triu(W * (start[:, None] == start[None, :]), 1).sum()) + 1e-12
        found += value <= brute_curve(W, hard)[k - 1] + 1e-9
    assert found >= tried - 2 and tried >= 30       # a heuristic: it may miss one or two of these tiny optima


def test_a_time_limited_open_point_gets_tabu_search_and_sdp_bound_then_branch_and_price(monkeypatch):
    """With the whole time kept back, branch and price first stops at once; the tabu search improves the greedy
    incumbent, the SDP bound is valid (below the proven optimum, and close to it on this dense real type) and
    serves every smaller budget, and the time left goes back to branch and price, which still proves the point."""
    from geoshare_opt.solvers.colgen import engine as engine_module

    inst = Instance.load(REAL)
    blk = inst.part(inst.types[0])
    optimum = TypeEngine(blk.W, blk.hard).solve(3).value
    greedy = merged_labels(blk.W, blk.hard, 3)
    greedy_value = float(np.triu(blk.W * (greedy[:, None] == greedy[None, :]), 1).sum())
    monkeypatch.setattr(engine_module, "FINISH_SHARE", 1.0)     # branch and price first gets no time at all
    monkeypatch.setattr(engine_module, "SDP_MIN_GAP", 0.0)      # and the SDP bound runs whatever the gap
    engine = TypeEngine(blk.W, blk.hard)
    res = engine.solve(3, time.monotonic() + 300)
    assert res.status == "optimal" and res.value == pytest.approx(optimum, rel=1e-9)
    assert "tabu_s" in res.stats and greedy_value > optimum * (1 + 1e-6)
    assert 0.9 * optimum <= res.stats["sdp_bound"] <= optimum and res.stats["sdp_cuts"] > 0
    plain = TypeEngine(blk.W, blk.hard, settings=Settings(sdp_cuts=0)).solve(3, time.monotonic() + 300)
    assert plain.stats["sdp_cuts"] == 0 and plain.stats["sdp_bound"] <= res.stats["sdp_bound"] + 1e-12
    assert engine.global_bound(2) * engine.scale == pytest.approx(res.stats["sdp_bound"])
    assert engine.global_bound(4) == -np.inf
    assert not engine.keeps_time_back(3, time.monotonic() + 300)
    assert engine.keeps_time_back(4, time.monotonic() + 300)
    assert not engine.keeps_time_back(4, None)      # without a deadline branch and price proves the point itself
    cut = TypeEngine(blk.W, blk.hard).solve(3, time.monotonic())       # out of time before anything
    assert cut.status in ("feasible", "unknown") and cut.bound <= optimum


# ---------------------------------------------------------------------- whole instances (the shared random cases)
def test_colgen_equals_brute_force_on_the_500_random_instances():
    assert mismatches("colgen", 500) == []


def test_colgen_without_hints_equals_brute_force():
    """No greedy start and no warm start: every answer comes from the engine's own merges and branch and price."""
    assert mismatches("colgen", 60, native={"hint": False}, stride=7) == []
    assert mismatches("colgen", 40, native={"smoothing": 0.0, "enum_max": 4}, stride=11) == []


def test_infeasible_budget_is_proven():
    hard_k4 = Instance.build([{"id": str(i), "type": "t"} for i in range(4)],
                             [(str(i), str(j), "hard") for i, j in itertools.combinations(range(4), 2)], 3)
    res = solve(hard_k4, "colgen")
    assert res.termination == "infeasible" and not res.feasible
    inst, opt = case(7)
    assert solve(inst, "colgen").objective == pytest.approx(opt, abs=1e-9)


def test_native_options_are_checked():
    inst = case(1)[0]
    with pytest.raises(InputError, match="unknown native option 'nope'"):
        solve(inst, "colgen", native={"nope": 1})
    with pytest.raises(InputError, match="smoothing"):
        solve(inst, "colgen", native={"smoothing": 1.5})
    with pytest.raises(InputError, match="sdp_cuts 0 or 1"):
        solve(inst, "colgen", native={"sdp_cuts": 2})


# ---------------------------------------------------------------------- class-cost oracles
def _diagonal_instance(seed: int = 0):
    rng = np.random.default_rng(seed)
    nodes = [{"id": f"a{i}", "type": "A"} for i in range(7)] + [{"id": f"b{i}", "type": "B"} for i in range(4)]
    h = {nd["id"]: rng.random((3, 4)) ** 2 for nd in nodes}
    w = {nd["id"]: rng.normal(size=(3, 4)) for nd in nodes}

    def pair(a, b):
        s = h[a] + h[b]
        return float(0.5 * (h[a] * h[b] / s * (w[a] - w[b]) ** 2).sum())

    edges = [(x["id"], y["id"], pair(x["id"], y["id"])) for x, y in itertools.combinations(nodes, 2)
             if x["type"] == y["type"] and {x["id"], y["id"]} != {"a0", "a3"}] + [("a0", "a3", "hard")]
    inst = Instance.build(nodes, edges, len(nodes))
    return inst, DiagonalClassCost(ClassCost(inst, h, w))


def test_true_class_cost_curves_are_exact_with_a_subset_table():
    inst, oracle = _diagonal_instance()
    curves = class_cost_curves(inst, oracle)
    for c in curves:
        nodes = np.array(c["nodes"])
        ref = brute_curve(np.zeros((len(nodes),) * 2), inst.part(c["type"]).hard,
                          cost=lambda members: oracle.cost(nodes[members]))
        assert c["pricing"] == "exact"
        for p, want in zip(c["points"], ref):
            if not np.isfinite(want):
                assert p["infeasible"] and p["cost"] is None
                continue
            assert p["proven"] and p["cost"] == pytest.approx(want, rel=1e-9, abs=1e-12)
            labels = np.asarray(p["labels"])
            assert sum(oracle.cost(nodes[labels == q]) for q in np.unique(labels)) == pytest.approx(p["cost"])
    total, labels = combine_curves(inst, curves, max_classes=5)
    assert labels is not None and len(np.unique(labels)) <= 5
    assert oracle.class_cost(labels) == pytest.approx(total)         # ClassCost: the total true cost


def test_heuristic_oracle_pricing_never_claims_a_proof():
    inst, oracle = _diagonal_instance(1)

    class Measured(DiagonalClassCost):       # no subset table, estimates: surrogate proposals priced by the oracle
        exact = False

        def subset_costs(self, nodes):
            return None

    exact = class_cost_curves(inst, oracle)
    heuristic = class_cost_curves(inst, Measured(oracle.class_cost))
    for e, h in zip(exact, heuristic):
        assert h["pricing"] == "heuristic"
        for pe, ph in zip(e["points"], h["points"]):
            if pe["infeasible"]:
                continue
            assert not ph["proven"] and ph["bound"] is None
            assert ph["cost"] >= pe["cost"] - 1e-9          # never below the proven optimum


# ---------------------------------------------------------------------- the sweep on a real instance
def _first_layers(inst: Instance, n_layers: int) -> Instance:
    keep = {inst.nodes[i].id for t in inst.types for i in inst.type_members(t)[:n_layers]}
    nodes = [nd for nd in inst.nodes if nd.id in keep]
    edges = [e for e in inst.edges if e.u in keep and e.v in keep]
    return Instance.build(nodes, edges, len(nodes), name=f"{inst.name}[:{n_layers}]")


def test_sweep_proves_every_point_of_a_real_instance():
    inst = _first_layers(Instance.load(REAL), 8)
    res = sweep(inst, "colgen")
    assert res.complete and all(r["proven"] for r in res.rows + res.frontier)
    for t, curve in zip(inst.types, res.types):
        blk = inst.part(t)
        ref = brute_curve(blk.W, blk.hard)
        got = [p["objective"] for p in curve["points"]]
        assert got == pytest.approx(ref, rel=1e-9, abs=1e-15)


def test_sweep_gives_the_time_left_to_the_points_still_unproven():
    """Under a time limit the first pass hands each point an equal share; what the easy points leave goes to a
    second pass over the unproven ones (a fake solver that only proves a point on its second call)."""
    from geoshare_opt.budget_sweep import _bounded_curves, _fill_curves
    from geoshare_opt.options import SolveOptions
    from geoshare_opt.solvers.base import SolveContext
    from geoshare_opt.solvers.colgen import model_solver
    from geoshare_opt.solvers.curves import ModelAnswer, parts_of

    inst = _first_layers(Instance.load(REAL), 6)
    options = SolveOptions()
    real = model_solver(options, SolveContext(inst, options))
    calls: dict = {}

    def first_call_times_out(model, time_limit, hint):
        key = (model.parts[0].type, model.max_classes)
        calls[key] = calls.get(key, 0) + 1
        if calls[key] == 1:
            return ModelAnswer("unknown", None, -float("inf"))
        return real(model, time_limit, hint)

    curves, forests = _bounded_curves(parts_of(inst))
    events = []
    _, interrupted = _fill_curves(curves, forests, first_call_times_out, {}, time.monotonic() + 60, None,
                                  events.append)
    assert not interrupted
    assert all(cv.exact(k) for cv in curves for k in range(1, cv.part.cap + 1))
    assert any(e["event"] == "refine" for e in events) and max(calls.values()) == 2
