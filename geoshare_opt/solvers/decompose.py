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

import importlib
import time
from dataclasses import replace
from typing import Sequence

import numpy as np

from ..checker import evaluate
from ..errors import InputError
from ..instance import Instance
from ..options import SolveOptions
from ..result import Termination
from .base import Outcome, SolveContext
from .curves import INF, Curve, Model, Part, SolveModel, allocate, global_labels, parts_of, restrict


# native options read here, never passed on to the solver library
OWN_OPTIONS = ("decompose", "symmetry", "triangles", "hint", "seed_heuristic", "max_model_gb")


def own_option(options: SolveOptions, key: str, default: bool) -> bool:
    """One of ``OWN_OPTIONS`` (all true/false switches); any other value is bad input, not silently truthy."""
    value = options.native.get(key, default)
    if not isinstance(value, bool):
        raise InputError(f"native option {key} must be true or false, got {value!r}")
    return value


def model_memory_limit(options: SolveOptions) -> float | None:
    """Bytes one exact model may take to build (native ``max_model_gb``; default: budget.MEMORY_SHARE of the
    memory available)."""
    gb = options.native.get("max_model_gb")
    if gb is None:
        return None
    if isinstance(gb, bool) or not isinstance(gb, (int, float)) or not gb > 0:
        raise InputError(f"native option max_model_gb must be a positive number of gigabytes, got {gb!r}")
    return float(gb) * 2 ** 30


def not_built_note(notes: list[str]) -> str:
    """The result message when models were refused or cut short (budget.refusal, BuildTimeout)."""
    if not notes:
        return ""
    more = f" (and {len(notes) - 1} more sub-model(s))" if len(notes) > 1 else ""
    return f"{notes[0]}{more}; the best assignment found without it is kept"


def solver_native(options: SolveOptions) -> dict:
    """The native options meant for the solver library itself."""
    return {k: v for k, v in options.native.items() if k not in OWN_OPTIONS}


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


# ---------------------------------------------------------------------------------------------- drivers
def can_decompose(instance: Instance) -> bool:
    """Exact unless a parameter cap meets a type whose members store different parameter counts."""
    if instance.budget.max_params is None:
        return True
    return all(p.uniform_params for p in parts_of(instance))


def solve_exact(instance: Instance, options: SolveOptions, ctx: SolveContext, solve_model: SolveModel,
                full_curves: bool = False) -> Outcome:
    """The entry point of every exact backend: decomposition where exact (and not switched off with native
    ``decompose=False``), else one monolithic model. ``full_curves``: see ``solve_decomposed``."""
    if own_option(options, "decompose", True) and can_decompose(instance):
        return solve_decomposed(instance, options, ctx, solve_model, full_curves)
    return solve_monolithic(instance, options, ctx, solve_model)


def model_flags(options: SolveOptions) -> dict:
    """The formulation switches (native options ``symmetry`` and ``triangles``, both on by default)."""
    return {"symmetry": bool(own_option(options, "symmetry", True)),
            "triangles": bool(own_option(options, "triangles", True))}


def solve_decomposed(instance: Instance, options: SolveOptions, ctx: SolveContext, solve_model: SolveModel,
                     full_curves: bool = False) -> Outcome:
    """The lazy curves (module docstring): round 0 solves every type at its full cap; each later round solves the
    points the lower DP picks that are not exact yet, until the DP's choice is proven, time runs out or Ctrl-C.
    With ``full_curves`` round 0 solves every k of every type from its cap down: for a backend whose sub-solves of
    one type share one model (colgen), the large k are cheap and warm the small ones, where the DP on trivial
    bounds would climb from k = 1."""
    dec = _Decomposition(instance, options, ctx, solve_model)
    todo = [(t, cv.part.cap) for t, cv in enumerate(dec.curves) if not cv.exact(cv.part.cap)]
    if full_curves:
        todo = [(t, k) for t, cv in enumerate(dec.curves) for k in range(cv.part.cap, 0, -1)]
    while True:
        stopped_early, interrupted = dec.solve_points(todo)
        if stopped_early:
            break
        _, ks = dec.lower_dp()
        if ks is None:
            break
        todo = dec.points_to_refine(ks)
        if not todo or ctx.expired():
            stopped_early = bool(todo)
            break
    return dec.outcome(stopped_early, interrupted)


