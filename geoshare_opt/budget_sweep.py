"""``sweep``: the optimal predicted damage for every budget, from one class per type up to no sharing.

It exploits the exact decomposition by type (formulations/decomposition.md, ``solvers/curves.py``): per type t the
optimum ``f_t(k)`` for every ``k = 1..cap_t`` (``cap_t`` = the type's size, or its per-type cap), solved from large k
down so that each sub-solve is warm-started from its neighbour's solution (the cheapest merge of two of its classes,
or single linkage or the greedy when better); every point starts with a proven lower bound from the lightest
spanning forest (``forest_bounds``), which settles points without a solve where a hint meets it; then
the DP over types (``curves.by_class_count`` and ``curves.param_front``: ``allocate``'s, run once for every budget)
combines the curves. Two frontiers come out of the same curves:

- ``rows``: for every total number of classes K (from one per type to no sharing) the best damage with at most K
  classes;
- ``frontier``: the Pareto front of stored parameters against damage, the compression-vs-damage trade-off: for every
  stored-parameter budget, the best damage (a step function of the budget).

Every row carries its colouring (labels in node order), the classes per type, stored parameters, compression
``1 − stored/original``, the damage (best found), a proven lower bound (the DP on the curves' lower values), whether
it is proven, and the sub-solve time behind it. Rows whose budget admits no colouring (hard edges need more classes)
are marked infeasible. The instance's own ``max_classes`` and ``max_params`` are what is swept, so they are ignored;
its per-type caps and hard edges are honoured.

When a type's members store different parameter counts the stored parameters of a colouring depend on more than its
class count; the parameter frontier is then computed with each class charged its type's largest member (an upper
bound on storage) and ``params_exact`` is false.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .checker import canonical, evaluate
from .errors import InputError
from .fanout import Cluster, failure_reason, run_chains
from .instance import Instance
from .options import SolveOptions, time_limit_or_none
from .result import compute_gap
from .solvers.base import SolveContext
from .solvers.curves import (INF, Curve, Model, ModelAnswer, Part, best_within, by_class_count, first_appearance,
                             global_labels, merge_down, param_front, part_greedy, part_instance, parts_of)
from .solvers.decompose import EXACT_MODEL_SOLVERS, exact_model_solver
from .solvers.disjoint_sets import DisjointSets

FORMAT = "geoshare-sweep"
VERSION = 1


@dataclass
class SweepResult:
    """The sweep's table. ``types``: the per-type curves; ``rows``: best damage per total class count;
    ``frontier``: the stored-parameter Pareto front. See the module docstring."""

    instance_sha256: str
    instance_name: str
    solver: str
    options: dict
    original_params: int
    types: list[dict]
    rows: list[dict]
    frontier: list[dict]
    params_exact: bool
    complete: bool                  # every point of every curve proven (so every row is proven)
    interrupted: bool
    wall_time_s: float
    notes: list[str] = field(default_factory=list)
    heuristics: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "instance_sha256": self.instance_sha256,
                "instance_name": self.instance_name, "solver": self.solver, "options": self.options,
                "original_params": self.original_params, "params_exact": self.params_exact,
                "complete": self.complete, "interrupted": self.interrupted, "wall_time_s": self.wall_time_s,
                "notes": list(self.notes), "types": self.types, "rows": self.rows, "frontier": self.frontier,
                "heuristics": self.heuristics}


# ---------------------------------------------------------------------- sub-solvers
def model_solver(solver: str, options: SolveOptions, instance: Instance) -> Callable:
    """A ``SolveModel`` for one type at a time: an exact backend's own (colgen, cpsat, highs, pulp), or any registered
    backend run on the type alone as a one-type instance (heuristics give no bound: their points stay unproven)."""
    if solver in EXACT_MODEL_SOLVERS:
        return exact_model_solver(solver, options, ctx=SolveContext(instance, options))
    from .api import run_backend
    from .solvers import get_backend
    backend_cls = get_backend(solver)

    def solve(model: Model, time_limit: float | None, hint) -> ModelAnswer:
        part = model.parts[0]
        sub = part_instance(part, model.max_classes)
        warm = None if hint is None else np.asarray(hint[0], dtype=np.int64)
        opts = SolveOptions(time_limit=time_limit, seed=options.seed, threads=options.threads, warm_start=warm,
                            native=dict(options.native))
        res = run_backend(sub, backend_cls, opts)
        labels = None
        if res.feasible:
            labels = [np.array([res.assignment[str(i)] for i in range(part.n)], dtype=np.int64)]
        status = {"optimal": "optimal", "infeasible": "infeasible"}.get(res.termination,
                                                                         "feasible" if labels else "unknown")
        if res.termination == "error":
            raise InputError(f"sweep: {solver} failed on type {part.type!r}: {res.message}")
        bound = res.bound if res.bound is not None else -INF
        return ModelAnswer(status, labels, bound, {}, res.termination == "interrupted")

    return solve


# ---------------------------------------------------------------------- warm starts between neighbours
# ---------------------------------------------------------------------- the spanning-forest bound
FOREST_MAX_NODES = 2000     # the bound looks at every pair of a type


def lightest_forest(part: Part) -> list[tuple[int, int, float]] | None:
    """Kruskal on the type's pairs that may share (hard pairs excluded), weighted ``max(w, 0)`` (pairs without an
    edge weigh 0): the accepted edges in order, so that the first m of them are a lightest forest with m edges
    (matroid greedy). None for types too large to look at every pair."""
    n = part.n
    if n > FOREST_MAX_NODES:
        return None
    W = np.zeros((n, n))
    W[part.soft_u, part.soft_v] = np.maximum(part.soft_w, 0.0)
    W[part.hard_u, part.hard_v] = INF
    iu, ju = np.triu_indices(n, 1)
    w = W[iu, ju]
    order = np.argsort(w, kind="stable")
    sets = DisjointSets(n)
    out = []
    for e in order.tolist():
        if not np.isfinite(w[e]) or len(out) == n - 1:
            break
        if sets.union(int(iu[e]), int(ju[e])):
            out.append((int(iu[e]), int(ju[e]), float(w[e])))
    return out


def forest_bounds(part: Part, forest: list | None) -> np.ndarray:
    """A lower bound on ``f(k)``, k = 0..cap (index 0 unused): the sum of the type's negative weights plus the
    lightest forest with n − k edges on ``max(w, 0)``. Why: a class of s members holds a spanning tree (s − 1 of its
    pairs), the classes' trees form a forest with n − k edges, and every pair inside a class weighs at least its
    ``min(w, 0)`` part plus its ``max(w, 0)`` part. Infinite where no such forest exists: the pairs that may share
    then leave more than k groups, so k classes are infeasible."""
    out = np.full(part.cap + 1, part.trivial_bound)
    if forest is None:
        return out
    prefix = np.concatenate([[0.0], np.cumsum([w for _, _, w in forest])])
    for k in range(1, part.cap + 1):
        m = part.n - k
        out[k] = INF if m > len(forest) else part.trivial_bound + prefix[m]
    return out


def linkage_labels(part: Part, forest: list | None, k: int) -> np.ndarray | None:
    """Single-linkage clustering: the components of the forest's first n − k edges (None if that breaks a hard
    edge or the forest is too short)."""
    if forest is None or part.n - k > len(forest) or k < 1:
        return None
    sets = DisjointSets(part.n)
    for a, b, _ in forest[:part.n - k]:
        sets.union(a, b)
    labels = first_appearance(np.array(sets.roots(), dtype=np.int64))
    return labels if part.feasible(labels, k) else None


def _best_hint(cv: Curve, k: int, forest: list | None = None) -> np.ndarray | None:
    """The best feasible labelling known for ``k`` classes: the curve's own, the neighbour's merged, single linkage,
    the greedy."""
    part = cv.part
    candidates = [cv.sol[k], linkage_labels(part, forest, k)]
    if k + 1 < len(cv.sol) and cv.sol[k + 1] is not None:
        candidates.append(merge_down(part, cv.sol[k + 1], k))
    candidates.append(part_greedy(part, k))
    best, best_val = None, INF
    for c in candidates:
        if c is not None and part.feasible(c, k):
            val = part.objective(c)
            if val < best_val:
                best, best_val = c, val
    return best


# ---------------------------------------------------------------------- the curves
def _curve_points(cv: Curve, times: dict[int, float]) -> list[dict]:
    return [{**point, "time_s": round(times.get(point["k"], 0.0), 4)} for point in cv.points()]


def sweep(instance: Instance | Mapping | str, solver: str = "cpsat", *, time_limit: float | None = None,
          time_limit_per_solve: float | None = None, seed: int = 0, threads: int = 1,
          native: Mapping[str, Any] | None = None, class_cost=None,
          progress: Callable[[dict], None] | None = None, cluster: Cluster | None = None) -> SweepResult:
    """The optimal damage of ``instance`` for every budget (see the module docstring).

    ``solver``: an exact backend (``colgen``, ``cpsat``, ``highs``, ``pulp``: proven points) or any registered
    backend (points unproven unless it proves them). ``time_limit`` bounds the whole sweep, ``time_limit_per_solve`` each sub-solve;
    points left unsolved keep the greedy / merged value and the best bound known, and their rows say they are not
    proven. ``class_cost``: a ``classcost.ClassCost`` to add each row's true class cost. ``progress`` receives
    ``{"event": "point", "type", "k", "done", "total", "status"}`` after every point of the first pass (and
    ``"event": "refine"`` in the second pass over unproven points under a time limit). Ctrl-C stops the sweep and
    returns what is known (``interrupted`` true). ``cluster`` (``fanout.Cluster``): every point's sub-solve is a Dask
    task that waits for its neighbour's (the warm start), so the types' curves fill side by side and give the serial
    sweep's answers; with ``time_limit`` each type shares the time left among its own points (see
    docs/distributed.md)."""
    from .api import as_instance
    inst = as_instance(instance)
    if not inst.nodes:
        raise InputError(f"instance {inst.name!r} has no nodes: there is no budget to sweep")
    options = SolveOptions(time_limit=time_limit, seed=seed, threads=threads, native=dict(native or {}))
    time_limit = options.time_limit                        # checked; inf or >= 1e9 s means none
    time_limit_per_solve = time_limit_or_none(time_limit_per_solve, "time limit per solve")
    started = time.perf_counter()
    deadline = None if time_limit is None else time.monotonic() + time_limit
    flags = {"symmetry": bool(options.native.get("symmetry", True)),
             "triangles": bool(options.native.get("triangles", True))}
    solve_model = model_solver(solver, options, inst)    # bad options fail here, before any task is sent
    per_type_cap = inst.budget.max_classes_per_type
    parts = [p.with_cap(min(p.n, per_type_cap.get(p.type, p.n))) for p in parts_of(inst)]
    curves, forests = _bounded_curves(parts)
    notes: list[str] = []
    if cluster is None:
        times, interrupted = _fill_curves(curves, forests, solve_model, flags, deadline, time_limit_per_solve,
                                          progress)
    else:
        job = PointJob(inst, solver, options, flags, None if time_limit is None else time.time() + time_limit,
                       time_limit_per_solve)
        curves, times, interrupted, notes = _fill_curves_as_tasks(cluster, curves, forests, job, progress)
    settings = {"time_limit": time_limit, "time_limit_per_solve": time_limit_per_solve, "seed": seed,
                "threads": threads, "native": dict(options.native)}
    return _sweep_result(inst, solver, settings, curves, times, interrupted, class_cost, started, notes)


def _bounded_curves(parts: Sequence[Part]) -> tuple[list[Curve], list]:
    """A curve per part starting from the spanning-forest bounds (points they prove infeasible are settled), and
    each part's forest."""
    curves = [Curve(p) for p in parts]
    forests = [lightest_forest(p) for p in parts]
    for cv, forest in zip(curves, forests):
        for k, b in enumerate(forest_bounds(cv.part, forest)):
            if k:
                cv.raise_lo(k, b)
                if b == INF:
                    cv.proven[1:k + 1] = True
    return curves, forests


