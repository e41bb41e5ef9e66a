"""HiGHS keeps one thread scheduler per process, sized by the first run that needs it; a later run that sets
another ``threads`` ends at once with an error and no result. Backends that run HiGHS after someone else did (the
user's own HiGHS model, the highs backend with another thread count, a test before) must still prove."""
import pytest
from random_instances import one_type

from geoshare_opt import solve
from geoshare_opt.solvers.quiet import new_highs


def _signed(n=16, k=4, seed=3):
    return one_type(n, k, 0.6, seed, prefix="a", type_="a")


def _run_with_threads(threads: int) -> None:
    h = new_highs()
    h.setOptionValue("threads", threads)
    h.addVar(0, 1)
    h.changeColCost(0, 1.0)
    h.run()


@pytest.mark.parametrize("solver, threads", [("colgen", 1), ("highs", 1), ("highs", 2)])
def test_a_backend_proves_after_a_highs_run_with_another_thread_count(solver, threads):
    _run_with_threads(3 - threads)             # the process's scheduler now has the other count
    res = solve(_signed(), solver, threads=threads, seed=0)
    assert res.termination == "optimal", (res.termination, res.message)
    assert res.bound == pytest.approx(res.objective, abs=1e-6)