class _Decomposition:
    """The curves of one decomposed solve, the DPs over them and the sub-solves that refine them."""

    def __init__(self, instance: Instance, options: SolveOptions, ctx: SolveContext, solve_model: SolveModel):
        self.instance, self.ctx, self.solve_model = instance, ctx, solve_model
        self.parts = parts_of(instance)
        self.flags = model_flags(options)
        self.curves = [Curve(p) for p in self.parts]
        warm, seed_stats = start_labels(instance, options, ctx)
        if warm is not None:
            for cv in self.curves:
                cv.offer(restrict(warm, cv.part))
        budget = instance.budget
        self.type_params = [p.max_param for p in self.parts] if budget.max_params is not None else None
        self.stats: dict = {"method": "decomposition", "types": len(self.parts), "subsolves": 0, "seed": seed_stats}
        self.offer_incumbent()

    def lower_dp(self):
        """The DP on the curves' lower values (ties: fewest points not yet exact): a proven bound."""
        b = self.instance.budget
        return allocate([cv.lo for cv in self.curves], [~cv.exact_mask() for cv in self.curves], b.max_classes,
                        self.type_params, b.max_params)

    def upper_dp(self):
        """The DP on the incumbents' values: the best assignment found so far."""
        b = self.instance.budget
        zeros = [np.zeros(cv.part.cap + 1, dtype=np.int64) for cv in self.curves]
        return allocate([cv.hi for cv in self.curves], zeros, b.max_classes, self.type_params, b.max_params)

    def labels_for(self, ks) -> np.ndarray:
        return global_labels(self.parts, [cv.sol[k] for cv, k in zip(self.curves, ks)], len(self.instance.nodes))

    def offer_incumbent(self) -> None:
        _, ks = self.upper_dp()
        if ks is not None:
            self.ctx.offer(self.labels_for(ks))

    def solve_points(self, todo: list[tuple[int, int]]) -> tuple[bool, bool]:
        """Solve each (type, k) of ``todo`` with an equal share of the time left; (stopped early, interrupted)."""
        ctx = self.ctx
        for pos, (t, k) in enumerate(todo):
            cv = self.curves[t]
            if cv.exact(k):             # settled by an earlier answer (a flat stretch of the curve)
                continue
            if ctx.expired():
                return True, False
            left = ctx.time_left()
            share = None if left is None else left / (len(todo) - pos)
            cv.given[k] = share
            hint = cv.hint(k)
            ans = self.solve_model(Model((cv.part.with_cap(k),), k, None, **self.flags), share,
                                   None if hint is None else [hint])
            self.stats["subsolves"] += 1
            if ans.stats.get("triangles_truncated"):  # the optional cuts were cut short (time or MAX_TRIANGLES)
                self.stats.setdefault("cuts_truncated", []).append(
                    {"type": cv.part.type, "k": k, "reason": ans.stats["triangles_truncated"],
                     "triangles": ans.stats.get("triangles")})
            cv.record(k, ans)
            if ans.stats.get("not_built"):
                self.stats.setdefault("not_built", []).append(ans.stats["not_built"])
            ctx.log(f"type {cv.part.type!r} k={k}: {ans.status}, [{cv.lo[k]:.6g}, {cv.hi[k]:.6g}]")
            self.offer_incumbent()
            if ans.interrupted:
                return True, True
        return False, False

    def points_to_refine(self, ks) -> list[tuple[int, int]]:
        """The points of the lower DP's choice ``ks`` that are not exact and where more time could still help."""
        todo = []
        for t, k in enumerate(ks):
            cv = self.curves[t]
            if cv.exact(k):
                continue
            left = self.ctx.time_left()
            if k in cv.given and (cv.given[k] is None or left is None or left <= 1.2 * cv.given[k]):
                continue  # already had its chance and more time would not change much
            todo.append((t, k))
        return todo

    def outcome(self, stopped_early: bool, interrupted: bool) -> Outcome:
        ctx, stats = self.ctx, self.stats
        lo_val, lo_ks = self.lower_dp()
        hi_val, hi_ks = self.upper_dp()
        stats["curves"] = {cv.part.type: {"lo": _finite_list(cv.lo[1:]), "hi": _finite_list(cv.hi[1:])}
                           for cv in self.curves}
        if lo_ks is None and not interrupted:  # every allocation proven infeasible
            return Outcome(Termination.INFEASIBLE, None, None, "no allocation of classes to types is feasible", stats)
        labels = None
        if hi_ks is not None:
            labels = self.labels_for(hi_ks)
            stats["classes_per_type_chosen"] = {cv.part.type: int(k) for cv, k in zip(self.curves, hi_ks)}
        if interrupted:
            return Outcome(Termination.INTERRUPTED, labels, lo_val if lo_ks is not None else None,
                           "interrupted by the user", stats)
        if hi_ks is not None and hi_val <= lo_val + 1e-9 * max(1.0, abs(hi_val)):
            return Outcome(Termination.OPTIMAL, labels, min(lo_val, hi_val), "", stats)
        note = not_built_note(stats.get("not_built", []))
        if stopped_early or ctx.expired() or ctx.deadline is not None:
            return Outcome(Termination.TIME_LIMIT, labels, lo_val, note, stats)
        return Outcome(Termination.COMPLETED, labels, lo_val, note or "a sub-solve ended without proof", stats)


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
    note = not_built_note([ans.stats["not_built"]] if ans.stats.get("not_built") else [])
    return Outcome(term, labels, bound if np.isfinite(bound) else None, note, stats)