def _fill_curves(curves: Sequence[Curve], forests, solve_model, flags: dict, deadline: float | None,
                 time_limit_per_solve: float | None, progress) -> tuple[list[dict[int, float]], bool]:
    """Every point of every curve from its best hint, large k first and the types side by side (k = 5 of every
    type before any k = 4): the points of few classes are the hard ones (large classes: the weakest pricing
    bounds), so they come last and share what the easy ones leave. A point not settled by its hint is solved with
    an equal share of the time left. Under a time limit, the time the first pass leaves then goes to the points
    still unproven, in equal shares again; a backend that keeps its search between calls (colgen) resumes it there.
    Returns the sub-solve time per point and whether Ctrl-C stopped it."""
    times: list[dict[int, float]] = [{} for _ in curves]
    total_points = sum(cv.part.cap for cv in curves)
    pending = sorted(((t, k) for t, cv in enumerate(curves) for k in range(cv.part.cap, 0, -1)),
                     key=lambda point: (-point[1], point[0]))
    for pos, (t, k) in enumerate(pending):
        cv = curves[t]
        hint = _offer_hint(cv, forests[t], k)
        interrupted, status = False, "settled"
        if not cv.exact(k):
            unsettled = sum(1 for tt, kk in pending[pos:] if not curves[tt].exact(kk))
            status, interrupted = _solve_in_share(cv, k, hint, unsettled, solve_model, flags, deadline,
                                                  time_limit_per_solve, times[t])
        if progress is not None:
            progress({"event": "point", "type": cv.part.type, "k": k, "done": pos + 1, "total": total_points,
                      "status": status})
        if interrupted:
            return times, True
    if deadline is None:
        return times, False
    again = [(t, k) for t, k in pending if not curves[t].exact(k) and time_limit_per_solve is None]
    for pos, (t, k) in enumerate(again):
        cv = curves[t]
        status, interrupted = _solve_in_share(cv, k, _best_hint(cv, k, forests[t]), len(again) - pos, solve_model,
                                              flags, deadline, None, times[t])
        if progress is not None:
            progress({"event": "refine", "type": cv.part.type, "k": k, "done": pos + 1, "total": len(again),
                      "status": status})
        if interrupted:
            return times, True
    return times, False


