"""``classcost``: local search on the TRUE class cost of a tie-mode colouring (geoshare_opt/classcost.py).

The instance's graph objective sums pair weights inside classes; what tying a class actually costs under the diagonal
curvature model is ``½ Σ_p [Σ h w² − (Σ h w)² / Σ h]`` over its members, which the pair sum only models (equal for
pairs, ``|C|/2`` times too large with equal curvature). This backend starts from a colouring (a feasible warm start,
else the ``start`` backend's, default ``auto``) and improves the true cost by first-improvement node moves (to another
class of the node's type or to a new class) and swaps of two same-type nodes in different classes, until no move
improves or the time runs out. Every move keeps the instance feasible: hard edges, the global and per-type class caps
and ``max_params`` are checked before a move is made, and the driver's checker re-checks the answer as always.

The curvature and weights come from the sidecar: native ``sidecar=PATH`` (``geoshare-opt solve`` fills it in from the
instance's meta when the instance was read from a file). Without a sidecar the same search runs on the graph objective
and ``stats["objective"]`` says so (so the backend still answers every instance, e.g. the conformance suite).

The reported ``objective`` is, as for every backend, the graph objective recomputed by the checker;
``stats["true_cost"]`` holds the true cost of the start and of the answer. A bound is reported only when searching the
graph objective (the start stage's bound, which holds for any colouring).

With a sidecar the search first exploits the decomposition by type (``curves``, on by default): per type, a
true-cost curve ``g_t(k)`` for every class count, built from all-singletons down by merging the two classes whose
merge costs least and re-running the local search within the type at each k (the start colouring's own partition of
the type is refined at its k too); then the DP over types (``curves.allocate``, under the instance's class and
parameter budgets) picks the class counts, and the whole-instance search polishes the result. This moves classes
between types, which single-node moves under a tight parameter budget cannot do. It is skipped where the DP is not
exact (``max_params`` with mixed parameter counts in a type) or a type has more than ``CURVE_MAX_NODES`` nodes.

Native options: ``sidecar`` (path), ``start`` (backend name for the start colouring, default ``auto``),
``swaps`` (bool, default true), ``max_rounds`` (int, default 1000), ``curves`` (bool, default true).
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from ..checker import evaluate
from ..errors import InputError
from ..instance import Instance
from ..options import SolveOptions
from ..result import Termination
from .base import Backend, Outcome, SolveContext
from .curves import INF, Part, allocate, first_appearance, global_labels, part_instance, parts_of
from .decompose import can_decompose

START_SHARE = 0.5          # of a time limit, for the start colouring; the search gets the rest
START_SHARE_GRAPH = 0.8    # the same without a sidecar: the start (auto) already optimises the graph objective
CURVE_SHARE = 0.5          # of the time left after the start, for the per-type curves
DENSE_LIMIT = 4000         # largest type the graph-objective fallback keeps as a dense matrix
CURVE_MAX_NODES = 64       # largest type whose true-cost curve is built (k = n..1 merges cost O(n³) class costs)
_NATIVE = {"sidecar", "start", "swaps", "max_rounds", "curves"}
NEW = -1                   # "a new class" as a move target


# ---------------------------------------------------------------------- objectives
class _TrueCostObjective:
    """Per-class sufficient statistics of the true class cost (classcost.ClassCost)."""

    name = "true class cost"

    def __init__(self, cc, labels: np.ndarray, members: dict[int, set]):
        self.cc = cc
        self.sums = {c: cc.sums(sorted(m)) for c, m in members.items()}
        self.costs = {c: cc.cost_of(s) for c, s in self.sums.items()}

    def total(self) -> float:
        return float(sum(self.costs.values()))

    def move_delta(self, i: int, a: int, b: int):
        new_a = self.cc.remove(self.sums[a], i)
        new_b = self.cc.add(self.sums[b], i) if b != NEW else None
        d = self.cc.cost_of(new_a) - self.costs[a]
        if b != NEW:
            d += self.cc.cost_of(new_b) - self.costs[b]
        return d, (new_a, new_b)

    def apply_move(self, i: int, a: int, b: int, memo, new_label: int) -> None:
        new_a, new_b = memo
        if new_a is None:
            del self.sums[a], self.costs[a]
        else:
            self.sums[a], self.costs[a] = new_a, self.cc.cost_of(new_a)
        if b == NEW:
            self.sums[new_label] = self.cc.sums([i])
            self.costs[new_label] = 0.0
        else:
            self.sums[b], self.costs[b] = new_b, self.cc.cost_of(new_b)

    def swap_delta(self, i: int, a: int, j: int, b: int):
        new_a = self.cc.swap(self.sums[a], i, j)
        new_b = self.cc.swap(self.sums[b], j, i)
        d = self.cc.cost_of(new_a) - self.costs[a] + self.cc.cost_of(new_b) - self.costs[b]
        return d, (new_a, new_b)

    def apply_swap(self, i: int, a: int, j: int, b: int, memo) -> None:
        new_a, new_b = memo
        self.sums[a], self.costs[a] = new_a, self.cc.cost_of(new_a)
        self.sums[b], self.costs[b] = new_b, self.cc.cost_of(new_b)


class _GraphObjective:
    """The instance's graph objective (sum of soft weights inside classes), with dense per-type weight blocks."""

    name = "graph objective (no curvature sidecar)"

    def __init__(self, instance: Instance, members: dict[int, set]):
        self.members = members            # shared with the search (it updates them)
        self.local = np.empty(len(instance.nodes), dtype=np.int64)
        self.block_of = np.empty(len(instance.nodes), dtype=np.int64)
        self.W = []
        for ti, part in enumerate(parts_of(instance)):
            self.local[part.nodes] = np.arange(part.n)
            self.block_of[part.nodes] = ti
            self.W.append(part.W)
        self._instance = instance

    def _weight_to(self, i: int, c: int, skip: int = -1) -> float:
        W = self.W[self.block_of[i]]
        row = W[self.local[i]]
        return float(sum(row[self.local[j]] for j in self.members[c] if j != i and j != skip))

    def total(self) -> float:
        from ..checker import objective_of_labels
        return float(objective_of_labels(self._instance, self._labels()))

    def _labels(self) -> np.ndarray:
        out = np.empty(len(self.local), dtype=np.int64)
        for c, m in self.members.items():
            out[list(m)] = c
        return out

    def move_delta(self, i: int, a: int, b: int):
        d = -self._weight_to(i, a)
        if b != NEW:
            d += self._weight_to(i, b)
        return d, None

    def apply_move(self, i, a, b, memo, new_label) -> None:
        pass                               # the search updates the members

    def swap_delta(self, i: int, a: int, j: int, b: int):
        # i leaves a for b without j; j leaves b for a without i
        d = (self._weight_to(i, b, skip=j) - self._weight_to(i, a)
             + self._weight_to(j, a, skip=i) - self._weight_to(j, b))
        return d, None

    def apply_swap(self, i, a, j, b, memo) -> None:
        pass