EXACT_MODEL_SOLVERS = {"cpsat": "geoshare_opt.solvers.cpsat", "highs": "geoshare_opt.solvers.highs",
                       "pulp": "geoshare_opt.solvers.pulp_milp", "colgen": "geoshare_opt.solvers.colgen"}


def type_curve(part: Part, ks: Sequence[int], solver: "str | SolveModel" = "cpsat", *,
               time_limit: float | None = None, symmetry: bool = True, triangles: bool = True,
               seed: int = 0, threads: int = 1, native: dict | None = None) -> list[dict]:
    """``f_t(k)`` for the given ``k`` of one type: one dict per k with ``k``, ``objective`` (best found, None if
    none), ``bound`` and ``optimal``/``infeasible`` flags, and the local ``labels``. ``time_limit`` is per point.
    ``solver`` is an exact backend name (cpsat, highs, pulp) or a ``SolveModel``. This is the
    compression-vs-damage trade-off curve of one type (for ``sweep``)."""
    solve_model = exact_model_solver(solver, SolveOptions(seed=seed, threads=threads, native=dict(native or {})),
                                     part.type) if isinstance(solver, str) else solver
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


def exact_model_solver(solver: str, options: SolveOptions, type_name: str = "n",
                       ctx: SolveContext | None = None) -> SolveModel:
    """The ``SolveModel`` of exact backend ``solver`` (cpsat, highs, pulp) bound to ``options``; InputError for
    any other name."""
    if solver not in EXACT_MODEL_SOLVERS:
        raise InputError(f"type_curve needs an exact solver ({', '.join(EXACT_MODEL_SOLVERS)}), got {solver!r}")
    if ctx is None:
        ctx = SolveContext(Instance.build([{"id": "n", "type": type_name}], [], 1), options)
    return importlib.import_module(EXACT_MODEL_SOLVERS[solver]).model_solver(options, ctx)


def _finite_list(a: np.ndarray) -> list:
    return [float(x) if np.isfinite(x) else None for x in a]