def _solve_in_share(cv: Curve, k: int, hint, unsettled: int, solve_model, flags: dict, deadline: float | None,
                    time_limit_per_solve: float | None, times: dict[int, float]) -> tuple[str, bool]:
    """Point ``k`` solved with ``1 / unsettled`` of the time left (at most ``time_limit_per_solve``), its seconds
    added to ``times``; (status, whether Ctrl-C stopped it)."""
    left = None if deadline is None else max(0.0, deadline - time.monotonic())
    if left is not None and left <= 0:
        return "skipped (time limit)", False
    limit = _min_limit(time_limit_per_solve, None if left is None else left / max(unsettled, 1))
    status, interrupted, seconds = _solve_point(cv, k, solve_model, flags, limit, hint)
    times[k] = times.get(k, 0.0) + seconds
    return status, interrupted


def _offer_hint(cv: Curve, forest, k: int) -> np.ndarray | None:
    """The best warm start for point ``k`` (its neighbour's solution merged down, single linkage or the greedy),
    offered to the curve (it may settle the point against the bound)."""
    hint = _best_hint(cv, k, forest)
    if hint is not None:
        cv.offer(hint)
    return hint


def _solve_point(cv: Curve, k: int, solve_model, flags: dict, limit: float | None,
                 hint: np.ndarray | None) -> tuple[str, bool, float]:
    """One sub-solve: the type alone with at most ``k`` classes, recorded on the curve. (status, whether Ctrl-C
    stopped it, seconds)."""
    t0 = time.perf_counter()
    try:
        ans = solve_model(Model((cv.part.with_cap(k),), k, None, **flags), limit, None if hint is None else [hint])
    except KeyboardInterrupt:
        ans = ModelAnswer("unknown", None, -INF, {}, True)
    cv.record(k, ans)
    return ans.status, ans.interrupted, time.perf_counter() - t0


