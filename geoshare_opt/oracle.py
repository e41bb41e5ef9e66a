"""Class-cost oracles: what tying one class costs, as a function of the whole class (formulations/colgen.md).

The set-partitioning engine (``geoshare_opt.solvers.colgen``) prices candidate classes ("columns") through this
interface, so the same engine optimises the graph objective (the sum of the pair weights inside a class), the true
class cost of the diagonal curvature model, or costs measured on the network (issue 13 plugs those in above the
solver layer). A class is a set of nodes of one type, given by their global node indices (``instance.nodes``
order). The engine never asks for a class that holds a hard pair.

What an oracle declares, so that the engine knows what it may conclude:

- ``exact``: the values are the true costs (False: estimates, e.g. losses measured on a calibration subset; the
  engine then never calls a colouring optimal);
- ``additive``: ``cost(S) = Σ_{i<j ∈ S} W_ij`` with ``W = pair_matrix(...)``: reduced costs are quadratic in the
  class's indicator vector and the engine prices them exactly by enumeration or branch and bound;
- ``singleton_cost(i)``: the cost of leaving node i alone (0 for every oracle here: an untied tensor is unchanged);
- ``subset_costs(nodes)``: the cost of every subset of a few nodes at once, when that is affordable: with it a
  non-additive exact oracle is priced exactly by enumeration; None means only heuristic pricing is possible.

A non-additive oracle can be paired with an additive *surrogate* (e.g. ``GraphObjective``): the surrogate proposes
classes (quadratic pricing on its pair weights), the oracle prices what is proposed.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np

from .errors import InputError
from .instance import Instance

#: largest number of nodes whose 2^n subsets ``DiagonalClassCost.subset_costs`` prices, and its work cap
#: (2^n × tensor size, float64 operations): about a second of numpy on one core
SUBSET_MAX_NODES = 24
SUBSET_MAX_WORK = 2 ** 31
_BLOCK_ELEMENTS = 2 ** 21   # one vectorised block of subsets × tensor entries (16 MiB per float64 array)


class ClassCostOracle(ABC):
    """The cost of tying a class of same-type nodes (global node indices). Subclass and implement ``cost``;
    override ``costs`` when a batch is cheaper than one call per class (e.g. batched forward passes)."""

    exact: bool = True
    additive: bool = False

    @abstractmethod
    def cost(self, members: Sequence[int]) -> float:
        """The cost of one class (an empty or one-node class costs ``singleton_cost`` or 0)."""

    def costs(self, classes: Sequence[Sequence[int]]) -> np.ndarray:
        """The costs of several classes, in order."""
        return np.array([self.cost(c) for c in classes], dtype=np.float64)

    def singleton_cost(self, node: int) -> float:
        return 0.0

    def pair_matrix(self, nodes: Sequence[int]) -> np.ndarray:
        """For an additive oracle: the symmetric matrix ``W`` over ``nodes`` (zero diagonal) with
        ``cost(S) = Σ_{i<j∈S} W_ij``."""
        raise NotImplementedError(f"{type(self).__name__} is not additive: it has no pair matrix")

    def subset_costs(self, nodes: Sequence[int]) -> np.ndarray | None:
        """The cost of every subset of ``nodes``, indexed by bit mask (bit b = ``nodes[b]``), or None when that is
        not affordable. Subsets holding a hard pair may carry any value: the engine masks them."""
        return None


class GraphObjective(ClassCostOracle):
    """The instance's own objective: the sum of the soft pair weights inside the class (exact, additive).
    A class holding a hard pair costs +inf."""

    exact = True
    additive = True

    def __init__(self, instance: Instance):
        self.instance = instance
        self._local = np.empty(len(instance.nodes), dtype=np.int64)
        for t in instance.types:
            members = instance.type_members(t)
            self._local[members] = np.arange(len(members))

    def _block_of(self, nodes: Sequence[int]):
        nodes = np.asarray(nodes, dtype=np.int64).reshape(-1)
        if len(nodes) == 0:
            return None, nodes
        if nodes.min() < 0 or nodes.max() >= len(self.instance.nodes):
            raise InputError(f"class cost: node index out of range 0..{len(self.instance.nodes) - 1}")
        types = np.unique(self.instance.type_of[nodes])
        if len(types) > 1:
            raise InputError("class cost: a class mixes node types")
        return self.instance.part(self.instance.types[int(types[0])]), self._local[nodes]

    def pair_matrix(self, nodes: Sequence[int]) -> np.ndarray:
        block, local = self._block_of(nodes)
        if block is None:
            return np.zeros((0, 0))
        return block.W[np.ix_(local, local)].copy()

    def cost(self, members: Sequence[int]) -> float:
        block, local = self._block_of(members)
        if block is None or len(local) < 2:
            return 0.0
        if np.any(block.hard[np.ix_(local, local)]):
            return float("inf")
        return float(np.triu(block.W[np.ix_(local, local)], 1).sum())


class DiagonalClassCost(ClassCostOracle):
    """The true class cost of a tie under the diagonal curvature model (``classcost.ClassCost``, exact, not
    additive): ``½ Σ_p [Σ_l h_lp w_lp² − (Σ_l h_lp w_lp)² / Σ_l h_lp]`` over the class's members."""

    exact = True
    additive = False

    def __init__(self, class_cost):
        self.class_cost = class_cost

    @classmethod
    def from_sidecar(cls, instance: Instance, instance_path=None, sidecar=None) -> "DiagonalClassCost":
        """From the curvature sidecar ``analyze`` wrote (see ``classcost.load_class_cost``)."""
        from .classcost import load_class_cost
        return cls(load_class_cost(instance, instance_path, sidecar))

    def cost(self, members: Sequence[int]) -> float:
        return self.class_cost.class_cost([int(i) for i in members])

    def subset_costs(self, nodes: Sequence[int]) -> np.ndarray | None:
        nodes = [int(i) for i in nodes]
        n = len(nodes)
        if n == 0:
            return np.zeros(1)
        size = self.class_cost.tensor_size(nodes[0])
        if n > SUBSET_MAX_NODES or (2 ** n) * max(size, 1) > SUBSET_MAX_WORK:
            return None
        H, HW, q = self.class_cost.node_statistics(nodes)
        return _subset_variances(H, HW, q, size)


