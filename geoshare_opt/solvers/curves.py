"""The per-type curve machinery: one type's sub-problem, what is known about its curve ``f_t(k)``, and the DPs that
combine the curves of all types (formulations/decomposition.md).

A class never mixes types, so an instance splits into one ``Part`` per type (defined with the instance, re-exported
here), and ``f_t(k)`` (the optimum of type t
alone with *at most* k classes) is non-increasing in k. ``Curve`` keeps lower and upper values of ``f_t`` and the
labelling behind each upper value; ``allocate`` picks one class count per type under the budgets; ``by_class_count``
and ``param_front`` do the same for every budget at once. The exact decomposition (``decompose``), the sweep
(``geoshare_opt.budget_sweep``) and the true-cost search (``classcost_search``) all build on this module.

Label arrays are local to a part (``0..n-1`` index ``Part.nodes``); ``global_labels`` joins them into one labelling.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..instance import Instance, Part

INF = math.inf


# ---------------------------------------------------------------------------------------------- one type
def parts_of(instance: Instance) -> list[Part]:
    """One ``Part`` per type (in ``instance.types`` order) with ``cap = instance.type_cap(t)`` (``Instance.part``)."""
    return [instance.part(t) for t in instance.types]


def part_instance(part: Part, k: int) -> Instance:
    """One type alone as an instance with at most ``k`` classes (node ids are local indices)."""
    nodes = [{"id": str(i), "type": part.type, "params": int(p)} for i, p in enumerate(part.params)]
    edges = [(str(a), str(b), float(w)) for a, b, w in zip(part.soft_u, part.soft_v, part.soft_w)]
    edges += [(str(a), str(b), "hard") for a, b in zip(part.hard_u, part.hard_v)]
    return Instance.build(nodes, edges, int(k), name=f"type {part.type}")


# ---------------------------------------------------------------------------------------------- labels
def first_appearance(labels: np.ndarray) -> np.ndarray:
    """Relabel 0..k-1 in order of first appearance: the canonical form the symmetry breaking keeps."""
    out = np.empty(len(labels), dtype=np.int64)
    seen: dict[int, int] = {}
    for i, c in enumerate(np.asarray(labels).tolist()):
        out[i] = seen.setdefault(c, len(seen))
    return out


def restrict(labels: np.ndarray | None, part: Part) -> np.ndarray | None:
    """A global labelling seen from one part (dense local classes in first-appearance order)."""
    if labels is None:
        return None
    _, inv = np.unique(labels[part.nodes], return_inverse=True)
    return first_appearance(inv)


def global_labels(parts: Sequence[Part], labels: Sequence[np.ndarray], n_nodes: int) -> np.ndarray:
    """Per-part local labels -> one global labelling (classes of different parts never collide)."""
    out = np.zeros(n_nodes, dtype=np.int64)
    offset = 0
    for p, lab in zip(parts, labels):
        dense = first_appearance(lab)
        out[p.nodes] = dense + offset
        offset += int(dense.max()) + 1 if len(dense) else 0
    return out


# ---------------------------------------------------------------------------------------------- labellings of one part
def _neighbours(part: Part) -> tuple[list[list[tuple[int, float]]], list[list[int]]]:
    """Soft neighbours with weights and hard neighbours of every node of ``part``."""
    nbr: list[list[tuple[int, float]]] = [[] for _ in range(part.n)]
    for a, b, w in zip(part.soft_u.tolist(), part.soft_v.tolist(), part.soft_w.tolist()):
        nbr[a].append((b, w))
        nbr[b].append((a, w))
    hnbr: list[list[int]] = [[] for _ in range(part.n)]
    for a, b in zip(part.hard_u.tolist(), part.hard_v.tolist()):
        hnbr[a].append(b)
        hnbr[b].append(a)
    return nbr, hnbr


def part_greedy(part: Part, k: int, passes: int = 10) -> np.ndarray | None:
    """A feasible labelling of ``part`` with at most ``k`` classes, or None if the greedy finds none.

    Weighted DSatur-like insertion (most hard neighbours first, cheapest allowed class, a new class when it is
    cheaper) followed by first-improvement single-node moves. Used as a complete hint for the exact models, so it
    only has to be decent, and fast on the part sizes exact solvers handle."""
    if part.n == 0:
        return np.zeros(0, dtype=np.int64)
    nbr, hnbr = _neighbours(part)
    labels = _greedy_insert(part.n, nbr, hnbr, k)
    if labels is not None:
        _improve_by_moves(labels, nbr, hnbr, k, passes)
    return labels


def _greedy_insert(n: int, nbr, hnbr, k: int) -> np.ndarray | None:
    """Insert nodes (most hard neighbours first) into the cheapest allowed class, opening one while it is cheaper
    and a slot is free; None when a node finds no allowed class."""
    order = sorted(range(n), key=lambda i: (-len(hnbr[i]), -sum(abs(w) for _, w in nbr[i]), i))
    labels = np.full(n, -1, dtype=np.int64)
    used = 0
    for i in order:
        blocked = {labels[j] for j in hnbr[i] if labels[j] >= 0}
        cost = np.zeros(used)
        for j, w in nbr[i]:
            if labels[j] >= 0:
                cost[labels[j]] += w
        best, best_cost = -1, INF
        for c in range(used):
            if c not in blocked and cost[c] < best_cost:
                best, best_cost = c, cost[c]
        if used < k and (best < 0 or best_cost > 0):
            best = used
            used += 1
        if best < 0:
            return None
        labels[i] = best
    return labels


def _improve_by_moves(labels: np.ndarray, nbr, hnbr, k: int, passes: int) -> None:
    """First-improvement single-node moves (in place), keeping the labels dense and at most ``k`` classes."""
    n = len(labels)
    used = int(labels.max()) + 1
    for _ in range(passes):
        improved = False
        for i in range(n):
            cost = np.zeros(used + 1)
            for j, w in nbr[i]:
                cost[labels[j]] += w
            for j in hnbr[i]:
                cost[labels[j]] = INF
            own = labels[i]
            size_own = int(np.sum(labels == own))
            if used >= k or size_own == 1:
                cost[used] = INF  # opening a class is only allowed while one is free
            c = int(np.argmin(cost))
            if cost[c] < cost[own] - 1e-12:
                labels[i] = c
                if c == used:
                    used += 1
                improved = True
                if size_own == 1:  # keep labels dense: move the last class into the hole
                    labels[labels == used - 1] = own
                    used -= 1
        if not improved:
            break


def merge_down(part: Part, labels: np.ndarray, k: int) -> np.ndarray | None:
    """``labels`` with classes merged, cheapest pair first (by the soft weight between them), until at most ``k``
    remain; merges across a hard edge are never made. None when no allowed merge is left."""
    labels = first_appearance(labels)
    m = int(labels.max()) + 1 if len(labels) else 0
    if m <= k:
        return labels
    between = np.zeros((m, m))
    np.add.at(between, (labels[part.soft_u], labels[part.soft_v]), part.soft_w)
    between = between + between.T
    blocked = np.zeros((m, m), dtype=bool)
    blocked[labels[part.hard_u], labels[part.hard_v]] = True
    blocked |= blocked.T
    alive = list(range(m))
    while len(alive) > k:
        best, pair = INF, None
        for x in range(len(alive)):
            for y in range(x + 1, len(alive)):
                a, b = alive[x], alive[y]
                if not blocked[a, b] and between[a, b] < best:
                    best, pair = between[a, b], (a, b)
        if pair is None:
            return None
        a, b = pair
        labels[labels == b] = a
        between[a] += between[b]
        between[:, a] += between[:, b]
        between[a, a] = 0.0
        blocked[a] |= blocked[b]
        blocked[:, a] |= blocked[:, b]
        alive.remove(b)
    return first_appearance(labels)


# ---------------------------------------------------------------------------------------------- models
@dataclass(frozen=True)
class Model:
    """What an exact backend solves: parts (each with ``cap`` class slots of its own) under a global budget.
    A decomposition sub-problem is one part with ``max_classes = cap = k`` and no parameter cap."""

    parts: tuple[Part, ...]
    max_classes: int
    max_params: int | None = None
    symmetry: bool = True
    triangles: bool = False

    @property
    def needs_class_count(self) -> bool:
        """Whether the global class budget can bind (otherwise the per-part slots already enforce it)."""
        return sum(p.cap for p in self.parts) > self.max_classes

    def objective(self, labels: Sequence[np.ndarray]) -> float:
        return sum(p.objective(lab) for p, lab in zip(self.parts, labels))


@dataclass
class ModelAnswer:
    """A backend's answer for one ``Model``: ``status`` in optimal | infeasible | feasible | unknown; ``labels`` one
    local label array per part (or None); ``bound`` a proven lower bound on the model optimum (-inf when none)."""

    status: str
    labels: list[np.ndarray] | None = None
    bound: float = -INF
    stats: dict = field(default_factory=dict)
    interrupted: bool = False     # Ctrl-C stopped it: labels may hold an incumbent, nothing is proven


# ``solve_model(model, time_limit, hint) -> ModelAnswer``: what an exact backend supplies
SolveModel = Callable[[Model, "float | None", "list[np.ndarray] | None"], ModelAnswer]


# ---------------------------------------------------------------------------------------------- the curves
class Curve:
    """What is known about ``f(k)``, ``k = 1..cap``, for one part: lower and upper values, the labels behind each
    upper value, and which points were already handed to a solver (with how much time)."""

    def __init__(self, part: Part):
        self.part = part
        cap = part.cap
        self.lo = np.full(cap + 1, part.trivial_bound)
        self.hi = np.full(cap + 1, INF)
        self.sol: list[np.ndarray | None] = [None] * (cap + 1)
        self.proven = np.zeros(cap + 1, dtype=bool)   # f(k) known exactly (value or infeasibility)
        self.given: dict[int, float | None] = {}        # time handed to the solver at k (None = unlimited)
        self.lo[0] = INF

    def exact(self, k: int) -> bool:
        if self.proven[k] or self.lo[k] == INF:
            return True
        hi = self.hi[k]
        return bool(np.isfinite(hi) and self.lo[k] >= hi - 1e-9 * max(1.0, abs(hi)))

    def exact_mask(self) -> np.ndarray:
        """``exact(k)`` for k = 0..cap (index 0 counts as exact)."""
        return np.array([self.exact(k) if k else True for k in range(self.part.cap + 1)])

    def offer(self, labels: np.ndarray) -> None:
        """A feasible labelling with j classes is an upper value for every k >= j."""
        labels = first_appearance(labels)
        j = int(labels.max()) + 1 if len(labels) else 1
        value = self.part.objective(labels)
        for k in range(j, self.part.cap + 1):
            if value < self.hi[k]:
                self.hi[k], self.sol[k] = value, labels

    def raise_lo(self, k: int, bound: float) -> None:
        """f(k') >= f(k) >= bound for every k' <= k."""
        for kk in range(1, k + 1):
            self.lo[kk] = max(self.lo[kk], bound)

    def record(self, k: int, ans: ModelAnswer) -> None:
        """What a solver's answer at ``k`` classes proves about the curve."""
        if ans.status == "infeasible":
            self.raise_lo(k, INF)
            self.proven[1:k + 1] = True
            return
        if ans.labels is not None and self.part.feasible(ans.labels[0], k):
            self.offer(ans.labels[0])
            if ans.status == "optimal":
                value = self.part.objective(ans.labels[0])
                j = len(np.unique(ans.labels[0]))
                self.raise_lo(k, value)
                for kk in range(j, k + 1):  # f(j) <= value = f(k) <= f(j): flat in between
                    self.lo[kk] = value
                    self.proven[kk] = True
                return
        bound = ans.bound
        if ans.labels is not None and bound != INF:  # a bound above the answer's own value is no proof
            own = self.part.objective(ans.labels[0])
            if bound > own + 1e-9 * max(1.0, abs(own)):
                bound = -INF
        if np.isfinite(bound) or bound == INF:
            self.raise_lo(k, bound)

    def hint(self, k: int) -> np.ndarray | None:
        if self.sol[k] is not None:
            return self.sol[k]
        return part_greedy(self.part, k)

    def points(self) -> list[dict]:
        """``f(k)`` as known, k = 1..cap: objective (best found), bound, and whether it is proven / infeasible."""
        return [{"k": k, "objective": float(self.hi[k]) if np.isfinite(self.hi[k]) else None,
                 "bound": float(self.lo[k]) if np.isfinite(self.lo[k]) else None,
                 "proven": bool(self.exact(k)), "infeasible": bool(self.lo[k] == INF)}
                for k in range(1, self.part.cap + 1)]


# ---------------------------------------------------------------------------------------------- the DPs over types
def pareto(states: list, rel_tol: float = 0.0) -> list:
    """The states ``(size, cost, choice)`` that no other state beats on both size and cost, sorted by size (so the
    kept costs decrease). ``cost`` is a number or a tuple compared in order; with ``rel_tol`` a (numeric) cost must
    beat the last kept one by more than that relative margin. Equal size and cost: the fewest classes first."""
    states.sort(key=lambda s: (s[0], s[1], sum(s[2])))
    kept: list = []
    for s in states:
        if not kept or _cheaper(s[1], kept[-1][1], rel_tol):
            kept.append(s)
    return kept


def _cheaper(cost, best, rel_tol: float) -> bool:
    if rel_tol:
        return cost < best - rel_tol * max(1.0, abs(best))
    return cost < best


def allocate(values: Sequence[np.ndarray], penalties: Sequence[np.ndarray], max_classes: int,
             type_params: Sequence[int] | None = None, max_params: int | None = None
             ) -> tuple[float, list[int] | None]:
    """Choose ``k_t`` in ``1..cap_t`` minimising ``sum values[t][k_t]`` (ties: fewest ``penalties``) under
    ``sum k_t <= max_classes`` and, if given, ``sum k_t * type_params[t] <= max_params``.

    ``values[t][k]`` for ``k = 1..cap_t`` (index 0 unused). Returns ``(inf, None)`` when no finite choice exists.
    The parameter dimension keeps, per class count, the Pareto set of (params, (value, penalty)) states, which stays
    small because only ``cap_t`` choices per type exist; without ``max_params`` one state per class count is kept."""
    states: dict[int, list] = {0: [(0, (0.0, 0), ())]}    # classes used -> [(params, (value, penalty), choice)]
    for t, vals in enumerate(values):
        p_t = type_params[t] if type_params is not None and max_params is not None else 0
        nxt: dict[int, list] = {}
        for c, lst in states.items():
            for k in range(1, len(vals)):
                if c + k > max_classes or not np.isfinite(vals[k]):
                    continue
                for par, (val, pen), ch in lst:
                    size = par + k * p_t
                    if max_params is not None and size > max_params:
                        continue
                    nxt.setdefault(c + k, []).append((size, (val + float(vals[k]), pen + int(penalties[t][k])),
                                                      ch + (k,)))
        states = {c: pareto(lst) for c, lst in nxt.items()}
        if not states:
            return INF, None
    best = min((s for lst in states.values() for s in lst), key=lambda s: s[1])
    return best[1][0], list(best[2])


def by_class_count(values: Sequence[np.ndarray]) -> dict[int, tuple[float, tuple]]:
    """For every total class count c: the least ``Σ values[t][k_t]`` with ``Σ k_t = c`` and its choice (the DP of
    ``allocate`` for every class budget in one pass)."""
    states: dict[int, tuple[float, tuple]] = {0: (0.0, ())}
    for vals in values:
        nxt: dict[int, tuple[float, tuple]] = {}
        for c, (val, ch) in states.items():
            for k in range(1, len(vals)):
                if np.isfinite(vals[k]):
                    cand = (val + float(vals[k]), ch + (k,))
                    if c + k not in nxt or cand[0] < nxt[c + k][0]:
                        nxt[c + k] = cand
        states = nxt
    return states


def best_within(states: dict[int, tuple[float, tuple]], K: int) -> tuple[float, tuple] | None:
    """The best ``by_class_count`` state using at most K classes (ties: fewest classes)."""
    best = None
    for c in sorted(states):
        if c > K:
            break
        if best is None or states[c][0] < best[0] - 1e-12 * max(1.0, abs(best[0])):
            best = states[c]
    return best


def param_front(values: Sequence[np.ndarray], type_params: Sequence[int]) -> list:
    """Pareto states ``(params, value, choice)`` of ``min Σ values[t][k_t]`` against ``Σ k_t p_t``, sorted by
    params (so values decrease). Dropping dominated states after each type is exact: both quantities add up."""
    states: list = [(0, 0.0, ())]
    for vals, p_t in zip(values, type_params):
        states = pareto([(par + k * p_t, val + float(vals[k]), ch + (k,))
                         for par, val, ch in states for k in range(1, len(vals)) if np.isfinite(vals[k])],
                        rel_tol=1e-12)
        if not states:
            return []
    return states
