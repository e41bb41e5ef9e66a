"""Pricing: classes of negative reduced cost ``c(S) − Σ_{v∈S} π_v − μ`` at a branch-and-price node
(formulations/colgen.md, "Pricing").

A node's Ryan–Foster rules merge pairs (``same``: a class holds both or neither) and forbid pairs (``diff``). The
pricing problem of a node therefore lives on *groups*: the nodes joined by ``same`` rules, with summed pair weights
``Q_gh = Σ_{i∈g, j∈h} W_ij``, the group's own internal cost in its linear term, and a conflict wherever a hard pair
or a ``diff`` rule joins two groups. Two pricers work on that problem:

* ``QuadraticPricer`` (additive costs): local search from many starts (heuristic), then exact by Gray-code
  enumeration up to ``ENUM_MAX_ITEMS`` groups and depth-first branch and bound beyond (``_kernels``);
* ``TablePricer`` (non-additive oracle that can price every subset, ``ClassCostOracle.subset_costs``): the reduced
  cost of every subset at once from the cost table, exact.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..disjoint_sets import DisjointSets
from . import _kernels

#: up to this many groups the exact pricer enumerates every subset (2^m · m steps); beyond it, branch and bound
#: (measured on tiny-gpt's 24-layer types: see benchmarks/solvers/colgen/README.md)
ENUM_MAX_ITEMS = 12
#: work (search nodes × groups, each node costs O(groups)) of the branch and bound between two looks at the
#: deadline (and chances for Ctrl-C): about 0.05 s; the search resumes where it paused
BB_WORK_CHUNK = 50_000_000
#: operations one local-search pricing call may spend (about 0.04 s on random 300- and 800-group problems)
HEURISTIC_WORK = 30_000_000


class WorkMeter:
    """A deterministic work budget shared by a run's engines (0 = none), in search nodes × items: exact pricing
    spends its search, heuristic pricing its starts × items², a master LP its simplex iterations × rows. A run
    that spends it stops as at a deadline, at the same point on every machine."""

    def __init__(self, limit: float = 0.0):
        self.limit = float(limit)
        self.used = 0.0

    def spend(self, units: float) -> None:
        self.used += float(units)

    def left(self) -> float:
        return float("inf") if self.limit <= 0 else max(0.0, self.limit - self.used)

    @property
    def exhausted(self) -> bool:
        return self.left() <= 0


@dataclass(frozen=True)
class Rules:
    """The branching decisions of a node: pairs that must share a class and pairs that must not (local indices)."""
    same: tuple[tuple[int, int], ...] = ()
    diff: tuple[tuple[int, int], ...] = ()

    def child(self, i: int, j: int, together: bool) -> "Rules":
        pair = (min(i, j), max(i, j))
        if together:
            return Rules(self.same + (pair,), self.diff)
        return Rules(self.same, self.diff + (pair,))


class NodeProblem:
    """A node's groups and their conflicts; ``feasible`` is False when the rules contradict the hard pairs."""

    def __init__(self, W: np.ndarray, hard: np.ndarray, rules: Rules):
        n = len(W)
        sets = DisjointSets(n)
        for i, j in rules.same:
            sets.union(i, j)
        _, self.group = np.unique(sets.roots(), return_inverse=True)
        self.m = m = int(self.group.max()) + 1 if n else 0
        A = np.zeros((n, m))
        A[np.arange(n), self.group] = 1.0
        self.A = A
        WA = A.T @ W @ A
        self.internal = 0.5 * np.diag(WA).copy()
        self.Q = WA - np.diag(np.diag(WA))
        conflict = (A.T @ hard.astype(np.float64) @ A) > 0
        for i, j in rules.diff:
            conflict[self.group[i], self.group[j]] = conflict[self.group[j], self.group[i]] = True
        self.feasible = not bool(np.any(np.diag(conflict)))
        np.fill_diagonal(conflict, False)
        self.conflict = conflict.astype(np.uint8)
        self.rules = rules
        self.members = [np.flatnonzero(self.group == g) for g in range(m)]

    def linear(self, pi: np.ndarray) -> np.ndarray:
        """The groups' linear term at duals ``pi``: internal cost minus the members' duals."""
        return self.internal - self.A.T @ pi

    def allowed(self, matrix: np.ndarray) -> np.ndarray:
        """Which pool columns (rows of the membership matrix) obey the rules."""
        ok = np.ones(len(matrix), dtype=bool)
        for i, j in self.rules.same:
            ok &= matrix[:, i] == matrix[:, j]
        for i, j in self.rules.diff:
            ok &= ~(matrix[:, i] & matrix[:, j])
        return ok

    def nodes_of(self, in_set: np.ndarray) -> np.ndarray:
        """Local node indices of a group set (a 0/1 row over groups)."""
        return np.flatnonzero(in_set[self.group])

    def group_singletons(self) -> list[np.ndarray]:
        return list(self.members)


@dataclass
class Priced:
    """Classes found (local node indices) with their reduced cost before ``μ``, ``r(S) = c(S) − π(S)``; ``least``
    a lower bound on ``min_S r(S)`` (None when the pricer is heuristic) and whether the search was exact."""
    classes: list[np.ndarray]
    values: list[float]
    least: float | None = None
    exact: bool = False
    costs: list[float] | None = None      # the classes' costs, when the pricer already has them


