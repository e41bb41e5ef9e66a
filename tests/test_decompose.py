"""The per-type decomposition: the DP against exhaustive allocation, the lazy curve driver against brute force
(with a solver-free reference sub-solver), bounds, time limits, infeasibility and the greedy hints."""
from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest

from geoshare_opt import solve
from geoshare_opt.checker import check_result
from geoshare_opt.instance import Instance
from geoshare_opt.options import SolveOptions
from geoshare_opt.solvers.base import SolveContext
from geoshare_opt.solvers.bruteforce import brute_force
from geoshare_opt.solvers.curves import INF, Model, ModelAnswer, allocate, part_greedy, part_instance, parts_of
from geoshare_opt.solvers.decompose import can_decompose, solve_decomposed, type_curve

from exact_cases import case

EXACT = ["cpsat", "highs", "pulp"]


# ------------------------------------------------------------------------------------------- the DP
def exhaustive(values, caps_params, K, P):
    best, arg = INF, None
    for ks in itertools.product(*[range(1, len(v)) for v in values]):
        if sum(ks) > K:
            continue
        if P is not None and sum(k * p for k, p in zip(ks, caps_params)) > P:
            continue
        val = sum(v[k] for v, k in zip(values, ks))
        if val < best:
            best, arg = val, ks
    return best, arg


@pytest.mark.parametrize("seed", range(60))
def test_allocate_equals_exhaustive(seed):
    rng = np.random.default_rng(seed)
    T = int(rng.integers(1, 5))
    values = []
    for _ in range(T):
        cap = int(rng.integers(1, 6))
        # non-increasing, not convex, sometimes infinite at small k (hard edges)
        steps = np.sort(rng.exponential(size=cap))[::-1] * rng.choice([1, 10])
        v = np.concatenate([[INF], np.cumsum(steps[::-1])[::-1] - steps.sum() + rng.normal()])
        chi = int(rng.integers(1, cap + 1)) if rng.random() < 0.3 else 1
        v[1:chi] = INF
        values.append(v)
    params = [int(rng.integers(0, 5)) for _ in range(T)]
    K = int(rng.integers(T, T + 8))
    P = None if rng.random() < 0.5 else int(sum(params) + rng.integers(0, 12))
    pens = [np.zeros(len(v), dtype=int) for v in values]
    got, ks = allocate(values, pens, K, params if P is not None else None, P)
    want, _ = exhaustive(values, params, K, P)
    if want == INF:
        assert got == INF and ks is None
    else:
        assert got == pytest.approx(want)
        assert sum(ks) <= K
        assert sum(values[t][k] for t, k in enumerate(ks)) == pytest.approx(got)
        if P is not None:
            assert sum(k * p for k, p in zip(ks, params)) <= P


def test_allocate_is_not_greedy():
    """A non-convex curve where the greedy marginal allocation is wrong: type a gains nothing from its 2nd class
    and everything from its 3rd; type b gains a little from its 2nd."""
    a = np.array([INF, 10.0, 10.0, 0.0])
    b = np.array([INF, 5.0, 4.0, 4.0])
    z = [np.zeros(4, dtype=int)] * 2
    val, ks = allocate([a, b], z, 4)
    assert (val, ks) == (5.0, [3, 1])
    # a greedy that buys the best marginal gain first takes b's 2nd class (gain 1 vs 0) and ends at 10 + 4 = 14


def test_allocate_breaks_ties_by_penalty():
    a = np.array([INF, 1.0, 1.0])
    val, ks = allocate([a], [np.array([0, 0, 1])], 2)
    assert ks == [1]
    val, ks = allocate([a], [np.array([0, 1, 0])], 2)
    assert ks == [2]


# ------------------------------------------------------------------------------------------- a reference sub-solver
def reference_solver(model: Model, time_limit, hint) -> ModelAnswer:
    """Solve a one-part model by brute force (no MILP, no CP-SAT): isolates the driver's logic."""
    (part,) = model.parts
    inst = part_instance(part, model.max_classes)
    bf = brute_force(inst)
    if bf is None:
        return ModelAnswer("infeasible", None, INF)
    return ModelAnswer("optimal", [bf[1]], bf[0])


def decomposed(inst: Instance, sub=reference_solver, time_limit=None, native=None):
    options = SolveOptions(time_limit=time_limit, native=native or {})
    ctx = SolveContext(inst, options)
    return solve_decomposed(inst, options, ctx, sub), ctx


