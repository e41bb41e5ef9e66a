"""The plain K = 2 sweep of ``anneal`` (``_ising_kernels``): its flip gains stay exact, it is the generic chain move
for move, it is reproducible from the seed, and the backend takes it only for the plain structure (one type, two
classes, no hard edges, no parameter cap)."""
from __future__ import annotations

import numpy as np
import pytest

from geoshare_opt.api import solve
from geoshare_opt.checker import evaluate
from geoshare_opt.errors import InputError
from geoshare_opt.instance import Instance
from geoshare_opt.solvers import _anneal_kernels as K
from geoshare_opt.solvers import _ising_kernels as I
from geoshare_opt.solvers._csr import adjacency

from anneal_helpers import ends_with_and_without_table


def spin_glass(seed: int, n: int = 80, m: int = 400, weights: str = "pm1", **budget) -> Instance:
    """Random graph, one type; ``pm1``: +-1 weights, ``int``: integers in [-3, 3], ``dyadic``: multiples of 1/8
    (exact in floating point, so the generic table and the flip gains agree bit for bit)."""
    rng = np.random.default_rng(seed)
    edges = {}
    for i, j in rng.integers(0, n, size=(m, 2)):
        if i == j:
            continue
        if weights == "pm1":
            w = float(rng.choice([-1.0, 1.0]))
        elif weights == "int":
            w = float(rng.integers(-3, 4)) or 1.0
        else:
            w = float(rng.integers(-16, 17)) / 8 or 0.125
        edges[(min(i, j), max(i, j))] = w
    nodes = [{"id": str(i), "type": "v", "params": 1 + i % 3} for i in range(n)]
    return Instance.build(nodes, [(str(i), str(j), w) for (i, j), w in edges.items()],
                          budget.pop("k", 2), **budget)


def _sweep(inst: Instance, loc: np.ndarray, t_a: float, t_b: float, sweeps: int, seed: int, integral: bool):
    adj = adjacency(inst)
    wt = adj.wt.astype(np.int64) if integral else adj.wt
    gain = np.zeros(adj.n, dtype=wt.dtype)
    loc = loc.astype(np.int64).copy()
    I.flip_gains(loc, adj.indptr, adj.nbr, wt, gain)
    obj = np.array([K.objective(loc, adj.indptr, adj.nbr, adj.wt)])
    best = np.array([obj[0]])
    best_loc = loc.copy()
    thr = np.zeros(int(np.abs(adj.wt).max()) * 40 + 2 if integral else 0, dtype=np.int64)
    rng = np.array([np.uint64(2 * seed + 1)], dtype=np.uint64)
    I.ising_sweeps(loc, gain, adj.indptr, adj.nbr, wt, t_a, t_b, sweeps, rng, obj, best, best_loc, thr, np.zeros(0))
    return adj, wt, loc, gain, obj[0], best[0], best_loc


@pytest.mark.parametrize("weights", ["pm1", "int", "dyadic"])
def test_flip_gains_and_objective_stay_exact_after_many_flips(weights):
    inst = spin_glass(1, weights=weights)
    start = np.random.default_rng(0).integers(0, 2, len(inst.nodes))
    integral = weights != "dyadic"
    adj, wt, loc, gain, obj, best, best_loc = _sweep(inst, start, 3.0, 0.3, 200, 5, integral)
    assert np.count_nonzero(loc != start) > 0
    fresh = np.zeros_like(gain)
    I.flip_gains(loc, adj.indptr, adj.nbr, wt, fresh)
    np.testing.assert_array_equal(gain, fresh)
    # the gain is the objective change of the flip, as the checker computes it
    for v in range(0, len(loc), 7):
        flipped = loc.copy()
        flipped[v] = 1 - flipped[v]
        assert evaluate(inst, flipped).objective - evaluate(inst, loc).objective == pytest.approx(gain[v], abs=1e-9)
    assert obj == pytest.approx(evaluate(inst, loc).objective, abs=1e-9)
    assert best == pytest.approx(evaluate(inst, best_loc).objective, abs=1e-9)
    assert best <= obj + 1e-9


def test_same_seed_same_chain_other_seed_another():
    inst = spin_glass(2)
    start = np.zeros(len(inst.nodes), dtype=np.int64)
    a = _sweep(inst, start, 2.0, 0.5, 50, 3, True)[2]
    b = _sweep(inst, start, 2.0, 0.5, 50, 3, True)[2]
    c = _sweep(inst, start, 2.0, 0.5, 50, 4, True)[2]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("weights", ["pm1", "dyadic"])