# ---------------------------------------------------------------------- the search
class _Search:
    """First-improvement moves and swaps under every cap of the instance's budget."""

    def __init__(self, instance: Instance, labels: np.ndarray, objective_factory, ctx: SolveContext,
                 rng: np.random.Generator, swaps: bool, max_rounds: int):
        self.inst = instance
        self.ctx = ctx
        self.rng = rng
        self.swaps = swaps
        self.max_rounds = max_rounds
        self.labels = np.asarray(labels, dtype=np.int64).copy()
        self.committed = self.labels.copy()          # consistent state to return after Ctrl-C
        self.members: dict[int, set] = {}
        for i, c in enumerate(self.labels.tolist()):
            self.members.setdefault(c, set()).add(i)
        self.type_of = instance.type_of
        self.params = instance.params
        b = instance.budget
        self.max_classes = b.max_classes
        self.max_params = b.max_params
        self.type_caps = np.array([b.max_classes_per_type.get(t, len(instance.nodes)) for t in instance.types])
        self.per_type = np.zeros(len(instance.types), dtype=np.int64)
        for c, m in self.members.items():
            self.per_type[self.type_of[next(iter(m))]] += 1
        self.stored = int(sum(self._pmax(m) for m in self.members.values()))
        self.hard = [set() for _ in range(len(instance.nodes))]
        u, v, _, hard = instance.edge_arrays
        for a, c in zip(u[hard].tolist(), v[hard].tolist()):
            self.hard[a].add(c)
            self.hard[c].add(a)
        self.classes_of_type: dict[int, set] = {}
        for c, m in self.members.items():
            self.classes_of_type.setdefault(int(self.type_of[next(iter(m))]), set()).add(c)
        self.next_label = int(self.labels.max()) + 1 if len(self.labels) else 0
        self.obj = objective_factory(self.labels, self.members)
        self.moves = self.swaps_done = self.rounds = 0

    def _pmax(self, m) -> int:
        return int(max(self.params[j] for j in m)) if m else 0

    def tol(self) -> float:
        return 1e-10 * max(abs(self.current), 1e-300)

    # feasibility ------------------------------------------------------
    def can_move(self, i: int, a: int, b: int) -> bool:
        rest = self.members[a] - {i}
        if b == NEW:
            if not rest:
                return False                              # a singleton moving to a new class changes nothing
            t = self.type_of[i]
            if self.per_type[t] + 1 > self.type_caps[t] or len(self.members) + 1 > self.max_classes:
                return False
            target: set = set()
        else:
            target = self.members[b]
            if self.hard[i] & target:
                return False
        if self.max_params is not None:
            before = self._pmax(self.members[a]) + self._pmax(target)
            after = self._pmax(rest) + self._pmax(target | {i})
            if self.stored - before + after > self.max_params:
                return False
        return True

    def can_swap(self, i: int, a: int, j: int, b: int) -> bool:
        new_a = (self.members[a] - {i}) | {j}
        new_b = (self.members[b] - {j}) | {i}
        if self.hard[j] & (self.members[a] - {i}) or self.hard[i] & (self.members[b] - {j}):
            return False
        if self.max_params is not None:
            before = self._pmax(self.members[a]) + self._pmax(self.members[b])
            if self.stored - before + self._pmax(new_a) + self._pmax(new_b) > self.max_params:
                return False
        return True

    # moves -------------------------------------------------------------
    def do_move(self, i: int, a: int, b: int, memo) -> None:
        t = int(self.type_of[i])
        target = self.members[b] if b != NEW else set()
        before = self._pmax(self.members[a]) + self._pmax(target)
        new_label = self.next_label if b == NEW else b
        self.obj.apply_move(i, a, b, memo, new_label)
        self.members[a].discard(i)
        if b == NEW:
            self.members[new_label] = set()
            self.classes_of_type[t].add(new_label)
            self.per_type[t] += 1
            self.next_label += 1
        self.members[new_label].add(i)
        after = self._pmax(self.members[a]) + self._pmax(self.members[new_label])
        if not self.members[a]:
            del self.members[a]
            self.classes_of_type[t].discard(a)
            self.per_type[t] -= 1
        self.stored += after - before
        self.labels[i] = new_label
        self.committed = self.labels.copy()
        self.moves += 1

    def do_swap(self, i: int, a: int, j: int, b: int, memo) -> None:
        before = self._pmax(self.members[a]) + self._pmax(self.members[b])
        self.obj.apply_swap(i, a, j, b, memo)
        self.members[a].discard(i)
        self.members[b].discard(j)
        self.members[a].add(j)
        self.members[b].add(i)
        self.stored += self._pmax(self.members[a]) + self._pmax(self.members[b]) - before
        self.labels[i], self.labels[j] = b, a
        self.committed = self.labels.copy()
        self.swaps_done += 1

    def run(self) -> bool:
        """Search until a local optimum (True) or the deadline / round limit (False)."""
        self.current = self.obj.total()
        n = len(self.labels)
        while self.rounds < self.max_rounds:
            improved = False
            for i in self.rng.permutation(n).tolist():
                if self.ctx.expired():
                    return False
                a = int(self.labels[i])
                t = int(self.type_of[i])
                best, best_b, best_memo = -self.tol(), None, None
                for b in sorted(self.classes_of_type[t]) + [NEW]:
                    if b == a or not self.can_move(i, a, b):
                        continue
                    d, memo = self.obj.move_delta(i, a, b)
                    if d < best:
                        best, best_b, best_memo = d, b, memo
                if best_b is not None:
                    self.do_move(i, a, best_b, best_memo)
                    self.current += best
                    improved = True
            if self.swaps:
                for t in range(len(self.inst.types)):
                    nodes = np.flatnonzero(self.type_of == t)
                    pairs = [(int(x), int(y)) for k, x in enumerate(nodes) for y in nodes[k + 1:]]
                    for p in self.rng.permutation(len(pairs)).tolist():
                        if self.ctx.expired():
                            return False
                        i, j = pairs[p]
                        a, b = int(self.labels[i]), int(self.labels[j])
                        if a == b or not self.can_swap(i, a, j, b):
                            continue
                        d, memo = self.obj.swap_delta(i, a, j, b)
                        if d < -self.tol():
                            self.do_swap(i, a, j, b, memo)
                            self.current += d
                            improved = True
            self.rounds += 1
            if not improved:
                return True
        return False