def test_decomposition_driver_equals_bruteforce():
    checked = 0
    for seed in range(300):
        inst, opt = case(seed)
        if not can_decompose(inst):
            continue
        out, _ = decomposed(inst)
        if opt is None:
            assert out.termination.value == "infeasible", seed
        else:
            assert out.termination.value == "optimal", seed
            from geoshare_opt.checker import evaluate
            ev = evaluate(inst, out.labels)
            assert ev.feasible and ev.objective == pytest.approx(opt, abs=1e-9), seed
            assert out.bound == pytest.approx(opt, abs=1e-9)
        checked += 1
    assert checked >= 200


def test_driver_solves_only_the_points_it_needs():
    """Two types whose caps fit the budget: one solve per type (at its cap) settles everything."""
    nodes = [{"id": f"a{i}", "type": "a"} for i in range(4)] + [{"id": f"b{i}", "type": "b"} for i in range(4)]
    edges = [(f"a{i}", f"a{j}", 1.0) for i in range(4) for j in range(i + 1, 4)]
    edges += [(f"b{i}", f"b{j}", 1.0) for i in range(4) for j in range(i + 1, 4)]
    inst = Instance.build(nodes, edges, 4, max_classes_per_type={"a": 2, "b": 2})
    calls = []

    def counting(model, tl, hint):
        calls.append(model.max_classes)
        return reference_solver(model, tl, hint)

    out, _ = decomposed(inst, counting, native={"hint": False})
    assert out.termination.value == "optimal" and out.bound == pytest.approx(4.0)
    assert calls == [2, 2]


def test_time_limited_subsolves_give_a_valid_bound():
    """A sub-solver that never proves anything: the driver still returns an incumbent, a bound below it, and
    termination time_limit."""
    def weak(model, tl, hint):
        ans = reference_solver(model, tl, hint)
        if ans.status == "infeasible":
            return ModelAnswer("unknown", None, -INF)
        return ModelAnswer("feasible", ans.labels, ans.bound - 1.0)

    for seed in range(40):
        inst, opt = case(seed)
        if opt is None or not can_decompose(inst):
            continue
        out, ctx = decomposed(inst, weak, time_limit=5.0, native={"hint": False})
        if out.termination.value == "optimal":
            continue  # trivial bound met: nothing left to prove
        assert out.termination.value == "time_limit"
        assert out.labels is not None
        from geoshare_opt.checker import evaluate
        ev = evaluate(inst, out.labels)
        assert ev.feasible
        assert out.bound <= ev.objective + 1e-9
        assert out.bound <= opt + 1e-9


# ------------------------------------------------------------------------------------------- the backends
@pytest.mark.parametrize("solver", EXACT)
def test_time_limit_zero_is_well_formed(solver):
    inst, _ = case(7)
    r = solve(inst, solver, time_limit=0)
    assert r.termination in ("time_limit", "optimal")
    assert check_result(inst, r) == []
    assert r.wall_time_s < 5
    d = r.to_dict()
    for key in ("termination", "status", "objective", "bound", "gap", "assignment", "options"):
        assert key in d


def dense_signed(n: int, seed: int, k: int, types: int = 1) -> Instance:
    rng = np.random.default_rng(seed)
    nodes = [{"id": f"n{i}", "type": f"t{i % types}"} for i in range(n)]
    edges = [(f"n{i}", f"n{j}", float(rng.integers(-9, 10)) or 1.0)
             for i in range(n) for j in range(i + 1, n) if (i - j) % types == 0]
    return Instance.build(nodes, edges, k * types, name=f"dense{n}")


@pytest.mark.parametrize("solver", ["cpsat", "highs"])
def test_time_limit_returns_incumbent_and_bound(solver):
    inst = dense_signed(40, 1, 5)
    r = solve(inst, solver, time_limit=0.5)
    assert r.termination in ("time_limit", "optimal")
    assert r.status == "feasible" and r.assignment is not None
    assert r.bound is not None and r.bound <= r.objective + 1e-9
    assert check_result(inst, r) == []
    assert r.wall_time_s < 5


@pytest.mark.parametrize("solver", EXACT)
def test_infeasible_budget(solver):
    clique = [{"id": f"c{i}", "type": "t"} for i in range(4)]
    edges = [(f"c{i}", f"c{j}", "hard") for i in range(4) for j in range(i + 1, 4)]
    inst = Instance.build(clique + [{"id": "o", "type": "u"}], edges, 4)  # the clique needs 4, type u needs 1
    r = solve(inst, solver)
    assert (r.termination, r.status, r.assignment, r.objective) == ("infeasible", "none", None, None)
    assert check_result(inst, r) == []
    ok = solve(inst.with_budget(5), solver)
    assert ok.termination == "optimal" and ok.objective == 0.0