def test_backend_gives_the_generic_chain_move_for_move(weights):
    # same xorshift stream, same node order, same acceptance test: with exactly representable weights the
    # specialised sweep reproduces the generic one, so the whole run returns the same assignment
    # (one schedule for both: "auto" picks linear in 1/T for the plain sweep's single chain only)
    inst = spin_glass(3, n=120, m=700, weights=weights)
    for schedule in ("geometric", "linear_beta"):
        fast = solve(inst, "anneal", seed=11, native={"sweeps": 300, "schedule": schedule})
        generic = solve(inst, "anneal", seed=11, native={"sweeps": 300, "kernel": "generic", "schedule": schedule})
        assert fast.stats["kernel"] == "ising" and generic.stats["kernel"] == "generic"
        assert fast.assignment == generic.assignment
        assert fast.objective == generic.objective
        again = solve(inst, "anneal", seed=11, native={"sweeps": 300, "schedule": schedule})
        assert again.assignment == fast.assignment


def test_auto_schedule_is_linear_in_beta_for_one_plain_chain_only():
    from test_anneal_population import hub_graph
    assert solve(spin_glass(3), "anneal", seed=0, native={"sweeps": 50}).stats["schedule"] == "linear_beta"
    assert solve(spin_glass(3, k=3), "anneal", seed=0, native={"sweeps": 50}).stats["schedule"] == "geometric"
    assert solve(hub_graph(0), "anneal", seed=0, native={"sweeps": 50}).stats["schedule"] == "geometric"
    assert solve(hub_graph(0), "anneal", seed=0,
                 native={"sweeps": 50, "population": 1}).stats["schedule"] == "linear_beta"
    assert solve(spin_glass(3), "anneal", seed=0,
                 native={"sweeps": 50, "schedule": "geometric"}).stats["schedule"] == "geometric"


def test_dispatch_only_for_the_plain_structure():
    def kernel(inst):
        res = solve(inst, "anneal", seed=0, native={"sweeps": 20})
        assert res.feasible
        return res.stats["kernel"]

    assert kernel(spin_glass(4)) == "ising"
    assert kernel(spin_glass(4, k=3)) == "generic"                      # three classes
    assert kernel(spin_glass(4, max_params=4)) == "generic"             # parameter cap
    plain = spin_glass(4)
    nodes = [{"id": n.id, "type": n.type, "params": n.params} for n in plain.nodes]
    edges = [(e.u, e.v, e.w) for e in plain.edges]
    hard = Instance.build(nodes, [e for e in edges if {e[0], e[1]} != {"0", "1"}] + [("0", "1", "hard")], 2)
    assert kernel(hard) == "generic"                                     # a hard edge
    two_types = Instance.build([dict(n, type="a" if int(n["id"]) % 2 else "b") for n in nodes], edges, 4)
    assert kernel(two_types) == "generic"                                # several types


def test_caps_and_hard_edges_stay_feasible_on_the_generic_path():
    inst = spin_glass(5, max_params=2 * 2 + 1)   # classes store max params (1..3): the cap binds
    res = solve(inst, "anneal", seed=1, native={"sweeps": 50})
    assert res.stats["kernel"] == "generic"
    ev = evaluate(inst, res.assignment)
    assert ev.feasible, ev.violations


def test_timed_run_uses_the_plain_kernel_and_returns_a_local_optimum():
    inst = spin_glass(6, n=400, m=1600)
    solve(inst, "anneal", seed=0, time_limit=0.3)   # compiles the kernels on a cold numba cache
    res = solve(inst, "anneal", seed=0, time_limit=0.5)
    assert res.stats["kernel"] == "ising" and res.feasible
    labels = np.array([res.assignment[n.id] for n in inst.nodes])
    labels -= labels.min()
    adj = adjacency(inst)
    gain = np.zeros(adj.n, dtype=np.int64)
    I.flip_gains(labels.astype(np.int64), adj.indptr, adj.nbr, adj.wt.astype(np.int64), gain)
    assert gain.min() >= 0   # no single flip improves the returned assignment


def test_unknown_kernel_is_bad_input():
    with pytest.raises(InputError, match="kernel"):
        solve(spin_glass(7), "anneal", native={"kernel": "gpu"})


