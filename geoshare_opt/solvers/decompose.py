"""The exact decomposition by type, shared by every exact backend (formulations/decomposition.md).

A class never mixes types, so ``OPT(K) = min sum_t f_t(k_t)`` over ``1 <= k_t <= cap_t``, ``sum_t k_t <= K`` and,
when every type stores a uniform parameter count ``p_t``, ``sum_t k_t p_t <= P``. ``f_t(k)`` is the optimum of type t
alone with *at most* k classes, so it is non-increasing in k (infinite below the chromatic number of t's hard edges).

The curves are filled lazily: a dynamic programme over types runs on *lower* values ``lo_t(k)``; every point it
picks that is not yet exact is solved; repeat until the DP's choice consists of exact points. Its value is then the
optimum, and at any time it is a proven global bound. A DP on *upper* values (incumbents) gives the best assignment
found so far. Monotonicity fills whole stretches of a curve per solve: a solution with j classes found at budget k
proves ``f(j) = ... = f(k)`` when optimal, and bounds every ``f(k')`` for ``k' < k`` from below.

When ``max_params`` is set and some type has non-uniform parameter counts, the DP cannot charge a type's storage
by its class count alone; the backends then solve one monolithic model (``solve_monolithic``).

An exact backend supplies one function, ``SolveModel(model, time_limit, hint) -> ModelAnswer``, that solves a
``Model`` (a list of parts plus a global budget) exactly or until the time limit.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np

from ..checker import evaluate
from ..errors import InputError
from ..instance import Instance, TypeBlock
from ..options import SolveOptions
from ..result import Termination
from .base import Outcome, SolveContext

INF = math.inf


# ---------------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Part:
    """One type's sub-problem, sparse, in local indices ``0..n-1`` (``nodes`` maps them to global indices).

    ``soft_*`` hold the non-zero soft edges with ``u < v``; ``hard_*`` the hard ones; ``cap`` is the number of class
    slots the part may use in the model at hand.
    """

    type: str
    nodes: np.ndarray
    params: np.ndarray
    soft_u: np.ndarray
    soft_v: np.ndarray
    soft_w: np.ndarray
    hard_u: np.ndarray
    hard_v: np.ndarray
    cap: int

    @property
    def n(self) -> int:
        return len(self.nodes)

    @property
    def uniform_params(self) -> bool:
        return bool(self.n == 0 or np.all(self.params == self.params[0]))

    @property
    def max_param(self) -> int:
        return int(self.params.max()) if self.n else 0

    @property
    def trivial_bound(self) -> float:
        """Every negative edge inside a class: no partition can do better."""
        return float(self.soft_w[self.soft_w < 0].sum())

    def with_cap(self, cap: int) -> "Part":
        return replace(self, cap=int(cap))

    def objective(self, labels: np.ndarray) -> float:
        same = labels[self.soft_u] == labels[self.soft_v]
        return float(self.soft_w[same].sum())

    def feasible(self, labels: np.ndarray, k: int) -> bool:
        """Proper on the hard edges and at most ``k`` distinct classes."""
        if len(labels) != self.n:
            return False
        if np.any(labels[self.hard_u] == labels[self.hard_v]):
            return False
        return len(np.unique(labels)) <= k


def parts_of(instance: Instance) -> list[Part]:
    """One ``Part`` per type (in ``instance.types`` order) with ``cap = instance.type_cap(t)``; sparse, so a large
    instance never allocates a dense matrix here."""
    parts = []
    for t in instance.types:
        members = instance.type_members(t)
        lu, lv, ws, hs = instance.type_edges(t)
        a, b = np.minimum(lu, lv), np.maximum(lu, lv)
        soft = ~hs & (ws != 0.0)
        parts.append(Part(t, members, instance.params[members], a[soft], b[soft], ws[soft], a[hs], b[hs],
                          instance.type_cap(t)))
    return parts


def part_from_block(block: TypeBlock) -> Part:
    """A ``Part`` from the dense ``Instance.block(t)`` view."""
    iu, ju = np.triu_indices(block.n, 1)
    soft = (block.W[iu, ju] != 0.0) & ~block.hard[iu, ju]
    hard = block.hard[iu, ju]
    return Part(block.type, np.asarray(block.nodes), np.asarray(block.params), iu[soft], ju[soft],
                block.W[iu, ju][soft], iu[hard], ju[hard], block.max_classes)


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


SolveModel = Callable[[Model, "float | None", "list[np.ndarray] | None"], ModelAnswer]

# native options read here, never passed on to the solver library
OWN_OPTIONS = ("decompose", "symmetry", "triangles", "hint", "seed_heuristic")


def own_option(options: SolveOptions, key: str, default: bool) -> bool:
    """One of ``OWN_OPTIONS`` (all true/false switches); any other value is bad input, not silently truthy."""
    value = options.native.get(key, default)
    if not isinstance(value, bool):
        raise InputError(f"native option {key} must be true or false, got {value!r}")
    return value


def solver_native(options: SolveOptions) -> dict:
    """The native options meant for the solver library itself."""
    return {k: v for k, v in options.native.items() if k not in OWN_OPTIONS}


# ---------------------------------------------------------------------------------------------- greedy hints
def part_greedy(part: Part, k: int, passes: int = 10) -> np.ndarray | None:
    """A feasible labelling of ``part`` with at most ``k`` classes, or None if the greedy finds none.

    Weighted DSatur-like insertion (most hard neighbours first, cheapest allowed class, a new class when it is
    cheaper) followed by first-improvement single-node moves. Used as a complete hint for the exact models, so it
    only has to be decent, and fast on the part sizes exact solvers handle."""
    n = part.n
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    nbr: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for a, b, w in zip(part.soft_u.tolist(), part.soft_v.tolist(), part.soft_w.tolist()):
        nbr[a].append((b, w))
        nbr[b].append((a, w))
    hnbr: list[list[int]] = [[] for _ in range(n)]
    for a, b in zip(part.hard_u.tolist(), part.hard_v.tolist()):
        hnbr[a].append(b)
        hnbr[b].append(a)
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
    return labels


def restrict(labels: np.ndarray | None, part: Part) -> np.ndarray | None:
    """A global labelling seen from one part (dense local classes in first-appearance order)."""
    if labels is None:
        return None
    _, inv = np.unique(labels[part.nodes], return_inverse=True)
    return first_appearance(inv)


def first_appearance(labels: np.ndarray) -> np.ndarray:
    """Relabel 0..k-1 in order of first appearance: the canonical form the symmetry breaking keeps."""
    out = np.empty(len(labels), dtype=np.int64)
    seen: dict[int, int] = {}
    for i, c in enumerate(np.asarray(labels).tolist()):
        out[i] = seen.setdefault(c, len(seen))
    return out


def global_labels(parts: Sequence[Part], labels: Sequence[np.ndarray], n_nodes: int) -> np.ndarray:
    """Per-part local labels -> one global labelling (classes of different parts never collide)."""
    out = np.zeros(n_nodes, dtype=np.int64)
    offset = 0
    for p, lab in zip(parts, labels):
        dense = first_appearance(lab)
        out[p.nodes] = dense + offset
        offset += int(dense.max()) + 1 if len(dense) else 0
    return out


# the heuristic seed (formulations/decomposition.md): what an exact backend starts from when no warm start is given
SEED_SHARE = 0.1       # with a time limit T the anneal seed gets min(SEED_SHARE * T, SEED_MAX_S, n * SEED_S_PER_NODE)
SEED_MAX_S = 2.0
# small instances converge early (tiny-gpt cut to 6 layers, 36 nodes: the same colouring at 0.36 s as at 2 s), and
# their proofs take about a second: they should not pay the full share
SEED_S_PER_NODE = 0.01
SEED_MIN_NODES = 17    # up to 16 nodes (the brute-force and conformance sizes) proofs take milliseconds: no anneal


def start_labels(instance: Instance, options: SolveOptions, ctx: SolveContext) -> tuple[np.ndarray | None, dict]:
    """The feasible start of an exact backend, offered to ``ctx`` (a time limit or Ctrl-C returns it) and used as
    the hint / MIP start; with what ran, for ``stats["seed"]``.

    A feasible user warm start is used as it is. Otherwise the best of the dsatur greedy and a short anneal run:
    CP-SAT or a MIP alone finds poor incumbents on large real instances (tiny-gpt, 144 nodes, 20 s: 23x the
    objective of greedy + anneal). The anneal gets ``min(SEED_SHARE * T, SEED_MAX_S, n * SEED_S_PER_NODE)``
    seconds under a time limit T (n nodes), else its own default move budget (deterministic, about a second on
    large instances); it is skipped on instances under ``SEED_MIN_NODES`` nodes and when the greedy already meets
    the trivial bound. Native ``seed_heuristic=False`` keeps the greedy only, ``hint=False`` starts from nothing.
    A start only changes where the search begins, never what is proven."""
    stats: dict = {"used": None}
    if options.warm_start is not None and evaluate(instance, options.warm_start).feasible:
        warm = np.asarray(options.warm_start, dtype=np.int64)
        ctx.offer(warm)
        stats["used"] = "warm_start"
        return warm, stats
    if not own_option(options, "hint", True):
        stats["skipped"] = "native hint=False"
        return None, stats
    best, best_obj = None, INF
    t0 = time.monotonic()
    try:
        from .dsatur import greedy_labels
        greedy = greedy_labels(instance, seed=options.seed)
    except Exception:  # a start is optional: a failing greedy must not sink an exact solve
        greedy = None
    stats["greedy_s"] = round(time.monotonic() - t0, 4)
    if greedy is not None:
        ev = evaluate(instance, greedy)
        if ev.feasible:
            best, best_obj, stats["used"] = np.asarray(greedy, dtype=np.int64), ev.objective, "greedy"
            stats["greedy"] = ev.objective
            ctx.offer(best)
    skip = _anneal_seed_skip(instance, options, ctx, best_obj)
    if skip:
        stats["anneal"] = f"skipped: {skip}"
        return best, stats
    labels, anneal_stats = _anneal_seed(instance, options, ctx)
    stats.update(anneal_stats)
    if labels is not None:
        obj = evaluate(instance, labels).objective
        if obj < best_obj - 1e-12 * max(1.0, abs(obj)):
            best, best_obj, stats["used"] = labels, obj, "anneal"
    return best, stats


def _anneal_seed_skip(instance: Instance, options: SolveOptions, ctx: SolveContext, greedy_obj: float) -> str:
    """Why the anneal seed does not run ("" when it does)."""
    if not own_option(options, "seed_heuristic", True):
        return "native seed_heuristic=False"
    if len(instance.nodes) < SEED_MIN_NODES:
        return f"fewer than {SEED_MIN_NODES} nodes"
    trivial = sum(p.trivial_bound for p in parts_of(instance))
    if greedy_obj <= trivial + 1e-9 * max(1.0, abs(trivial)):
        return "the greedy meets the trivial bound"
    if ctx.expired():
        return "no time left"
    return ""


def _anneal_seed(instance: Instance, options: SolveOptions, ctx: SolveContext) -> tuple[np.ndarray | None, dict]:
    """One anneal run under its own deadline (public backend interface), its incumbents forwarded to ``ctx``."""
    left = ctx.time_left()
    limit = None if left is None else min(SEED_SHARE * left, SEED_MAX_S, SEED_S_PER_NODE * len(instance.nodes))
    stats: dict = {"anneal_limit_s": limit}
    try:
        from .anneal import AnnealBackend
    except ImportError as exc:  # numba missing: the greedy alone
        stats["anneal"] = f"skipped: {exc}"
        return None, stats
    a_opts = replace(options, time_limit=limit, warm_start=None, native={})
    child = SolveContext(instance, a_opts, log=ctx.log)
    t0 = time.monotonic()
    try:
        out = AnnealBackend().run(instance, a_opts, child)
        if out.labels is not None:
            child.offer(out.labels)
    except Exception as exc:  # the seed is optional; Ctrl-C (BaseException) still reaches the driver
        stats["anneal_error"] = f"{type(exc).__name__}: {exc}"
    finally:
        stats["anneal_s"] = round(time.monotonic() - t0, 4)
        if child.best_labels is not None:
            ctx.offer(child.best_labels)
    if child.best_labels is None:
        stats["anneal"] = None
        return None, stats
    stats["anneal"] = child.best_objective
    return child.best_labels, stats


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


# ---------------------------------------------------------------------------------------------- the DP
def allocate(values: Sequence[np.ndarray], penalties: Sequence[np.ndarray], max_classes: int,
             type_params: Sequence[int] | None = None, max_params: int | None = None
             ) -> tuple[float, list[int] | None]:
    """Choose ``k_t`` in ``1..cap_t`` minimising ``sum values[t][k_t]`` (ties: fewest ``penalties``) under
    ``sum k_t <= max_classes`` and, if given, ``sum k_t * type_params[t] <= max_params``.

    ``values[t][k]`` for ``k = 1..cap_t`` (index 0 unused). Returns ``(inf, None)`` when no finite choice exists.
    The parameter dimension keeps, per class count, the Pareto set of (params, value) states, which stays small
    because only ``cap_t`` choices per type exist."""
    # state: classes used -> list of (value, penalty, params, choice tuple)
    states: dict[int, list[tuple[float, int, int, tuple[int, ...]]]] = {0: [(0.0, 0, 0, ())]}
    for t, vals in enumerate(values):
        cap = len(vals) - 1
        p_t = type_params[t] if type_params is not None else 0
        nxt: dict[int, list] = {}
        for c, lst in states.items():
            for k in range(1, cap + 1):
                if c + k > max_classes or not np.isfinite(vals[k]):
                    continue
                for val, pen, par, ch in lst:
                    np_ = par + k * p_t
                    if max_params is not None and np_ > max_params:
                        continue
                    nxt.setdefault(c + k, []).append((val + float(vals[k]), pen + int(penalties[t][k]), np_, ch + (k,)))
        states = {c: _pareto(lst, max_params is not None) for c, lst in nxt.items()}
        if not states:
            return INF, None
    best = min((s for lst in states.values() for s in lst), key=lambda s: (s[0], s[1]))
    return best[0], list(best[3])


def _pareto(states: list, by_params: bool) -> list:
    """Drop dominated states (worse value and penalty, and no fewer params)."""
    states.sort(key=lambda s: (s[2] if by_params else 0, s[0], s[1]))
    if not by_params:
        return states[:1]
    kept, best = [], (INF, INF)
    for s in states:
        if (s[0], s[1]) < best:
            kept.append(s)
            best = (s[0], s[1])
    return kept


# ---------------------------------------------------------------------------------------------- drivers
def can_decompose(instance: Instance) -> bool:
    """Exact unless a parameter cap meets a type whose members store different parameter counts."""
    if instance.budget.max_params is None:
        return True
    return all(p.uniform_params for p in parts_of(instance))


def solve_exact(instance: Instance, options: SolveOptions, ctx: SolveContext, solve_model: SolveModel) -> Outcome:
    """The entry point of every exact backend: decomposition where exact (and not switched off with native
    ``decompose=False``), else one monolithic model."""
    if own_option(options, "decompose", True) and can_decompose(instance):
        return solve_decomposed(instance, options, ctx, solve_model)
    return solve_monolithic(instance, options, ctx, solve_model)


def model_flags(options: SolveOptions) -> dict:
    """The formulation switches (native options ``symmetry`` and ``triangles``, both on by default)."""
    return {"symmetry": bool(own_option(options, "symmetry", True)),
            "triangles": bool(own_option(options, "triangles", True))}


def solve_decomposed(instance: Instance, options: SolveOptions, ctx: SolveContext, solve_model: SolveModel) -> Outcome:
    parts = parts_of(instance)
    flags = model_flags(options)
    curves = [Curve(p) for p in parts]
    warm, seed_stats = start_labels(instance, options, ctx)
    if warm is not None:
        for cv in curves:
            cv.offer(restrict(warm, cv.part))
    budget = instance.budget
    type_params = [p.max_param for p in parts] if budget.max_params is not None else None
    n_solves = 0
    stats: dict = {"method": "decomposition", "types": len(parts), "subsolves": 0, "seed": seed_stats}

    def lower_dp():
        return allocate([cv.lo for cv in curves], [~_exact_mask(cv) for cv in curves], budget.max_classes,
                        type_params, budget.max_params)

    def upper_dp():
        zeros = [np.zeros(cv.part.cap + 1, dtype=np.int64) for cv in curves]
        return allocate([cv.hi for cv in curves], zeros, budget.max_classes, type_params, budget.max_params)

    def offer_incumbent():
        val, ks = upper_dp()
        if ks is not None:
            ctx.offer(global_labels(parts, [cv.sol[k] for cv, k in zip(curves, ks)], len(instance.nodes)))

    offer_incumbent()
    # round 0: each type at its full cap (often all that is needed); later rounds: what the lower DP picks
    todo = [(t, cv.part.cap) for t, cv in enumerate(curves) if not cv.exact(cv.part.cap)]
    stopped_early = interrupted = False
    while True:
        for pos, (t, k) in enumerate(todo):
            if ctx.expired():
                stopped_early = True
                break
            left = ctx.time_left()
            share = None if left is None else left / (len(todo) - pos)
            cv = curves[t]
            cv.given[k] = share
            model = Model((cv.part.with_cap(k),), k, None, **flags)
            hint = cv.hint(k)
            ans = solve_model(model, share, None if hint is None else [hint])
            n_solves += 1
            if ans.stats.get("triangles_truncated"):  # the optional cuts were cut short (time or MAX_TRIANGLES)
                stats.setdefault("cuts_truncated", []).append(
                    {"type": cv.part.type, "k": k, "reason": ans.stats["triangles_truncated"],
                     "triangles": ans.stats.get("triangles")})
            cv.record(k, ans)
            ctx.log(f"type {cv.part.type!r} k={k}: {ans.status}, [{cv.lo[k]:.6g}, {cv.hi[k]:.6g}]")
            offer_incumbent()
            if ans.interrupted:
                stopped_early = interrupted = True
                break
        if stopped_early:
            break
        lo_val, ks = lower_dp()
        if ks is None:
            break
        todo = []
        for t, k in enumerate(ks):
            cv = curves[t]
            if cv.exact(k):
                continue
            left = ctx.time_left()
            if k in cv.given and (cv.given[k] is None or left is None or left <= 1.2 * cv.given[k]):
                continue  # already had its chance and more time would not change much
            todo.append((t, k))
        if not todo or ctx.expired():
            stopped_early = bool(todo)
            break

    lo_val, lo_ks = lower_dp()
    hi_val, hi_ks = upper_dp()
    stats["subsolves"] = n_solves
    stats["curves"] = {cv.part.type: {"lo": _finite_list(cv.lo[1:]), "hi": _finite_list(cv.hi[1:])} for cv in curves}
    if lo_ks is None and not interrupted:  # every allocation proven infeasible
        return Outcome(Termination.INFEASIBLE, None, None, "no allocation of classes to types is feasible", stats)
    labels = None
    if hi_ks is not None:
        labels = global_labels(parts, [cv.sol[k] for cv, k in zip(curves, hi_ks)], len(instance.nodes))
        stats["classes_per_type_chosen"] = {cv.part.type: int(k) for cv, k in zip(curves, hi_ks)}
    if interrupted:
        return Outcome(Termination.INTERRUPTED, labels, lo_val if lo_ks is not None else None,
                       "interrupted by the user", stats)
    closed = hi_ks is not None and hi_val <= lo_val + 1e-9 * max(1.0, abs(hi_val))
    if closed:
        return Outcome(Termination.OPTIMAL, labels, min(lo_val, hi_val), "", stats)
    if stopped_early or ctx.expired() or ctx.deadline is not None:
        return Outcome(Termination.TIME_LIMIT, labels, lo_val, "", stats)
    return Outcome(Termination.COMPLETED, labels, lo_val, "a sub-solve ended without proof", stats)


def solve_monolithic(instance: Instance, options: SolveOptions, ctx: SolveContext, solve_model: SolveModel) -> Outcome:
    parts = parts_of(instance)
    model = Model(tuple(parts), instance.budget.max_classes, instance.budget.max_params, **model_flags(options))
    warm, seed_stats = start_labels(instance, options, ctx)
    hint = None
    if warm is not None:
        hint = [restrict(warm, p) for p in parts]
        if any(int(h.max()) + 1 > p.cap for h, p in zip(hint, parts) if len(h)):
            hint = None
    trivial = sum(p.trivial_bound for p in parts)
    stats = {"method": "monolithic", "types": len(parts), "seed": seed_stats}
    if ctx.expired():
        return Outcome(Termination.TIME_LIMIT, None, trivial, "time limit reached before the solve", stats)
    ans = solve_model(model, ctx.time_left(), hint)
    stats.update(ans.stats)
    labels = None
    if ans.labels is not None:
        labels = global_labels(parts, ans.labels, len(instance.nodes))
        if not evaluate(instance, labels).feasible:
            labels = None
    bound = max(ans.bound, trivial) if ans.bound != INF else INF
    if ans.interrupted:
        return Outcome(Termination.INTERRUPTED, labels, trivial, "interrupted by the user", stats)
    if ans.status == "infeasible":
        return Outcome(Termination.INFEASIBLE, None, None, "", stats)
    if ans.status == "optimal" and labels is not None:  # proven: the bound is the objective itself
        return Outcome(Termination.OPTIMAL, labels, model.objective(ans.labels), "", stats)
    term = Termination.TIME_LIMIT if ctx.deadline is not None else Termination.COMPLETED
    return Outcome(term, labels, bound if np.isfinite(bound) else None, "", stats)


EXACT_MODEL_SOLVERS = {"cpsat": "geoshare_opt.solvers.cpsat", "highs": "geoshare_opt.solvers.highs",
                       "pulp": "geoshare_opt.solvers.pulp_milp"}


def type_curve(block: TypeBlock | Part, ks: Sequence[int], solver: "str | SolveModel" = "cpsat", *,
               time_limit: float | None = None, symmetry: bool = True, triangles: bool = True,
               seed: int = 0, threads: int = 1, native: dict | None = None) -> list[dict]:
    """``f_t(k)`` for the given ``k`` of one type: one dict per k with ``k``, ``objective`` (best found, None if
    none), ``bound`` and ``optimal``/``infeasible`` flags, and the local ``labels``. ``time_limit`` is per point.
    ``solver`` is an exact backend name (cpsat, highs, pulp) or a ``SolveModel``. This is the
    compression-vs-damage trade-off curve of one type (for ``sweep``)."""
    part = block if isinstance(block, Part) else part_from_block(block)
    if isinstance(solver, str):
        import importlib
        if solver not in EXACT_MODEL_SOLVERS:
            from ..errors import InputError
            raise InputError(f"type_curve needs an exact solver ({', '.join(EXACT_MODEL_SOLVERS)}), got {solver!r}")
        options = SolveOptions(seed=seed, threads=threads, native=dict(native or {}))
        dummy = Instance.build([{"id": "n", "type": part.type}], [], 1)
        solver = importlib.import_module(EXACT_MODEL_SOLVERS[solver]).model_solver(options, SolveContext(dummy, options))
    solve_model = solver
    top = max(ks) if ks else 1
    cv = Curve(part.with_cap(max(top, 1)))
    out = []
    for k in sorted(set(ks), reverse=True):  # large k first: its solution often settles smaller k too
        if not cv.exact(k):
            hint = cv.hint(k)
            cv.record(k, solve_model(Model((cv.part.with_cap(k),), k, None, symmetry, triangles), time_limit,
                                     None if hint is None else [hint]))
        out.append({"k": k, "objective": None if not np.isfinite(cv.hi[k]) else float(cv.hi[k]),
                    "bound": float(cv.lo[k]) if np.isfinite(cv.lo[k]) else None,
                    "optimal": bool(cv.exact(k) and np.isfinite(cv.hi[k])),
                    "infeasible": bool(cv.lo[k] == INF), "labels": cv.sol[k]})
    return sorted(out, key=lambda d: d["k"])


def _exact_mask(cv: Curve) -> np.ndarray:
    return np.array([cv.exact(k) if k else True for k in range(cv.part.cap + 1)])


def _finite_list(a: np.ndarray) -> list:
    return [float(x) if np.isfinite(x) else None for x in a]