@pytest.mark.parametrize("solver", EXACT)
def test_multi_type_optimum_needs_the_dp(solver):
    """Type a's curve is flat from 1 to 2 classes then drops; the DP must give a three classes and b one."""
    a = [{"id": f"a{i}", "type": "a"} for i in range(3)]
    b = [{"id": f"b{i}", "type": "b"} for i in range(2)]
    edges = [("a0", "a1", 5.0), ("a0", "a2", 5.0), ("a1", "a2", 5.0), ("b0", "b1", 4.0)]
    # a: f(1)=15, f(2)=5, f(3)=0; b: f(1)=4, f(2)=0. K=4: a=3,b=1 -> 4; a=2,b=2 -> 5.
    inst = Instance.build(a + b, edges, 4)
    r = solve(inst, solver)
    assert r.termination == "optimal" and r.objective == pytest.approx(4.0)
    assert r.classes_per_type == {"a": 3, "b": 1}


@pytest.mark.parametrize("solver", ["cpsat", "highs"])
def test_parameter_cap_with_uniform_types_uses_the_dp(solver):
    a = [{"id": f"a{i}", "type": "a", "params": 10} for i in range(3)]
    b = [{"id": f"b{i}", "type": "b", "params": 1} for i in range(3)]
    edges = [(f"a{i}", f"a{j}", 1.0) for i in range(3) for j in range(i + 1, 3)]
    edges += [(f"b{i}", f"b{j}", 1.0) for i in range(3) for j in range(i + 1, 3)]
    inst = Instance.build(a + b, edges, 6, max_params=23)  # a may only afford 2 classes (20 + 3 for b)
    r = solve(inst, solver)
    assert r.stats["method"] == "decomposition"
    assert r.termination == "optimal" and r.objective == pytest.approx(brute_force(inst)[0]) == pytest.approx(1.0)
    assert r.stored_params <= 23


def test_nonuniform_params_under_a_cap_fall_back_to_one_model():
    nodes = [{"id": "a", "type": "t", "params": 5}, {"id": "b", "type": "t", "params": 1},
             {"id": "c", "type": "t", "params": 1}]
    inst = Instance.build(nodes, [("a", "b", 1.0), ("b", "c", 1.0), ("a", "c", 1.0)], 3, max_params=6)
    assert not can_decompose(inst)
    for solver in ("cpsat", "highs"):
        r = solve(inst, solver)
        assert r.stats["method"] == "monolithic"
        assert r.termination == "optimal" and r.objective == pytest.approx(brute_force(inst)[0])


@pytest.mark.parametrize("solver", ["cpsat", "highs"])
def test_type_curve_matches_bruteforce_and_is_monotone(solver):
    inst = dense_signed(7, 3, 7)
    block = inst.part("t0")
    curve = type_curve(block, [1, 2, 3, 4, 5], solver)
    values = [pt["objective"] for pt in curve]
    assert [pt["k"] for pt in curve] == [1, 2, 3, 4, 5]
    assert all(pt["optimal"] for pt in curve)
    assert all(x >= y - 1e-9 for x, y in zip(values, values[1:]))
    for pt in curve:
        assert pt["objective"] == pytest.approx(brute_force(inst.with_budget(pt["k"]))[0])


def test_part_greedy_is_feasible_or_none():
    for seed in range(200):
        inst, opt = case(seed)
        for p in parts_of(inst):
            for k in range(1, p.cap + 1):
                lab = part_greedy(p, k)
                if lab is not None:
                    assert p.feasible(lab, k)


def test_seeded_single_thread_runs_repeat():
    inst = dense_signed(12, 5, 3)
    for solver in ("cpsat", "highs"):
        a, b = solve(inst, solver, seed=3), solve(inst, solver, seed=3)
        assert a.assignment == b.assignment and a.objective == b.objective


