"""The conformance suite (tests/conformance.py) run against every registered backend that can be loaded, and
against the brute-force reference backend, which also checks the hand-derived optima of the cases."""
from __future__ import annotations

import pytest

from geoshare_opt.solvers import Registry, default_registry

from conformance import CASES, BackendConformance, BruteForceBackend, brute_force_optimum

# A backend listed here may miss the optimum of the non-trivial cases by this fraction of the case's total
# |weight|. Empty: every built-in heuristic (dsatur included) is exact on all the cases, and must stay so.
SLACK: dict[str, float] = {}


def _loadable() -> list[str]:
    names = []
    for row in default_registry.describe():
        if row["available"]:
            names.append(row["name"])
    return names


BACKENDS = _loadable()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_optimum_matches_brute_force(case):
    opt = brute_force_optimum(case.instance())
    if case.optimum is None:
        assert opt is None
    else:
        assert opt == pytest.approx(case.optimum, abs=1e-9)


class TestReferenceBackend(BackendConformance):
    """The suite on the enumeration backend: proves the suite itself passes a correct exact backend."""

    @pytest.fixture
    def solver(self):
        return "brute"

    @pytest.fixture
    def registry(self):
        return _brute_registry()


def _brute_registry() -> Registry:
    reg = Registry({}, entry_points=False)
    reg.register("brute", BruteForceBackend)
    return reg


@pytest.mark.skipif(not BACKENDS, reason="no backend module can be loaded yet")
class TestRegisteredBackends(BackendConformance):
    @pytest.fixture(params=BACKENDS or ["none"])
    def solver(self, request):
        return request.param

    @pytest.fixture(autouse=True)
    def _slack(self, solver):
        self.heuristic_slack = SLACK.get(solver, 0.0)