# ---------------------------------------------------------------------- the backend
class ClassCostBackend(Backend):
    name = "classcost"
    summary = ("true class cost from the curvature sidecar: per-type curves + DP over types, then moves and swaps; "
               "starts from auto")
    exact = False
    gives_bound = True     # only without a sidecar: the start stage's bound on the graph objective
    determinism = "seeded with threads=1"
    modules = ("numba", "safetensors")
    distributions = ("numba", "ortools", "safetensors")

    def run(self, instance: Instance, options: SolveOptions, ctx: SolveContext) -> Outcome:
        native = dict(options.native)
        unknown = set(native) - _NATIVE
        if unknown:
            raise InputError(f"classcost: unknown native option {sorted(unknown)[0]!r} "
                             f"(known: {', '.join(sorted(_NATIVE))})")
        start_name = str(native.get("start", "auto"))
        if start_name == self.name:
            raise InputError("classcost: the start backend cannot be classcost itself")
        max_rounds = native.get("max_rounds", 1000)
        if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 0:
            raise InputError(f"classcost: max_rounds must be a non-negative integer, got {max_rounds!r}")
        swaps, curves = native.get("swaps", True), native.get("curves", True)
        for key, val in (("swaps", swaps), ("curves", curves)):
            if not isinstance(val, bool):
                raise InputError(f"classcost: {key} must be true or false, got {val!r}")
        cc = None
        if native.get("sidecar") is not None:
            from ..classcost import load_class_cost
            cc = load_class_cost(instance, sidecar=str(native["sidecar"]))
        stats: dict = {"objective": "true class cost" if cc is not None else _GraphObjective.name}
        if cc is None:
            stats["note"] = ("no curvature sidecar given (native sidecar=PATH): the search improved the graph "
                             "objective instead of the true class cost")

        # 1. the start colouring
        t0 = time.perf_counter()
        start, start_out = self._start(instance, options, ctx, start_name, stats,
                                       START_SHARE if cc is not None else START_SHARE_GRAPH)
        stats["start_s"] = round(time.perf_counter() - t0, 4)
        if start is None:
            term = Termination(start_out.termination) if start_out is not None else Termination.COMPLETED
            if term == Termination.OPTIMAL:
                term = Termination.COMPLETED
            return Outcome(term, None, None, start_out.message if start_out is not None else "", stats)
        bound = None if cc is not None or start_out is None else start_out.bound
        if start_out is not None and Termination(start_out.termination) == Termination.INTERRUPTED:
            return Outcome(Termination.INTERRUPTED, start, bound, "interrupted by the user", stats)

        # 2. the local search
        if cc is not None:
            factory = lambda labels, members: _TrueCostObjective(cc, labels, members)  # noqa: E731
        else:
            if max(len(instance.type_members(t)) for t in instance.types) > DENSE_LIMIT:
                stats["note"] += f"; a type has more than {DENSE_LIMIT} nodes: search skipped"
                return Outcome(Termination.COMPLETED, start, bound, "", stats)
            factory = lambda labels, members: _GraphObjective(instance, members)  # noqa: E731
        rng = np.random.default_rng(options.seed)
        t1 = time.perf_counter()
        begin = start
        interrupted = False
        if cc is not None and curves and max_rounds > 0:
            try:
                begin = _curves_phase(instance, cc, start, ctx, rng, swaps, max_rounds, stats)
            except KeyboardInterrupt:
                interrupted = True
        search = _Search(instance, begin, factory, ctx, rng, swaps, max_rounds)
        try:
            local_optimum = False if interrupted else search.run()
        except KeyboardInterrupt:
            local_optimum, interrupted = False, True
        labels = search.committed
        stats.update({"moves": search.moves, "swaps": search.swaps_done, "rounds": search.rounds,
                      "local_optimum": local_optimum, "search_s": round(time.perf_counter() - t1, 4)})
        if cc is not None:
            before, after = cc(start), cc(labels)
            if after > before:        # rounding in the running sums: never hand back a worse colouring
                labels, after = start, before
            stats["true_cost"] = {"start": before, "final": after}
        else:
            g0, g1 = evaluate(instance, start).objective, evaluate(instance, labels).objective
            if g1 > g0:
                labels = start
        if interrupted:
            return Outcome(Termination.INTERRUPTED, labels, bound, "interrupted by the user", stats)
        start_term = Termination(start_out.termination) if start_out is not None else Termination.COMPLETED
        if start_term == Termination.TIME_LIMIT or (not local_optimum and ctx.expired()):
            return Outcome(Termination.TIME_LIMIT, labels, bound, "", stats)
        term = Termination.COMPLETED if local_optimum else Termination.ITERATION_LIMIT
        return Outcome(term, labels, bound, "", stats)

    def _start(self, instance: Instance, options: SolveOptions, ctx: SolveContext, start_name: str, stats: dict,
               share: float):
        """The warm start if feasible, else the start backend's colouring (run in a context of its own: its
        incumbents are graph-objective incumbents, which must not override the search's answer)."""
        if options.warm_start is not None and evaluate(instance, options.warm_start).feasible:
            stats["start"] = {"solver": "warm start"}
            return np.asarray(options.warm_start, dtype=np.int64), None
        from . import get_backend
        start_cls = get_backend(start_name)
        left = ctx.time_left()
        opts = replace(options, native={}, warm_start=None,
                       time_limit=None if left is None else left * share)
        child = SolveContext(instance, opts, log=ctx.log, progress=ctx.progress)
        try:
            out = start_cls().run(instance, opts, child)
        except KeyboardInterrupt:
            out = Outcome(Termination.INTERRUPTED, None, None, "interrupted by the user")
        labels = out.labels
        if labels is None or not evaluate(instance, labels).feasible:
            labels = child.best_labels
        elif child.best_labels is not None and child.best_objective < evaluate(instance, labels).objective:
            labels = child.best_labels
        stats["start"] = {"solver": start_name, "termination": Termination(out.termination).value}
        if labels is not None:
            stats["start"]["objective"] = evaluate(instance, labels).objective
        return (None if labels is None else np.asarray(labels, dtype=np.int64)), out


