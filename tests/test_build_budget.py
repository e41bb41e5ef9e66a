"""Exact backends keep their time limit and memory on models too large to build: they estimate the model first
(solvers/budget.py), refuse one that would not fit or could not be built in time, stop building at the deadline,
and keep the heuristic incumbent with a message. Thresholds are scaled down (native max_model_gb, short limits) so
that small instances stand in for the 20,000-node ones."""
import time

import numpy as np
import pytest

from geoshare_opt import solve
from geoshare_opt.instance import Instance
from geoshare_opt.solvers import budget
from geoshare_opt.solvers.curves import Model, parts_of
from cpu_clock import Spent

EXACT = ["cpsat", "highs", "pulp"]


def dense(n, k=8, seed=0):
    rng = np.random.default_rng(seed)
    edges = [(f"n{i}", f"n{j}", float(rng.normal())) for i in range(n) for j in range(i + 1, n)]
    return Instance.build([{"id": f"n{i}", "type": "t"} for i in range(n)], edges, k)


class _SlowMachineClock:
    """The clock the build checks, running 0.1 s ahead more at every look: on a fast machine the real build of
    ``dense250`` ends within the limit, so the deadline check would never be reached (about 60 looks per build)."""

    def __init__(self):
        self.looks = 0

    def monotonic(self) -> float:
        self.looks += 1
        return time.monotonic() + 0.1 * self.looks


@pytest.fixture(scope="module")
def dense250():
    solve(dense(30), "dsatur")              # the greedy start's kernels loaded (or compiled) before any timing
    return dense(250)


@pytest.mark.parametrize("solver", EXACT)
def test_a_model_too_large_for_the_memory_is_not_built(solver):
    with Spent() as spent:
        res = solve(dense(60), solver, native={"max_model_gb": 0.001})     # 1 MB: no sub-model fits
    spent.check(0, 10, solver)
    assert res.feasible and res.termination == "completed"
    assert "would need about" in res.message and "best assignment found without it is kept" in res.message
    assert res.stats["not_built"]


@pytest.mark.parametrize("solver", EXACT)
def test_a_model_that_cannot_be_built_in_time_keeps_the_limit(solver, dense250):
    with Spent() as spent:
        res = solve(dense250, solver, time_limit=2.0)
    assert res.feasible and res.termination == "time_limit"
    assert "would take about" in res.message
    spent.check(2.0, 3.0, res.message)                      # before: 6-35 s idle


@pytest.mark.parametrize("solver", EXACT)
def test_building_stops_at_the_deadline_when_the_estimate_is_wrong(solver, dense250, monkeypatch):
    monkeypatch.setitem(budget.COSTS, solver, (0.0, 0.0))             # an estimate that lets anything through
    monkeypatch.setattr(budget, "time", _SlowMachineClock())          # a build that outlasts the limit anywhere
    with Spent() as spent:
        res = solve(dense250, solver, time_limit=1.5, native={"triangles": False})
    assert res.feasible and "reached while building" in res.message
    spent.check(1.5, 3.0, res.message)


def test_the_size_estimate_counts_the_terms_the_builders_make():
    """model_size against the MILP that milp.build actually makes (columns + non-zeros)."""
    from geoshare_opt.solvers.milp import build
    for n, k, symmetry in [(30, 4, True), (30, 4, False), (45, 6, True)]:
        part = parts_of(dense(n, k))[0].with_cap(k)
        model = Model((part,), k, None, symmetry, False)
        milp = build(model)
        size = budget.model_size(model)
        exact = milp.n_cols + milp.A.nnz
        assert 0.8 * exact <= size.terms <= 1.25 * exact, (n, k, symmetry, size.terms, exact)


def test_bad_memory_option_is_bad_input():
    from geoshare_opt.errors import InputError
    with pytest.raises(InputError, match="max_model_gb"):
        solve(dense(5), "cpsat", native={"max_model_gb": "lots"})
