"""The Breakout Local Search phase of ``anneal`` (``_bls_kernels``): its incremental tables stay exact, it never
leaves the feasible region (hard edges, per-type caps, the parameter cap), it is reproducible from the seed, and it
reaches the exhaustive optimum on small instances."""
from __future__ import annotations

import numpy as np
import pytest

from geoshare_opt.api import solve
from geoshare_opt.checker import evaluate
from geoshare_opt.errors import InputError
from geoshare_opt.instance import Instance
from geoshare_opt.solvers import _anneal_kernels as K
from geoshare_opt.solvers import _bls_kernels as B
from geoshare_opt.solvers._csr import adjacency
from geoshare_opt.solvers.anneal import _local_labels, _State, allocate_classes
from geoshare_opt.solvers.bruteforce import brute_force
from geoshare_opt.solvers.dsatur import greedy_labels

from anneal_helpers import ends_with_and_without_table


def random_instance(seed: int, n: int = 40, n_types: int = 3, hard: float = 0.05, params_cap: bool = True,
                    k: int | None = None) -> Instance:
    """Signed weights, hard edges, mixed parameter counts, per-type caps and (optionally) a tight parameter cap."""
    rng = np.random.default_rng(seed)
    types = rng.integers(0, n_types, size=n)
    params = rng.choice([1, 2, 4, 8], size=n)
    nodes = [{"id": f"n{i}", "type": f"t{types[i]}", "params": int(params[i])} for i in range(n)]
    edges = []
    for i in range(n):
        for j in range(i + 1, n):
            if types[i] != types[j] or rng.random() > 0.5:
                continue
            edges.append((f"n{i}", f"n{j}", "hard") if rng.random() < hard
                         else (f"n{i}", f"n{j}", float(np.round(rng.normal(0.2, 1.0), 3))))
    used = sorted({f"t{t}" for t in types})
    per_type = {used[0]: 3}
    max_params = None
    if params_cap:
        # between the one-class-per-type minimum and storing everything: the cap binds
        need = sum(int(params[types == int(t[1:])].max()) for t in used)
        max_params = need + int(0.3 * (int(params.sum()) - need))
    return Instance.build(nodes, edges, k or 4 * len(used), max_classes_per_type=per_type, max_params=max_params,
                          name=f"bls{seed}")


def _state(inst: Instance) -> _State:
    adj = adjacency(inst)
    loc, used = _local_labels(inst, greedy_labels(inst))
    kpt = allocate_classes(inst, adj, used)
    return _State(inst, adj, kpt, loc)


