"""Every exact backend against brute force on the same random tiny instances (tests/exact_cases.py).

Counts: cpsat and highs 500 instances each (per-type decomposition, the default); pulp with CBC 150 (each CBC call
is a subprocess); the monolithic models (native decompose=False) and the models without symmetry breaking on a
subset, so that every formulation the backends can build is checked. Optimal objectives must agree within 1e-6 and
an infeasible budget must come back as termination "infeasible" with no assignment.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from geoshare_opt import solve
from geoshare_opt.checker import check_result
from geoshare_opt.solvers.bruteforce import brute_force

from exact_cases import N_CASES, all_cases, case

TOL = 1e-6


def mismatches(solver: str, count: int, native: dict | None = None, stride: int = 1) -> list[str]:
    bad = []
    for seed in range(0, count * stride, stride):
        inst, opt = case(seed)
        r = solve(inst, solver, native=native)
        problems = check_result(inst, r)
        if opt is None:
            if r.termination != "infeasible" or r.status != "none" or r.assignment is not None:
                bad.append(f"seed {seed}: expected infeasible, got {r.termination}/{r.status} {r.objective}")
        elif r.termination != "optimal" or abs(r.objective - opt) > TOL * max(1.0, abs(opt)):
            bad.append(f"seed {seed}: expected optimum {opt}, got {r.termination} {r.objective} ({r.message})")
        elif r.bound is None or r.bound > r.objective + TOL or r.gap != 0.0:
            bad.append(f"seed {seed}: optimal but bound {r.bound} gap {r.gap}")
        if problems:
            bad.append(f"seed {seed}: inconsistent result: {problems}")
    return bad


def test_cases_cover_every_feature():
    """The generator really mixes the hard parts (otherwise agreement would prove little)."""
    cases = all_cases()
    insts = [inst for inst, _ in cases]
    assert len(cases) == N_CASES
    assert sum(opt is None for _, opt in cases) >= 40                               # infeasible budgets
    assert sum(len(i.types) >= 2 for i in insts) >= 150                             # several types
    assert sum(any(e.hard for e in i.edges) for i in insts) >= 250                  # hard edges
    assert sum(any(not e.hard and e.w < 0 for e in i.edges) for i in insts) >= 400  # negative weights
    assert sum(bool(i.budget.max_classes_per_type) for i in insts) >= 80            # per-type caps
    assert sum(i.budget.max_params is not None for i in insts) >= 120               # parameter caps
    nonuniform = sum(i.budget.max_params is not None and len(set(i.params.tolist())) > len(i.types) for i in insts)
    assert nonuniform >= 30                                                         # monolithic fallback
    both = sum(bool(i.budget.max_classes_per_type) and i.budget.max_params is not None for i in insts)
    assert both >= 20                                                               # all caps at once
    # the budget binds: the optimum is above "every negative edge inside, no positive one" in many cases
    def trivial(i):
        _, _, w, hard = i.edge_arrays
        return float(w[i.same_type_edge_mask & ~hard & (w < 0)].sum())
    assert sum(opt is not None and opt > trivial(i) + 1e-9 for i, opt in cases) >= 150


def test_bruteforce_on_hand_cases():
    from geoshare_opt.instance import Instance
    tri = Instance.build([{"id": x, "type": "t"} for x in "abc"], [("a", "b", 1.0), ("b", "c", 1.0), ("a", "c", 1.0)], 2)
    assert brute_force(tri)[0] == pytest.approx(1.0)
    hard = Instance.build([{"id": x, "type": "t"} for x in "abc"],
                          [("a", "b", "hard"), ("b", "c", "hard"), ("a", "c", "hard")], 2)
    assert brute_force(hard) is None
    neg = Instance.build([{"id": x, "type": "t"} for x in "abc"], [("a", "b", -1.0), ("b", "c", 2.0)], 3)
    assert brute_force(neg)[0] == pytest.approx(-1.0)
    # parameter cap: two classes of 10 do not fit in 15, so the positive edge must be paid
    par = Instance.build([{"id": "a", "type": "t", "params": 10}, {"id": "b", "type": "t", "params": 10}],
                         [("a", "b", 1.0)], 2, max_params=15)
    assert brute_force(par)[0] == pytest.approx(1.0)


def test_cpsat_equals_bruteforce_on_500():
    t0 = time.perf_counter()
    assert mismatches("cpsat", 500) == []
    assert time.perf_counter() - t0 < 120


def test_highs_equals_bruteforce_on_500():
    assert mismatches("highs", 500) == []


def test_pulp_cbc_equals_bruteforce_on_150():
    assert mismatches("pulp", 150, stride=3) == []


@pytest.mark.parametrize("solver", ["cpsat", "highs"])
def test_monolithic_models_equal_bruteforce_on_150(solver):
    assert mismatches(solver, 150, native={"decompose": False}, stride=3) == []


@pytest.mark.parametrize("solver", ["cpsat", "highs"])
def test_models_without_symmetry_breaking_equal_bruteforce_on_100(solver):
    assert mismatches(solver, 50, native={"symmetry": False}, stride=7) == []
    assert mismatches(solver, 50, native={"symmetry": False, "decompose": False}, stride=9) == []


@pytest.mark.parametrize("solver", ["cpsat", "highs"])
def test_models_without_triangle_cuts_equal_bruteforce_on_100(solver):
    assert mismatches(solver, 50, native={"triangles": False}, stride=7) == []
    assert mismatches(solver, 50, native={"triangles": False, "decompose": False}, stride=9) == []


def test_pulp_with_highs_equals_bruteforce_on_40():
    assert mismatches("pulp", 40, native={"solver": "HiGHS"}, stride=11) == []


@pytest.mark.parametrize("solver", ["cpsat", "highs"])
def test_without_greedy_warm_start_equals_bruteforce_on_100(solver):
    """No dsatur warm start: every curve point goes to the solver (the greedy must not be what makes it right)."""
    assert mismatches(solver, 100, native={"hint": False}, stride=5) == []