def _subset_variances(H: np.ndarray, HW: np.ndarray, q: np.ndarray, size: int) -> np.ndarray:
    """``½ (Σq − Σ_p (Σhw)² / Σh)`` for every subset (bit mask over the rows), singletons and the empty set 0.
    The low ``b`` nodes are enumerated as one matrix product per block; the high nodes are added block by block."""
    n = len(q)
    b = max(0, min(n, int(np.log2(max(_BLOCK_ELEMENTS // max(size, 1), 1)))))
    low = np.arange(2 ** b)
    low_bits = ((low[:, None] >> np.arange(b)) & 1).astype(np.float64)       # 2^b × b
    h_low, hw_low, q_low = low_bits @ H[:b], low_bits @ HW[:b], low_bits @ q[:b]
    out = np.empty(2 ** n)
    for high in range(2 ** (n - b)):
        bits = [b + j for j in range(n - b) if high >> j & 1]
        h = h_low + H[bits].sum(axis=0)
        hw = hw_low + HW[bits].sum(axis=0)
        explained = np.einsum("ij,ij->i", hw, hw / (h + 1e-300))
        out[high << b:(high + 1) << b] = np.maximum(0.0, 0.5 * (q_low + q[bits].sum() - explained))
    out[_popcounts(n) <= 1] = 0.0
    return out


def _popcounts(n: int) -> np.ndarray:
    counts = np.zeros(1, dtype=np.int64)
    for _ in range(n):
        counts = np.concatenate([counts, counts + 1])
    return counts
