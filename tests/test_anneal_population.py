"""Population annealing in ``anneal`` (``solvers/population.py``): resampling keeps the population size and follows
the Boltzmann weights, a population run is reproducible and returns a consistent local optimum, ``auto`` uses a
population only on graphs with hubs, and bad values of the option are bad input."""
from __future__ import annotations

import numpy as np
import pytest

from geoshare_opt.api import solve
from geoshare_opt.checker import evaluate
from geoshare_opt.errors import InputError
from geoshare_opt.instance import Instance
from geoshare_opt.solvers import _ising_kernels as I
from geoshare_opt.solvers._csr import adjacency
from geoshare_opt.solvers.hubs import hub_scales
from geoshare_opt.solvers.population import POP_SIZE, _resample, auto_size

from test_anneal_ising import spin_glass


def hub_graph(seed: int, n: int = 300, hubs: int = 3, **budget) -> Instance:
    """A sparse +-1 graph (a ring with chords) plus a few nodes joined to a third of all nodes each."""
    rng = np.random.default_rng(seed)
    edges = {}
    for i in range(n):
        for j in (i + 1, i + 7):
            edges[(min(i, j % n), max(i, j % n))] = float(rng.choice([-1.0, 1.0]))
    for h in range(hubs):
        for j in rng.choice(np.arange(hubs, n), size=n // 3, replace=False):
            edges[(h, int(j))] = float(rng.choice([-1.0, 1.0]))
    nodes = [{"id": str(i), "type": "v", "params": 1} for i in range(n)]
    return Instance.build(nodes, [(str(i), str(j), w) for (i, j), w in edges.items() if i != j],
                          budget.pop("k", 2), **budget)


def test_resampling_keeps_the_size_and_follows_the_weights():
    rng = np.random.default_rng(0)
    e = np.array([5.0, 3.0, 9.0, 3.0, 4.0])
    assert np.array_equal(_resample(e, 0.0, rng), np.arange(5))    # equal weights: every copy once
    assert set(_resample(e, 1e6, rng)) <= {1, 3}                    # all weight on the lowest energies
    counts = np.zeros(5)
    for _ in range(4000):
        counts += np.bincount(_resample(e, 0.5, rng), minlength=5)
    w = np.exp(-0.5 * (e - e.min()))
    assert np.allclose(counts / counts.sum(), w / w.sum(), atol=0.01)


def test_auto_uses_a_population_only_where_hubs_are():
    assert auto_size(hub_scales(adjacency(hub_graph(0)))) == POP_SIZE
    assert auto_size(hub_scales(adjacency(hub_graph(0, hubs=0)))) == 1
    assert auto_size(hub_scales(adjacency(spin_glass(1)))) == 1
    assert solve(hub_graph(0), "anneal", seed=0, native={"sweeps": 200}).stats["population"] == POP_SIZE
    assert solve(spin_glass(1), "anneal", seed=0, native={"sweeps": 200}).stats["population"] == 1
    # the generic kernel has no population: three classes on the hub graph
    assert solve(hub_graph(0, k=3), "anneal", seed=0, native={"sweeps": 200}).stats["population"] == 1


def test_population_run_is_reproducible_and_returns_a_consistent_local_optimum():
    inst = hub_graph(1)
    a = solve(inst, "anneal", seed=3, native={"sweeps": 3000, "population": 8})
    b = solve(inst, "anneal", seed=3, native={"sweeps": 3000, "population": 8})
    assert a.assignment == b.assignment and a.objective == b.objective
    assert a.stats["population"] == 8 and a.stats["sweeps"] >= 3000
    ev = evaluate(inst, a.assignment)
    assert ev.feasible and ev.objective == pytest.approx(a.objective)
    labels = np.array([a.assignment[n.id] for n in inst.nodes])
    labels -= labels.min()
    adj = adjacency(inst)
    gain = np.zeros(adj.n, dtype=np.int64)
    I.flip_gains(labels.astype(np.int64), adj.indptr, adj.nbr, adj.wt.astype(np.int64), gain)
    assert gain.min() >= 0   # no single flip improves it


def test_population_is_not_worse_than_its_start_and_beats_a_random_cut():
    inst = hub_graph(2)
    greedy = solve(inst, "dsatur")
    res = solve(inst, "anneal", seed=0, native={"sweeps": 2000, "population": 4})
    assert res.objective <= greedy.objective
    rnd = np.random.default_rng(0).integers(0, 2, len(inst.nodes))
    assert res.objective < evaluate(inst, {n.id: int(c) for n, c in zip(inst.nodes, rnd)}).objective


def test_timed_population_run_ends_in_time_with_a_feasible_result():
    inst = hub_graph(3, n=2000)
    solve(inst, "anneal", seed=0, time_limit=0.3)   # compiles the kernels on a cold numba cache
    res = solve(inst, "anneal", seed=0, time_limit=1.0)
    assert res.stats["population"] == POP_SIZE and res.feasible
    assert res.wall_time_s < 1.5


@pytest.mark.parametrize("value", [0, -2, 1.5, "many", True])
def test_bad_population_values_are_bad_input(value):
    with pytest.raises(InputError, match="population"):
        solve(spin_glass(2), "anneal", native={"population": value, "sweeps": 10})


def test_explicit_population_needs_the_plain_structure():
    with pytest.raises(InputError, match="population"):
        solve(spin_glass(2, k=3), "anneal", native={"population": 4, "sweeps": 10})
    assert solve(spin_glass(2, k=3), "anneal", seed=0, native={"population": 1, "sweeps": 10}).feasible


def test_hub_temperature_option():
    inst = hub_graph(4)
    on = solve(inst, "anneal", seed=0, native={"sweeps": 500, "population": 1})
    off = solve(inst, "anneal", seed=0, native={"sweeps": 500, "population": 1, "hub_temperature": False})
    assert on.stats["hubs"] == 3 and off.stats["hubs"] == 0
    assert on.feasible and off.feasible
    with pytest.raises(InputError, match="hub_temperature"):
        solve(inst, "anneal", native={"hub_temperature": "yes", "sweeps": 10})


@pytest.mark.parametrize("key,value", [("p_start", "hot"), ("bls", [1]), ("p_start", True)])
def test_non_numeric_values_are_bad_input(key, value):
    with pytest.raises(InputError, match=key):
        solve(spin_glass(2), "anneal", native={key: value, "sweeps": 10})
