"""Solver comparison: run every (instance, solver, repeat) through ``geoshare_opt.solve`` and return flat rows.

The library function behind ``geoshare-opt compare`` and the benchmarks. Repeat ``r`` uses seed ``seed + r``.
Every row carries the checked objective, the bound, the gap, the time and why the run stopped; ``best`` marks the
rows holding the best objective on their instance (ties included) and ``best_bound`` is the largest proven bound
any solver reported on that instance, so a row's objective can be judged against every solver's proof.
"""
from __future__ import annotations

import itertools
import os
from typing import Any, Callable, Iterable, Mapping, Sequence

from .api import as_instance, solve
from .fanout import Cluster, run_jobs
from .instance import Instance
from .result import Result, compute_gap

COLUMNS = ("instance", "solver", "repeat", "seed", "termination", "status", "objective", "bound", "gap",
           "wall_time_s", "n_classes", "best", "best_bound", "instance_sha256", "solver_version", "message")

#: relative tolerance under which two objectives count as equal for the ``best`` marker
BEST_RTOL = 1e-9


def compare(instances: Sequence[Instance | str | os.PathLike | Mapping], solvers: Sequence[str], *,
            repeats: int = 1, time_limit: float | None = None, seed: int = 0, threads: int = 1,
            native: Mapping[str, Mapping[str, Any]] | None = None,
            on_result: Callable[[dict, Result], None] | None = None, registry=None,
            cluster: Cluster | None = None) -> list[dict]:
    """Run each solver ``repeats`` times on each instance; return one row per run (see ``COLUMNS``), in the order
    instance, solver, repeat.

    ``native`` maps a solver name to its native options. ``on_result(row, result)`` is called after every run, as
    it finishes (progress reporting, saving the full results); ``registry`` defaults to the package's. Bad input (an
    unknown solver, an unreadable instance) raises before anything runs. ``cluster``: run the (instance, solver,
    repeat) jobs as tasks on Dask (``fanout.Cluster``: local workers or a running scheduler) instead of one after
    another; the rows are the same (seeded single-thread backends give the same answers), a job whose task failed
    gets a row with termination ``error`` and the reason as its message. A run interrupted by Ctrl-C ends the
    comparison: the rows so far are returned, the last one with termination ``interrupted`` (on Dask, one such row
    for every job cut short).
    """
    from .errors import InputError
    from .options import MAX_SEED, check_seed
    if repeats < 1:
        raise InputError(f"repeats must be at least 1, got {repeats}")
    if check_seed(seed) + repeats - 1 > MAX_SEED:
        raise InputError(f"seed {seed} + {repeats - 1} (repeat r uses seed + r) exceeds {MAX_SEED} (2**31-1)")
    loaded = [(_label(src, i), as_instance(src)) for i, src in enumerate(instances)]
    from .solvers import default_registry
    for name in solvers:  # fail fast on an unknown or unavailable solver
        (registry or default_registry).get(name)
    plan = [(label, inst, name, r) for label, inst in loaded for name, r in itertools.product(solvers, range(repeats))]
    jobs = [(inst, name, time_limit, seed + r, threads, (native or {}).get(name), registry)
            for _, inst, name, r in plan]
    rows: dict[int, dict] = {}

    def finished(i: int, res: Result) -> bool:
        label, _, name, r = plan[i]
        rows[i] = row_of(label, name, r, seed + r, res)
        if on_result is not None:
            on_result(rows[i], res)
        return res.termination == "interrupted"     # Ctrl-C stops the comparison, not just the run it landed in

    outcome = run_jobs(solve_job, jobs, cluster, on_done=finished,
                       names=[f"{label}-{name}-{r}" for label, _, name, r in plan])
    for i, reason in sorted(outcome.failures.items()):
        finished(i, unfinished(plan[i][1], plan[i][2], "error", f"the run failed: {reason}"))
    if outcome.interrupted and cluster is not None:
        for i in range(len(plan)):
            if i not in rows:
                finished(i, unfinished(plan[i][1], plan[i][2], "interrupted", "cancelled by Ctrl-C / SIGTERM"))
    for inst in dict.fromkeys(id(inst) for _, inst in loaded):   # per instance given (two may share a label)
        mark_best(rows[i] for i in rows if id(plan[i][1]) == inst)
    return [rows[i] for i in sorted(rows)]


def solve_job(inst: Instance, solver: str, time_limit: float | None, seed: int, threads: int,
              native: Mapping[str, Any] | None, registry) -> Result:
    """One run of a comparison (a Dask task: module level, so that workers import it)."""
    return solve(inst, solver, time_limit=time_limit, seed=seed, threads=threads, native=native, registry=registry)


def unfinished(inst: Instance, solver: str, termination: str, message: str) -> Result:
    """The result of a run that produced none (its task failed, or was cancelled): no assignment."""
    return Result(instance_sha256=inst.sha256, solver=solver, solver_version="", termination=termination,
                  status="none", objective=None, bound=None, gap=None, wall_time_s=0.0, assignment=None,
                  instance_name=inst.name or "", message=message)


def row_of(label: str, solver: str, repeat: int, seed: int, res: Result) -> dict:
    """One row; ``solver`` is the name the run was asked for (a registry alias may differ from ``res.solver``)."""
    return {"instance": label, "solver": solver, "repeat": repeat, "seed": seed,
            "termination": res.termination, "status": res.status, "objective": res.objective, "bound": res.bound,
            "gap": res.gap, "wall_time_s": res.wall_time_s, "n_classes": res.n_classes, "best": False,
            "best_bound": None, "instance_sha256": res.instance_sha256, "solver_version": res.solver_version,
            "message": res.message}


def mark_best(rows: Iterable[dict]) -> None:
    """Set ``best`` and ``best_bound`` on the rows of one instance, in place."""
    rows = list(rows)
    objs = [r["objective"] for r in rows if r["objective"] is not None]
    bounds = [r["bound"] for r in rows if r["bound"] is not None]
    best = min(objs) if objs else None
    best_bound = max(bounds) if bounds else None
    for r in rows:
        r["best_bound"] = best_bound
        r["best"] = (best is not None and r["objective"] is not None
                     and r["objective"] <= best + BEST_RTOL * max(1.0, abs(best)))


def gap_to_best_bound(row: dict) -> float | None:
    """The gap of a row's objective to the best bound any solver proved on its instance."""
    return compute_gap(row["objective"], row["best_bound"])


def _label(src: Any, i: int) -> str:
    if isinstance(src, Instance):
        return src.name or f"instance{i}"
    if isinstance(src, Mapping):
        return str(src.get("name") or f"instance{i}")
    return os.path.basename(os.fspath(src))
