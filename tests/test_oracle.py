"""Class-cost oracles (geoshare_opt/oracle.py): the graph objective against the checker, the diagonal true cost's
subset table against one class at a time, and the declared properties the engine relies on."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from geoshare_opt import ClassCostOracle, DiagonalClassCost, GraphObjective, InputError, Instance, evaluate
from geoshare_opt.classcost import ClassCost


def _two_type_instance(seed: int = 0) -> Instance:
    rng = np.random.default_rng(seed)
    nodes = [{"id": f"a{i}", "type": "A"} for i in range(6)] + [{"id": f"b{i}", "type": "B"} for i in range(4)]
    edges = []
    for t, n in (("a", 6), ("b", 4)):
        for i, j in itertools.combinations(range(n), 2):
            r = rng.random()
            if r < 0.15:
                edges.append((f"{t}{i}", f"{t}{j}", "hard"))
            elif r < 0.85:
                edges.append((f"{t}{i}", f"{t}{j}", float(rng.normal())))
    edges.append(("a0", "b0", 5.0))  # cross-type: never inside a class
    return Instance.build(nodes, edges, 10)


def test_graph_objective_is_the_checker_objective_of_each_class():
    inst = _two_type_instance()
    oracle = GraphObjective(inst)
    assert oracle.exact and oracle.additive
    rng = np.random.default_rng(1)
    for _ in range(50):
        labels = np.arange(len(inst.nodes))
        labels[:6] = rng.integers(0, 3, size=6)
        labels[6:] = 10 + rng.integers(0, 2, size=4)
        classes = [np.flatnonzero(labels == c) for c in np.unique(labels)]
        costs = oracle.costs(classes)
        ev = evaluate(inst, labels)
        if ev.feasible:
            assert costs.sum() == pytest.approx(ev.objective, abs=1e-12)
        else:
            assert np.isinf(costs).any()   # only hard edges make these labels infeasible (K = n)


def test_graph_objective_pair_matrix_and_bad_classes():
    inst = _two_type_instance()
    oracle = GraphObjective(inst)
    nodes = [0, 2, 3, 5]
    W = oracle.pair_matrix(nodes)
    assert np.allclose(W, W.T) and np.all(np.diag(W) == 0)
    free = [S for r in range(2, 5) for S in itertools.combinations(range(4), r)
            if np.isfinite(oracle.cost([nodes[i] for i in S]))]
    assert free
    for S in free:
        assert oracle.cost([nodes[i] for i in S]) == pytest.approx(np.triu(W[np.ix_(S, S)], 1).sum(), abs=1e-12)
    assert oracle.cost([4]) == 0.0 and oracle.cost([]) == 0.0 and oracle.singleton_cost(4) == 0.0
    with pytest.raises(InputError, match="mixes node types"):
        oracle.cost([0, 7])
    with pytest.raises(InputError, match="out of range"):
        oracle.cost([0, 99])
    assert oracle.subset_costs(nodes) is None   # additive: the engine prices it by its pair matrix instead


def _random_class_cost(n: int, shape=(3, 5), equal_curvature=False, seed=0) -> ClassCost:
    rng = np.random.default_rng(seed)
    inst = Instance.build([{"id": f"n{i}", "type": "t"} for i in range(n)], [], n)
    h = {f"n{i}": (np.ones(shape) if equal_curvature else rng.random(shape) ** 2) for i in range(n)}
    if not equal_curvature:
        h["n0"][0, 0] = 0.0
    w = {f"n{i}": rng.normal(size=shape) for i in range(n)}
    return ClassCost(inst, h, w)


def test_diagonal_subset_table_equals_one_class_at_a_time():
    cc = _random_class_cost(7)
    oracle = DiagonalClassCost(cc)
    assert oracle.exact and not oracle.additive
    nodes = [6, 1, 4, 0, 2]
    table = oracle.subset_costs(nodes)
    assert table.shape == (2 ** len(nodes),)
    for mask in range(2 ** len(nodes)):
        members = [nodes[b] for b in range(len(nodes)) if mask >> b & 1]
        assert table[mask] == pytest.approx(oracle.cost(members), rel=1e-10, abs=1e-12)
    assert np.allclose(oracle.costs([[1, 2], [0, 3, 5]]), [oracle.cost([1, 2]), oracle.cost([0, 3, 5])])


def test_diagonal_cost_is_two_over_size_times_pair_sum_with_equal_curvature():
    cc = _random_class_cost(5, equal_curvature=True)
    oracle = DiagonalClassCost(cc)
    for S in [(0, 1), (0, 1, 2), (1, 2, 3, 4)]:
        pair_sum = sum(oracle.cost([a, b]) for a, b in itertools.combinations(S, 2))
        assert oracle.cost(S) == pytest.approx(2 / len(S) * pair_sum, rel=1e-10)


def test_diagonal_subset_table_refused_when_too_large(monkeypatch):
    import geoshare_opt.oracle as mod
    oracle = DiagonalClassCost(_random_class_cost(6))
    monkeypatch.setattr(mod, "SUBSET_MAX_WORK", 2 ** 6 * 15 - 1)
    assert oracle.subset_costs(range(6)) is None
    assert oracle.subset_costs(range(5)) is not None


def test_a_user_oracle_needs_only_cost():
    class Size(ClassCostOracle):
        exact = False

        def cost(self, members):
            return float(len(members) ** 2)

    o = Size()
    assert list(o.costs([[1], [1, 2, 3]])) == [1.0, 9.0]
    assert o.subset_costs([0, 1]) is None and not o.additive
    with pytest.raises(NotImplementedError):
        o.pair_matrix([0, 1])