# ---------------------------------------------------------------------- the points as Dask tasks
@dataclass
class PointJob:
    """What every point task of a distributed sweep shares (``deadline``: wall-clock epoch seconds, comparable
    across machines, or None)."""
    instance: Instance
    solver: str
    options: SolveOptions
    flags: dict
    deadline: float | None
    time_limit_per_solve: float | None


@dataclass
class TypeCurve:
    """One type's curve as its points are filled, handed from a point's task to the next one's."""
    curve: Curve
    forest: list | None
    times: dict[int, float] = field(default_factory=dict)
    status: str = ""                 # what the last point's task did
    interrupted: bool = False


def sweep_point(state: TypeCurve, k: int, job: PointJob) -> TypeCurve:
    """Point ``k`` of one type's curve (a Dask task): the same steps as the serial loop, the time left shared
    among this type's own unsettled points."""
    cv = state.curve
    hint = _offer_hint(cv, state.forest, k)
    state.status = "settled"
    if cv.exact(k):
        return state
    left = None if job.deadline is None else max(0.0, job.deadline - time.time())
    if left is not None and left <= 0:
        state.status = "skipped (time limit)"
        return state
    unsettled = sum(1 for kk in range(k, 0, -1) if not cv.exact(kk))
    limit = _min_limit(job.time_limit_per_solve, None if left is None else left / max(unsettled, 1))
    solve_model = model_solver(job.solver, job.options, job.instance)
    state.status, state.interrupted, state.times[k] = _solve_point(cv, k, solve_model, job.flags, limit, hint)
    return state


