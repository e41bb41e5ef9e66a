"""HiGHS keeps one thread scheduler per process, sized by the first run that needs it; a later run that sets
another ``threads`` ends at once with an error and no result. Backends that run HiGHS after someone else did (the
user's own HiGHS model, the highs backend with another thread count, a test before) must still prove."""
import numpy as np
import pytest

from geoshare_opt import Instance, solve
from geoshare_opt.solvers.quiet import new_highs


def _signed(n=16, k=4, seed=3):
    rng = np.random.default_rng(seed)
    edges = [(f"a{i}", f"a{j}", float(rng.normal())) for i in range(n) for j in range(i + 1, n) if rng.random() < .6]
    return Instance.build([{"id": f"a{i}", "type": "a"} for i in range(n)], edges, max_classes=k)


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