def test_solver_core_does_not_import_torch():
    code = ("import sys, geoshare_opt; from geoshare_opt.solvers import cpsat, highs, pulp_milp, milp, decompose; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


INTERRUPT_SCRIPT = """
import os, signal, sys, threading, time
import numpy as np
from geoshare_opt import solve
from geoshare_opt.instance import Instance
signal.signal(signal.SIGINT, signal.default_int_handler)  # background jobs may start with SIGINT ignored
rng = np.random.default_rng(0)
n = 34
nodes = [{"id": f"n{i}", "type": "t"} for i in range(n)]
edges = [(f"n{i}", f"n{j}", round(float(rng.uniform(-1, 1)), 3) or 0.5) for i in range(n) for j in range(i + 1, n)]
inst = Instance.build(nodes, edges, 7)
solve(Instance.build(nodes[:4], edges[:3], 2), sys.argv[1])  # imports and the greedy's JIT happen here, untimed
threading.Timer(float(sys.argv[2]), lambda: os.kill(os.getpid(), signal.SIGINT)).start()
t0 = time.time()
r = solve(inst, sys.argv[1], time_limit=60)
print(r.termination, r.status, round(time.time() - t0, 1))
"""


@pytest.mark.parametrize("solver", ["cpsat", "highs"])
def test_ctrl_c_returns_the_incumbent(solver):
    """Ctrl-C inside a native solve stops it and returns the best assignment with termination interrupted
    (CP-SAT's own SIGINT handler would instead return as if the search had ended)."""
    out = subprocess.run([sys.executable, "-c", INTERRUPT_SCRIPT, solver, "2.5"], capture_output=True, text=True,
                         timeout=90)
    term, status, seconds = out.stdout.split()
    assert (term, status) == ("interrupted", "feasible"), out.stderr[-2000:]
    assert float(seconds) < 20


@pytest.mark.parametrize("solver", ["cpsat", "highs"])
def test_tiny_time_limit_without_warm_start_is_well_formed(solver):
    """No greedy, a few milliseconds: the solver may stop before any solution; the result must still be
    consistent (time_limit, and no assignment when status is none)."""
    inst = dense_signed(40, 2, 6)
    r = solve(inst, solver, time_limit=0.01, native={"hint": False})
    assert r.termination == "time_limit"
    if r.status == "none":
        assert r.assignment is None and r.objective is None and r.gap is None
    assert check_result(inst, r) == []


def test_infeasible_warm_start_is_ignored():
    inst = dense_signed(8, 4, 3)
    too_many = list(range(8))  # 8 classes under a budget of 3
    for solver in ("cpsat", "highs"):
        r = solve(inst, solver, warm_start=too_many)
        assert r.termination == "optimal" and r.objective == pytest.approx(brute_force(inst)[0])


# ------------------------------------------------------------------------------------------- time-limit regressions
def test_cpsat_unknown_subsolve_gives_no_bound():
    """CP-SAT stopped before any solution (status UNKNOWN) leaves best_objective_bound at its default 0: that is no
    bound, and taking it as one once made a timed-out dense instance report a false optimum."""
    pytest.importorskip("ortools")
    from conformance import interrupt_instance
    from geoshare_opt.solvers.cpsat import model_solver
    inst = interrupt_instance()
    options = SolveOptions(threads=1)
    part = parts_of(inst)[0]
    ans = model_solver(options, SolveContext(inst, options))(Model((part,), part.cap, None), 0.01, None)
    assert ans.status != "optimal"
    if ans.labels is None:
        assert ans.bound == -INF
    else:
        assert ans.bound <= part.objective(ans.labels[0]) + 1e-6


def test_curve_ignores_a_bound_above_the_answer_itself():
    from geoshare_opt.solvers.curves import Curve
    inst = Instance.build([{"id": f"n{i}", "type": "t"} for i in range(3)], [("n0", "n1", -1.0), ("n1", "n2", -1.0)], 3)
    part = parts_of(inst)[0]
    cv = Curve(part)
    labels = np.array([0, 1, 2])  # value 0; the optimum is -2
    cv.record(3, ModelAnswer("feasible", [labels], 5.0))
    assert cv.lo[3] <= -2.0 and not cv.exact(3)


@pytest.mark.slow
def test_cpsat_time_limited_never_claims_a_false_optimum():
    pytest.importorskip("ortools")
    from conformance import interrupt_instance
    inst = interrupt_instance()
    res = solve(inst, "cpsat", time_limit=2, threads=1)
    ref = solve(inst, "anneal", time_limit=2)
    assert res.objective is not None  # the greedy warm start is offered before CP-SAT runs
    if res.bound is not None:
        assert res.bound <= res.objective + 1e-6
        assert res.bound <= ref.objective + 1e-6
    if res.termination == "optimal":
        assert res.objective <= ref.objective + 1e-6


@pytest.mark.slow
def test_pulp_honours_the_time_limit():
    pytest.importorskip("pulp")
    from conformance import interrupt_instance
    from cpu_clock import Spent
    inst = interrupt_instance()
    with Spent() as spent:
        res = solve(inst, "pulp", time_limit=2, threads=1)
    spent.check(2, 8, "pulp")
    assert res.termination in ("time_limit", "optimal")
    assert res.objective is not None
    if res.bound is not None:
        assert res.bound <= res.objective + 1e-6