def _fill_curves_as_tasks(cluster: Cluster, curves: Sequence[Curve], forests, job: PointJob, progress):
    """Every point a task, each type's points a chain (large k first); (curves, times, interrupted, notes)."""
    total = sum(cv.part.cap for cv in curves)
    done = [0]

    def finished(t: int, _step: int, state: TypeCurve) -> None:
        done[0] += 1
        if progress is not None:
            k = curves[t].part.cap - _step
            progress({"event": "point", "type": curves[t].part.type, "k": k, "done": done[0], "total": total,
                      "status": state.status})

    chains = [(TypeCurve(cv, forest), [(k, job) for k in range(cv.part.cap, 0, -1)])
              for cv, forest in zip(curves, forests)]
    out = run_chains(sweep_point, chains, cluster, on_done=finished,
                     names=[f"sweep-{cv.part.type}" for cv in curves])
    notes = []
    for t, (step, exc) in sorted(out.failures.items()):
        if isinstance(exc, InputError):          # a backend's bad-input failure is the serial sweep's error too
            raise exc
        k = curves[t].part.cap - step
        notes.append(f"type {curves[t].part.type}: the points k = {k}..1 were not solved: {failure_reason(exc)}")
    states = out.states
    interrupted = out.interrupted or any(st.interrupted for st in states)
    return [st.curve for st in states], [st.times for st in states], interrupted, notes


def _sweep_result(inst: Instance, solver: str, settings: dict, curves: Sequence[Curve], times, interrupted: bool,
                  class_cost, started: float, notes: Sequence[str] = ()) -> SweepResult:
    """The table: rows per class count, the parameter frontier, the curves, and notes on what they assume
    (``started``: ``time.perf_counter()`` at the start of the sweep)."""
    parts = [cv.part for cv in curves]
    original = int(inst.params.sum())
    params_exact = all(p.uniform_params for p in parts)
    type_params = [p.max_param for p in parts]
    rows = _class_rows(inst, parts, curves, times, original, class_cost)
    frontier = _param_rows(inst, parts, curves, times, original, type_params, class_cost)
    complete = all(cv.exact(k) for cv in curves for k in range(1, cv.part.cap + 1))
    notes = list(notes)
    if not params_exact:
        notes.append("a type mixes parameter counts: the parameter frontier charges every class its type's largest "
                     "member (storage upper bound); stored_params in each row is the colouring's real storage")
    if inst.budget.max_classes_per_type:
        notes.append("per-type caps of the instance are honoured: the last row is the most classes they allow")
    types = [{"type": p.type, "n": p.n, "cap": p.cap, "params": p.max_param, "points": _curve_points(cv, tm)}
             for p, cv, tm in zip(parts, curves, times)]
    return SweepResult(inst.sha256, inst.name, solver, settings, original, types, rows, frontier, params_exact,
                       complete, interrupted, round(time.perf_counter() - started, 4), notes)


