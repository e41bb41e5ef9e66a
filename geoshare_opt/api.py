"""The public solve API: one driver for every backend. It times the run, catches Ctrl-C, recomputes the objective
with the checker, and builds the ``Result``. Nothing here prints."""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Mapping

import numpy as np

from .deferred_stop import ImportsFinishFirst
from .checker import canonical, check_result, evaluate, labels_from_assignment  # noqa: F401 (check_result: public here too)
from .errors import InputError, ResultError
from .instance import Instance
from .options import SolveOptions
from .result import Result, Status, Termination, compute_gap
from .solvers import Registry, default_registry
from .solvers.base import Outcome, SolveContext


def as_instance(instance: Instance | Mapping | str | os.PathLike) -> Instance:
    if isinstance(instance, Instance):
        return instance
    if isinstance(instance, Mapping):
        return Instance.from_dict(dict(instance))
    return Instance.load(instance)


def warm_start_labels(instance: Instance, warm: Any) -> np.ndarray | None:
    """Labels from a ``Result``, a result file path, a ``{node id: class}`` mapping or a label sequence."""
    if warm is None:
        return None
    if isinstance(warm, (str, os.PathLike)):
        warm = Result.load(warm)
    if isinstance(warm, Result):
        if not warm.assignment:
            raise ResultError("warm start result holds no assignment")
        warm = warm.assignment
    try:
        labels = labels_from_assignment(instance, warm)
    except ResultError as exc:
        raise ResultError(f"warm start does not fit the instance: {exc}") from None
    # backends index classes by label: hand them 0..k-1 whatever numbering the user's file used
    return canonical(labels)


def solve(instance: Instance | Mapping | str | os.PathLike, solver: str = "auto", *,
          time_limit: float | None = None, seed: int = 0, threads: int = 1, warm_start: Any = None,
          verbose: int = 0, native: Mapping[str, Any] | None = None, log: Callable[[str], None] | None = None,
          progress: Callable[[dict], None] | None = None, registry: Registry | None = None) -> Result:
    """Colour ``instance`` under its budget with backend ``solver``; return a checked ``Result``.

    Raises ``InputError`` subclasses for bad input or an unavailable solver. An infeasible budget is not an
    error: the result says ``termination="infeasible"`` (exact backends) or ``status="none"`` (heuristics).
    """
    inst = as_instance(instance)
    options = SolveOptions(time_limit=time_limit, seed=seed, threads=threads,
                           warm_start=warm_start_labels(inst, warm_start), verbose=verbose, native=dict(native or {}))
    backend_cls = (registry or default_registry).get(solver)
    result = run_backend(inst, backend_cls, options, log=log, progress=progress)
    if isinstance(instance, (str, os.PathLike)):
        result.instance_path = os.path.abspath(os.fspath(instance))
    return result


def run_backend(inst: Instance, backend_cls, options: SolveOptions, *, log=None, progress=None) -> Result:
    """Run one backend class under the driver's guarantees (used by ``solve`` and by chaining backends)."""
    ctx = SolveContext(inst, options, log=log, progress=progress)
    t0 = time.perf_counter()
    try:
        if not inst.nodes:    # nothing to colour: the empty assignment is optimal, whatever the backend
            outcome = Outcome(Termination.OPTIMAL, np.zeros(0, dtype=np.int64), 0.0, "the instance has no nodes")
        else:
            with ImportsFinishFirst():      # a first run imports and compiles: a Ctrl-C there waits for it
                outcome = backend_cls().run(inst, options, ctx)
    except KeyboardInterrupt:
        outcome = Outcome(Termination.INTERRUPTED, None, None, "interrupted by the user")
    except InputError:
        raise
    except Exception as exc:  # a backend failure becomes a result with termination "error", incumbent kept
        outcome = Outcome(Termination.ERROR, None, None, f"{type(exc).__name__}: {exc}")
    wall = time.perf_counter() - t0
    while True:
        try:
            return finish(inst, backend_cls, options, outcome, ctx, wall)
        except KeyboardInterrupt:
            # Ctrl-C during the checking: the backend's answer is already in hand and checking takes
            # milliseconds, so finish it (the run itself was not cut short: its termination stands)
            outcome.message = "; ".join(m for m in (outcome.message, "Ctrl-C while checking the answer") if m)


def finish(inst: Instance, backend_cls, options: SolveOptions, outcome: Outcome, ctx: SolveContext,
           wall: float) -> Result:
    """Check the backend's answer and assemble the result; never trust the backend's own numbers."""
    messages = [outcome.message] if outcome.message else []
    labels = outcome.labels
    termination = Termination(outcome.termination)
    ev = None
    if labels is not None:
        try:
            ev = evaluate(inst, np.asarray(labels, dtype=np.int64))
        except ResultError as exc:
            messages.append(f"backend returned an unusable assignment: {exc}")
            ev = None
        if ev is not None and not ev.feasible:
            messages.append(f"backend assignment rejected by the checker: {ev.violations[0]}")
            ev = None
    # the context may hold a better (or the only) feasible incumbent, e.g. after a time limit or Ctrl-C
    if ctx.best_labels is not None and (ev is None or ctx.best_objective < ev.objective - 1e-12 * max(1, abs(ev.objective))):
        labels, ev = ctx.best_labels, evaluate(inst, ctx.best_labels)
    bound = outcome.bound
    if bound is not None and not np.isfinite(bound):
        bound = None
    if termination == Termination.INFEASIBLE and ev is not None:
        messages.append("backend claimed infeasibility but a feasible assignment exists")
        termination = Termination.ERROR
    if ev is not None and bound is not None and bound > ev.objective + 1e-6 * max(1.0, abs(ev.objective)):
        messages.append(f"backend bound {bound:.10g} exceeds the checked objective {ev.objective:.10g}; bound dropped")
        bound = None
        if termination == Termination.OPTIMAL:
            termination = Termination.ERROR
    if termination == Termination.OPTIMAL:
        if ev is None:
            messages.append("backend claimed optimality without a feasible assignment")
            termination = Termination.ERROR
        elif bound is None:
            bound = ev.objective
    if termination == Termination.INFEASIBLE:
        bound = None

    assignment = None
    if ev is not None:
        lab = canonical(np.asarray(labels, dtype=np.int64))
        assignment = {n.id: int(c) for n, c in zip(inst.nodes, lab)}
    return Result(
        instance_sha256=inst.sha256,
        instance_name=inst.name,
        solver=backend_cls.name,
        solver_version=backend_cls.version(),
        termination=termination.value,
        status=Status.FEASIBLE.value if ev is not None else Status.NONE.value,
        objective=ev.objective if ev is not None else None,
        bound=bound,
        gap=compute_gap(ev.objective if ev is not None else None, bound),
        wall_time_s=round(wall, 6),
        assignment=assignment,
        options=options.to_dict(),
        n_classes=ev.n_classes if ev else None,
        classes_per_type=ev.classes_per_type if ev else None,
        stored_params=ev.stored_params if ev else None,
        objective_per_type=ev.objective_per_type if ev else None,
        message="; ".join(m for m in messages if m),
        stats=dict(outcome.stats),
    )