def test_a_hub_keeps_the_acceptance_table_for_everyone_else():
    # one node of degree 300 (G64 has one of 589): the table stays on, capped at ETAB_MAX, gains beyond it use
    # exp, and the chain is the one computing exp for every attempt; the plain K = 2 sweep follows the same rule
    from geoshare_opt.solvers.anneal import ETAB_MAX, _State
    rng = np.random.default_rng(8)
    n = 400
    edges = {(0, j): 1.0 for j in range(1, 301)}
    for i, j in rng.integers(1, n, size=(1200, 2)):
        if i != j:
            edges[(min(i, j), max(i, j))] = float(rng.choice([-1.0, 1.0]))
    inst = Instance.build([{"id": str(i), "type": "v"} for i in range(n)],
                          [(str(i), str(j), w) for (i, j), w in edges.items()], 2)
    adj = adjacency(inst)
    start = np.zeros(n, dtype=np.int64)
    start[0] = 1   # the hub's first attempt has gain +300, beyond the table: the exp fallback
    # T = 8: every gain below the table's length has d / T <= 40, so both draw a random number for it
    ends, table_len = ends_with_and_without_table(lambda: _State(inst, adj, np.array([2]), start), 8.0, 8.0, 40,
                                                  seed=5)
    assert table_len == ETAB_MAX
    np.testing.assert_array_equal(ends[0], ends[1])
    # (one chain, without the hubs' temperature factor: only the plain sweep has those)
    fast = solve(inst, "anneal", seed=2, native={"sweeps": 200, "t_start": 8.0, "hub_temperature": False,
                                                 "population": 1})
    generic = solve(inst, "anneal", seed=2, native={"sweeps": 200, "t_start": 8.0, "kernel": "generic"})
    assert fast.stats["kernel"] == "ising" and fast.assignment == generic.assignment
    assert solve(inst, "anneal", seed=2, native={"sweeps": 200}).stats["hubs"] == 1


def test_hub_scales_are_degree_over_mean_for_hubs_only():
    from geoshare_opt.solvers.hubs import HUB_DEGREE, hub_scales
    n = 60
    edges = [(0, j, 1.0 if j % 2 else -1.0) for j in range(1, 41)] + [(i, i + 1, 2.0) for i in range(1, n - 1)]
    inst = Instance.build([{"id": str(i), "type": "v"} for i in range(n)],
                          [(str(i), str(j), w) for i, j, w in edges], 2)
    adj = adjacency(inst)
    wdeg = np.zeros(n)
    for i, j, w in edges:
        wdeg[i] += abs(w)
        wdeg[j] += abs(w)
    scale = hub_scales(adj)
    hub = wdeg >= HUB_DEGREE * wdeg.mean()
    assert hub.sum() == 1 and hub[0]
    np.testing.assert_allclose(scale, np.where(hub, wdeg / wdeg.mean(), 1.0))
    assert len(hub_scales(adjacency(spin_glass(3)))) == 0     # no hubs: the unscaled sweep


def test_a_hub_sees_its_scaled_temperature():
    # two nodes, one edge of weight 4 inside nobody's class: each flip costs 4. At T = 1 node 0 with factor 4 is
    # accepted with probability exp(-4 / 4), node 1 (factor 1) with exp(-4)
    indptr = np.array([0, 1, 2])
    nbr = np.array([1, 0])
    wt = np.array([4, 4], dtype=np.int64)
    thr = np.zeros(16, dtype=np.int64)
    scale = np.array([4.0, 1.0])
    rng = np.array([np.uint64(77)], dtype=np.uint64)
    first = 0
    trials = 20000
    for _ in range(trials):
        loc = np.array([0, 1], dtype=np.int64)
        gain = np.zeros(2, dtype=np.int64)
        I.flip_gains(loc, indptr, nbr, wt, gain)
        obj = np.array([0.0])
        I.ising_sweeps(loc, gain, indptr, nbr, wt, 1.0, 1.0, 1, rng, obj, np.array([0.0]), loc.copy(), thr, scale)
        first += loc[0] == 1
    assert abs(first / trials - np.exp(-1.0)) < 0.015


def test_huge_integer_weights_take_the_real_valued_path():
    # integral but beyond 2^52 per node: no integer table, no int64 gains (they would overflow), same chain
    plain = spin_glass(9, n=60, m=240)
    big = Instance.build([{"id": n.id, "type": n.type} for n in plain.nodes],
                         [(e.u, e.v, e.w * 2.0 ** 60) for e in plain.edges], 2)
    fast = solve(big, "anneal", seed=3, native={"sweeps": 100, "t_start": 3 * 2.0 ** 60, "t_end": 0.2 * 2.0 ** 60})
    generic = solve(big, "anneal", seed=3, native={"sweeps": 100, "t_start": 3 * 2.0 ** 60,
                                                   "t_end": 0.2 * 2.0 ** 60, "kernel": "generic"})
    assert fast.stats["kernel"] == "ising" and fast.feasible
    assert fast.assignment == generic.assignment
    # the annealing did something: better than the greedy start alone
    greedy = solve(big, "anneal", seed=3, native={"sweeps": 1, "t_start": 1e-9, "t_end": 1e-9})
    assert fast.objective < greedy.objective