def _min_limit(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


# ---------------------------------------------------------------------- rows
def _row(inst: Instance, parts: Sequence[Part], curves: Sequence[Curve], times, original: int, ks_hi, lo_val,
         budget: dict, class_cost) -> dict:
    row: dict[str, Any] = {"budget": budget}
    if not ks_hi:
        # no colouring known: proven infeasible when the lower DP finds no allocation either, else unknown
        row.update({"feasible": False, "infeasible": lo_val is None, "classes_per_type": None,
                    "n_classes": None, "stored_params": None, "compression": None, "damage": None,
                    "bound": None if lo_val is None else float(lo_val), "gap": None, "proven": lo_val is None,
                    "time_s": None, "labels": None})
        if class_cost is not None:
            row["true_cost"] = None
        return row
    labels = canonical(global_labels(parts, [cv.sol[k] for cv, k in zip(curves, ks_hi)], len(inst.nodes)))
    ev = evaluate(_unbounded(inst), labels)
    damage = float(ev.objective)
    bound = float(lo_val) if lo_val is not None and np.isfinite(lo_val) else None
    if bound is not None and bound > damage:
        bound = damage                  # rounding between the DP's sums and the checker's
    proven = bound is not None and damage <= bound + 1e-9 * max(1.0, abs(damage))
    row.update({"feasible": True, "infeasible": False,
                "classes_per_type": {cv.part.type: len(np.unique(cv.sol[k])) for cv, k in zip(curves, ks_hi)},
                "n_classes": int(ev.n_classes), "stored_params": int(ev.stored_params),
                "compression": 1.0 - ev.stored_params / original if original else 0.0,
                "damage": damage, "bound": bound, "gap": compute_gap(damage, bound), "proven": bool(proven),
                "time_s": round(sum(times[t].get(k, 0.0) for t, k in enumerate(ks_hi)), 4),
                "labels": labels.tolist()})
    if class_cost is not None:
        row["true_cost"] = class_cost(labels)
    return row


def _unbounded(inst: Instance) -> Instance:
    """The instance with its class and parameter budgets lifted (per-type caps kept): rows are checked for hard
    edges and caps, not for the budget being swept."""
    return inst.with_budget(max_classes=max(1, len(inst.nodes)), keep_caps=False,
                            max_classes_per_type=inst.budget.max_classes_per_type or None)


def _class_rows(inst, parts, curves, times, original, class_cost) -> list[dict]:
    """Best damage with at most K classes for every K; the bound is the same on the lower values."""
    upper = by_class_count([cv.hi for cv in curves])
    lower = by_class_count([cv.lo for cv in curves])
    rows = []
    for K in range(len(parts), sum(p.cap for p in parts) + 1):
        ks_hi = best_within(upper, K)
        lo = best_within(lower, K)
        rows.append(_row(inst, parts, curves, times, original, ks_hi and list(ks_hi[1]),
                         None if lo is None else lo[0], {"max_classes": K}, class_cost))
    return rows


def _param_rows(inst, parts, curves, times, original, type_params, class_cost) -> list[dict]:
    """The Pareto front (stored params, damage) over every allocation of class counts, by a DP over types; each
    point's bound is the same front computed on the lower values, read at the point's stored parameters."""
    upper = param_front([cv.hi for cv in curves], type_params)
    lower = param_front([cv.lo for cv in curves], type_params)
    rows = []
    for par, _, ks in upper:
        below = [val for p, val, _ in lower if p <= par]     # lower is sorted by params, values decreasing
        rows.append(_row(inst, parts, curves, times, original, list(ks), below[-1] if below else None,
                         {"max_params": int(par)}, class_cost))
    return rows


# ---------------------------------------------------------------------- heuristics on the same axes
def heuristic_points(instance: Instance, kinds: Sequence[str], seeds: Sequence[int] = (0,), class_cost=None
                     ) -> list[dict]:
    """Every heuristic colouring (``baselines.KINDS``) at every class count it supports (the same N for every type,
    N = 1 .. largest type; ``all`` and ``none`` have one each; ``random`` once per seed), scored like the sweep's
    rows: damage, stored params, compression, and the true cost when ``class_cost`` is given. Colourings that break
    a hard edge or a per-type cap are kept with ``feasible`` false."""
    from .baselines import KINDS, colouring
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InputError(f"unknown heuristic {unknown[0]!r}; choose among: {', '.join(KINDS)}")
    free = _unbounded(instance)
    original = int(instance.params.sum())
    largest = max((len(instance.type_members(t)) for t in instance.types), default=0)
    out = []
    for kind in kinds:
        counts = [None] if kind in ("all", "none") else range(1, largest + 1)
        for n in counts:
            for seed in (seeds if kind == "random" else (0,)):
                labels = colouring(instance, kind, classes=n, seed=seed)
                ev = evaluate(free, labels)
                row = {"kind": kind, "classes": n, "seed": seed if kind == "random" else None,
                       "feasible": bool(ev.feasible), "n_classes": int(ev.n_classes),
                       "stored_params": int(ev.stored_params),
                       "compression": 1.0 - ev.stored_params / original if original else 0.0,
                       "damage": float(ev.objective)}
                if class_cost is not None:
                    row["true_cost"] = class_cost(labels)
                out.append(row)
    return out


def best_at(frontier: Sequence[dict], stored_params: int) -> dict | None:
    """The frontier row for a budget of ``stored_params`` (the last row storing no more; None if none does)."""
    best = None
    for r in frontier:
        if r["stored_params"] is not None and r["stored_params"] <= stored_params:
            if best is None or r["damage"] < best["damage"]:
                best = r
    return best