def _run_bls(st: _State, seed: int, iters: int):
    n = len(st.loc)
    nm = len(st.movable)
    tenure_max = max(3, nm // 10)
    ring = tenure_max + 2
    ctl = np.zeros(6)
    ctl[B.C_L] = max(1, nm // 20)
    ctl[B.C_LAST] = np.nan
    best_obj = np.array([st.obj[0]])
    best_loc = st.loc.copy()
    rng = np.array([np.uint64(seed * 2 + 1)], dtype=np.uint64)
    tabu = np.zeros(n, dtype=np.int64)
    heads = np.full(ring, -1, dtype=np.int64)
    nodes = np.zeros(ring, dtype=np.int64)
    nxt = np.full(ring, -1, dtype=np.int64)
    for _ in range(3):   # several calls: the tabu ring and the counters carry over between them
        B.bls(st.movable, *st.common(), st.obj, best_obj, best_loc, rng, ctl, tabu, heads, nodes, nxt, iters,
              int(ctl[B.C_L]), max(2, nm // 5), 50.0, 0.8, 3, tenure_max)
    return best_loc, float(best_obj[0]), ctl


@pytest.mark.parametrize("seed", range(12))
def test_bls_tables_stay_exact_and_moves_stay_feasible(seed):
    inst = random_instance(seed, params_cap=seed % 2 == 0)
    st = _state(inst)
    assert st.params_ok() and K.hard_conflicts(st.loc, st.H) == 0
    start = float(st.obj[0])
    best_loc, best_obj, ctl = _run_bls(st, seed, 40)
    assert ctl[B.C_DESCENTS] == 120
    a = st.adj
    G, H = K.build_tables(st.loc, a.indptr, a.nbr, a.wt, a.hptr, a.hnbr, st.kmax)
    np.testing.assert_allclose(st.G, G, atol=1e-9)
    np.testing.assert_array_equal(st.H, H)
    assert st.obj[0] == pytest.approx(K.objective(st.loc, a.indptr, a.nbr, a.wt), abs=1e-9)
    if st.use_params:
        _, _, stored = K.params_state(st.loc, st.lo, st.prank, int(st.k_per_type.sum()), len(st.pvals), st.pvals)
        assert stored[0] == st.stored[0] <= st.max_params
    # the current state and the best local optimum are feasible, and the best is what the checker says
    for loc in (st.loc, best_loc):
        ev = evaluate(inst, st.global_labels(loc))
        assert ev.feasible, ev.violations
    assert evaluate(inst, st.global_labels(best_loc)).objective == pytest.approx(best_obj, abs=1e-9)
    assert best_obj <= start + 1e-9


def test_bls_is_reproducible_from_the_seed():
    inst = random_instance(3)
    runs = [_run_bls(_state(inst), 7, 30)[0] for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])
    other = _run_bls(_state(inst), 8, 30)[0]
    assert not np.array_equal(runs[0], other)   # the seed matters


@pytest.mark.parametrize("seed", range(20))
def test_bls_alone_reaches_the_exhaustive_optimum_on_small_instances(seed):
    inst = random_instance(100 + seed, n=10, n_types=1, hard=0.1, params_cap=seed % 2 == 0, k=4)
    opt = brute_force(inst)
    if opt is None:
        return
    # the anneal backend fixes the classes per type up front (its allocation is a heuristic): give it the
    # optimum's, a random start and no annealing (one sweep at a frozen temperature), so the optimum must come
    # from BLS (without it, 8 of these 20 end at the optimum)
    per_type = evaluate(inst, opt[1]).classes_per_type
    res = solve(inst, "anneal", seed=seed, native={"sweeps": 1, "t_start": 1e-9, "t_end": 1e-9, "bls_iters": 300,
                                                   "init": "random", "classes_per_type": per_type})
    ev = evaluate(inst, res.assignment)
    assert ev.feasible, ev.violations
    assert res.objective == pytest.approx(opt[0], abs=1e-9)


def test_bls_phase_runs_under_a_time_limit_and_improves_on_a_max_cut_graph():
    # a random +-1 graph at K = 2 (Gset-like): BLS after a very short anneal beats that anneal alone
    rng = np.random.default_rng(0)
    n = 300
    edges = {}
    for _ in range(6 * n):
        i, j = sorted(rng.integers(0, n, size=2))
        if i != j:
            edges[(i, j)] = float(rng.choice([-1.0, 1.0]))
    inst = Instance.build([{"id": str(i), "type": "v"} for i in range(n)],
                          [(str(i), str(j), w) for (i, j), w in edges.items()], 2)
    short = solve(inst, "anneal", seed=1, native={"sweeps": 5})
    both = solve(inst, "anneal", seed=1, native={"sweeps": 5, "bls_iters": 400})
    assert both.stats["bls_iterations"] == 400
    assert both.objective < short.objective
    solve(inst, "anneal", seed=1, time_limit=0.6, native={"bls": 0.5})  # first call compiles the timed kernels (cold numba cache)
    timed = solve(inst, "anneal", seed=1, time_limit=0.6, native={"bls": 0.5})
    assert timed.feasible and timed.stats["bls_iterations"] > 0 and timed.wall_time_s < 1.5


def test_bls_native_options_are_checked():
    inst = random_instance(0)
    with pytest.raises(InputError, match="bls"):
        solve(inst, "anneal", time_limit=0.2, native={"bls": 1.5})


def test_schedule_and_start_temperature_options():
    inst = random_instance(5)
    base = solve(inst, "anneal", seed=4, native={"sweeps": 200})
    cold = solve(inst, "anneal", seed=4, native={"sweeps": 200, "p_start": 0.05, "schedule": "linear_beta"})
    for res in (base, cold):
        assert res.feasible and evaluate(inst, res.assignment).feasible
    assert cold.stats["t_start"] < base.stats["t_start"]   # a lower acceptance at the start = a colder start
    with pytest.raises(InputError, match="schedule"):
        solve(inst, "anneal", native={"schedule": "cubic"})
    with pytest.raises(InputError, match="p_start"):
        solve(inst, "anneal", native={"p_start": 1.0})


def test_integer_weights_use_the_acceptance_table_with_the_same_chain():
    # with integer weights the sweep reads exp(-d/T) from a per-sweep table: at a temperature where every uphill
    # move draws a random number either way (d/T <= 40), the chain is move for move the one computing exp
    rng = np.random.default_rng(2)
    n = 60
    edges = {(int(i), int(j)): float(rng.choice([-1, 1])) for i, j in rng.integers(0, n, size=(300, 2)) if i < j}
    inst = Instance.build([{"id": str(i), "type": "v"} for i in range(n)],
                          [(str(i), str(j), w) for (i, j), w in edges.items()], 3)
    ends, table_len = ends_with_and_without_table(lambda: _state(inst), 2.0, 0.5, 50, seed=99)
    assert table_len > 0
    np.testing.assert_array_equal(ends[0], ends[1])
    scaled = Instance.build([{"id": str(i), "type": "v"} for i in range(n)],
                            [(str(i), str(j), 1.5 * w) for (i, j), w in edges.items()], 3)
    assert len(_state(scaled).etab) == 0   # not integer: no table
