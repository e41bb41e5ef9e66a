"""External checks on DIMACS colouring graphs and a Gset graph against their published values (the subset the
project carries in instances/reference)."""
from __future__ import annotations

import pytest

from geoshare_opt.api import solve
from geoshare_opt.checker import evaluate
from geoshare_opt.convert import read_dimacs
from geoshare_opt.reference import references

from conftest import REFERENCE_DATA as DATA


@pytest.fixture(scope="module")
def refs():
    return references(DATA)


def graph(refs, name, k, hard):
    return read_dimacs(DATA / refs[name].file, k=k, hard=hard)


@pytest.mark.parametrize("k,optimum", [(2, 4), (3, 1), (4, 0)])
@pytest.mark.parametrize("solver", ["anneal", "auto"])
def test_myciel3_min_k_partition(refs, k, optimum, solver):
    assert refs["myciel3"].min_kpartition[k][0] == optimum  # the CSV agrees with the brief
    res = solve(graph(refs, "myciel3", k, hard=False), solver, time_limit=30, seed=1)
    assert res.feasible and res.objective == optimum
    if solver == "auto":
        assert res.termination == "optimal" and res.bound == optimum


@pytest.mark.parametrize("name", ["myciel3", "myciel4", "myciel5", "queen5_5", "huck", "jean", "david", "anna",
                                  "games120", "miles250"])
def test_proper_colouring_at_chi(refs, name):
    chi = refs[name].chi
    assert chi is not None
    inst = graph(refs, name, chi, hard=True)
    res = solve(inst, "anneal", time_limit=5, seed=0)
    assert res.feasible and evaluate(inst, res.assignment).feasible
    assert res.n_classes <= chi and res.objective == 0


@pytest.mark.parametrize("name", ["myciel4", "huck", "jean"])
def test_one_conflict_below_chi(refs, name):
    """At K = chi - 1 the optimum is exactly 1 (chi lower bound + a certificate with one conflict)."""
    chi = refs[name].chi
    assert refs[name].min_kpartition[chi - 1][0] == 1
    res = solve(graph(refs, name, chi - 1, hard=False), "anneal", time_limit=5, seed=0)
    assert res.feasible and res.objective == 1
    hard = solve(graph(refs, name, chi - 1, hard=True), "anneal", seed=0, native={"tabu_iters": 20000})
    assert hard.status == "none"


def test_every_dimacs_file_converts_with_the_csv_counts(refs):
    dimacs = [r for r in refs.values() if r.family != "Gset"]
    assert len(dimacs) == 12
    for r in dimacs:
        inst = read_dimacs(DATA / r.file)
        assert (len(inst.nodes), len(inst.edges)) == (r.n, r.m), r.instance


def test_gset_g43_cut_close_to_best_known():
    """A fixed move budget (no timing noise): anneal's cut on G43 within 0.5% of the best published cut."""
    from geoshare_opt.convert import read_gset
    from geoshare_opt.reference import references as refs_of
    ref = refs_of(DATA)["G43"]
    inst = read_gset(DATA / ref.file)
    res = solve(inst, "anneal", seed=0, native={"sweeps": 3000})
    cut = ref.total_weight - res.objective
    assert cut <= ref.best_cut and cut >= 0.995 * ref.best_cut