# ---------------------------------------------------------------------- per-type true-cost curves + DP
def _curves_phase(instance: Instance, cc, start: np.ndarray, ctx: SolveContext, rng, swaps: bool, max_rounds: int,
                  stats: dict) -> np.ndarray:
    """The DP over per-type true-cost curves (module docstring); returns the better of its colouring and ``start``."""
    info: dict = {}
    stats["curves"] = info
    parts = parts_of(instance)
    if not can_decompose(instance):
        info["skipped"] = "max_params with mixed parameter counts in a type: the DP over types is not exact"
        return start
    if max(p.n for p in parts) > CURVE_MAX_NODES:
        info["skipped"] = f"a type has more than {CURVE_MAX_NODES} nodes"
        return start
    left = ctx.time_left()
    deadline = None if left is None else time.monotonic() + CURVE_SHARE * left
    sub_ctx = SolveContext(instance, SolveOptions(time_limit=None if left is None else CURVE_SHARE * left))
    t0 = time.perf_counter()
    values, sols = [], []
    for part in parts:
        vals, sol = _type_curve(part, cc, start, sub_ctx, rng, swaps, max_rounds)
        values.append(vals)
        sols.append(sol)
    info["s"] = round(time.perf_counter() - t0, 4)
    if deadline is not None and time.monotonic() >= deadline:
        info["cut_by_time"] = True
    b = instance.budget
    type_params = [p.max_param for p in parts] if b.max_params is not None else None
    _, ks = allocate(values, [np.zeros(len(v), dtype=np.int64) for v in values], b.max_classes, type_params,
                     b.max_params)
    if ks is None:
        return start
    labels = global_labels(parts, [sol[k] for sol, k in zip(sols, ks)], len(instance.nodes))
    if not evaluate(instance, labels).feasible:
        info["dp_infeasible"] = True
        return start
    dp_cost, start_cost = cc(labels), cc(start)
    info.update({"dp_true_cost": dp_cost, "classes_per_type": {p.type: int(k) for p, k in zip(parts, ks)},
                 "values": {p.type: [None if not np.isfinite(x) else float(x) for x in v[1:]]
                            for p, v in zip(parts, values)}})
    return labels if dp_cost < start_cost else start