def _rows(node: NodeProblem, vals: np.ndarray, sets: np.ndarray) -> tuple[list, list]:
    finite = np.isfinite(vals)
    return [node.nodes_of(s) for s in sets[finite]], vals[finite].tolist()


class QuadraticPricer:
    """Pricing for additive costs ``c(S) = Σ_{i<j∈S} W_ij``."""

    def __init__(self, enum_max: int = ENUM_MAX_ITEMS, work: WorkMeter | None = None):
        self.enum_max = enum_max
        self.work = work if work is not None else WorkMeter()

    def heuristic(self, node: NodeProblem, pi: np.ndarray, thresh: float, keep: int,
                  seeds: np.ndarray | None = None) -> Priced:
        """Local search from every group alone (kept in its class) and from ``seeds`` (rows over the local nodes,
        e.g. the LP's positive columns, which have reduced cost 0 and are one move from a negative class). Starts
        in order of promise (the most negative groups, the seeds, the other groups) under a work budget."""
        d = node.linear(pi)
        m = node.m
        order = np.argsort(d).astype(np.int64)
        first = max(keep, 8)
        starts = np.eye(m, dtype=np.uint8)[order]
        pins = order
        if seeds is not None and len(seeds):
            grouped = (np.asarray(seeds, dtype=np.float64) @ node.A > 0).astype(np.uint8)
            starts = np.vstack([starts[:first], grouped, starts[first:]])
            pins = np.concatenate([pins[:first], np.full(len(grouped), -1, dtype=np.int64), pins[first:]])
        vals, sets, work = _kernels.local_search_best(node.Q, d, node.conflict, starts, pins, keep, thresh,
                                                      HEURISTIC_WORK)
        self.work.spend(work)
        return Priced(*_rows(node, vals, sets))

    def exact(self, node: NodeProblem, pi: np.ndarray, thresh: float, keep: int, deadline: float | None,
              enough: bool = False) -> Priced:
        """The ``keep`` best classes below ``thresh`` and a lower bound on the least reduced cost; ``enough``: the
        branch and bound may stop once it holds ``keep`` classes below ``thresh`` (then ``exact`` is False)."""
        d = node.linear(pi)
        m = max(node.m, 1)
        if node.m <= self.enum_max and self.work.left() >= m * 2 ** node.m:
            vals, sets, least = _kernels.enumerate_best(node.Q, d, node.conflict, keep, thresh)
            self.work.spend(m * 2 ** node.m)
            return Priced(*_rows(node, vals, sets), least=float(least), exact=True)
        search = _kernels.BranchAndBound(node.Q, d, node.conflict, keep, thresh, True, enough)
        chunk = max(1000, BB_WORK_CHUNK // m)
        while not search.done and not search.full:
            if self.work.exhausted or (deadline is not None and time.monotonic() >= deadline):
                break
            self.work.spend(m * search.run(min(chunk, max(self.work.left() // m, 1))))
        vals, sets, least, complete, work = search.finish()
        self.work.spend(m * work)
        return Priced(*_rows(node, vals, sets), least=float(least), exact=bool(complete))


class TablePricer:
    """Exact pricing from a table of every subset's cost (bit mask over the type's local nodes)."""

    def __init__(self, table: np.ndarray, hard: np.ndarray):
        n = hard.shape[0]
        self.n = n
        self.table = table
        self.valid = _masks_without(hard, n)
        self._rules_cache: dict[Rules, np.ndarray] = {}

    def _node_valid(self, node: NodeProblem) -> np.ndarray:
        got = self._rules_cache.get(node.rules)
        if got is None:
            masks = np.arange(1 << self.n, dtype=np.int64)
            got = self.valid.copy()
            for i, j in node.rules.same:
                got &= ((masks >> i) & 1) == ((masks >> j) & 1)
            for i, j in node.rules.diff:
                got &= ~(((masks >> i) & 1).astype(bool) & ((masks >> j) & 1).astype(bool))
            self._rules_cache[node.rules] = got
        return got

    def exact(self, node: NodeProblem, pi: np.ndarray, thresh: float, keep: int, deadline: float | None,
              enough: bool = False) -> Priced:
        r = self.table - _subset_sums(pi)
        r = np.where(self._node_valid(node), r, np.inf)
        r[0] = np.inf
        least = min(float(r.min()), thresh)
        best = np.argsort(r, kind="stable")[:keep]
        best = best[r[best] < thresh]
        classes = [np.flatnonzero((int(m) >> np.arange(self.n)) & 1) for m in best]
        return Priced(classes, r[best].tolist(), least=least, exact=True)


def _subset_sums(x: np.ndarray) -> np.ndarray:
    """``Σ_{b ∈ mask} x_b`` for every bit mask (doubling: the sums with bit b set are the previous ones + x_b)."""
    out = np.zeros(1)
    for v in x:
        out = np.concatenate([out, out + v])
    return out


def _masks_without(hard: np.ndarray, n: int) -> np.ndarray:
    """Which bit masks hold no hard pair (doubling over the nodes)."""
    valid = np.ones(1, dtype=bool)
    masks = np.zeros(1, dtype=np.int64)
    for b in range(n):
        conflict_bits = int(sum(1 << a for a in range(b) if hard[a, b]))
        valid = np.concatenate([valid, valid & ((masks & conflict_bits) == 0)])
        masks = np.concatenate([masks, masks | (1 << b)])
    return valid