def _type_curve(part: Part, cc, start: np.ndarray, ctx: SolveContext, rng, swaps, max_rounds):
    """``g(k)``, k = 1..cap: the best true cost found for the type alone with at most k classes, and its labels
    (local). From all singletons (cost 0) down: merge the cheapest pair of classes, then search within the type."""
    n, cap = part.n, part.cap
    vals = np.full(cap + 1, INF)
    sols: list = [None] * (cap + 1)
    sub_all = part_instance(part, max(n, 1))
    scc = cc.restrict(sub_all, part.nodes)
    own = first_appearance(start[part.nodes])
    k_own = int(own.max()) + 1 if n else 0
    hard = np.zeros((n, n), dtype=bool)
    hard[part.hard_u, part.hard_v] = True
    hard |= hard.T
    cur = np.arange(n, dtype=np.int64)
    for k in range(n, 0, -1):
        if ctx.expired():
            break
        if k < n:
            cur = _merge_cheapest(scc, hard, cur)
            if cur is None:
                break
        sub = part_instance(part, k)
        best, best_val = None, INF
        for cand in ([cur, own] if k == k_own else [cur]):
            search = _Search(sub, cand, lambda labels, members: _TrueCostObjective(scc, labels, members), ctx, rng,
                             swaps, max_rounds)
            search.run()
            val = scc(search.committed)
            if val < best_val:
                best, best_val = search.committed, val
        cur = first_appearance(best)
        if k <= cap:
            vals[k], sols[k] = best_val, cur
    for k in range(2, cap + 1):          # at most k classes: never worse than with fewer
        if vals[k - 1] < vals[k]:
            vals[k], sols[k] = vals[k - 1], sols[k - 1]
    return vals, sols


def _merge_cheapest(scc, hard: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    """``labels`` with the two classes whose merge raises the true cost least merged (never across a hard edge)."""
    classes = sorted(set(labels.tolist()))
    members = {c: np.flatnonzero(labels == c) for c in classes}
    sums = {c: scc.sums(members[c]) for c in classes}
    cost = {c: scc.cost_of(sums[c]) for c in classes}
    best, pair = None, None
    for x, a in enumerate(classes):
        for b in classes[x + 1:]:
            if hard[np.ix_(members[a], members[b])].any():
                continue
            d = scc.cost_of(scc.merge(sums[a], sums[b])) - cost[a] - cost[b]
            if best is None or d < best:
                best, pair = d, (a, b)
    if pair is None:
        return None
    out = labels.copy()
    out[out == pair[1]] = pair[0]
    return out
