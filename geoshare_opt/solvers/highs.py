"""HiGHS through highspy: the assignment MILP of ``milp.py``, per type where the decomposition is exact."""
from __future__ import annotations

import math
import time

import numpy as np

from ..errors import InputError
from ..instance import Instance
from ..options import SolveOptions, check_threads
from .base import Backend, Outcome, SolveContext
from .budget import BuildClock, BuildTimeout, refusal
from .curves import INF, Model, ModelAnswer
from .decompose import model_memory_limit, solve_exact, solver_native
from .interrupt import STOP_GRACE_S, run_interruptible
from .quiet import new_highs, run_highs, stdout_to_stderr


class HighsBackend(Backend):
    name = "highs"
    summary = "HiGHS branch-and-cut on the assignment MILP (exact per-type decomposition, symmetry breaking)"
    exact = True
    gives_bound = True
    determinism = "deterministic"
    modules = ("highspy",)
    distributions = ("highspy",)

    def run(self, instance: Instance, options: SolveOptions, ctx: SolveContext) -> Outcome:
        return solve_exact(instance, options, ctx, model_solver(options, ctx))


def model_solver(options: SolveOptions, ctx: SolveContext):
    """A ``SolveModel`` for HiGHS bound to the run's options (see curves.SolveModel)."""
    import highspy
    from .milp import build, cuts_until, to_highs
    native = solver_native(options)

    def configure(h, time_limit: float | None) -> None:
        settings = {"mip_rel_gap": 0.0, "random_seed": options.seed, "threads": options.threads,
                    "output_flag": options.verbose > 0, "log_to_console": options.verbose > 0}
        if time_limit is not None:
            settings["time_limit"] = max(float(time_limit), 1e-3)
        settings.update(native)  # native options are applied last
        if "threads" in native:   # HiGHS aborts the whole process on absurd counts (10**6)
            check_threads(native["threads"], "native option threads")
        for key, value in settings.items():
            try:
                status = h.setOptionValue(key, value)
            except (TypeError, ValueError, OverflowError):   # a value of no type HiGHS takes (a list, an object)
                status = highspy.HighsStatus.kError
            if status == highspy.HighsStatus.kError:
                raise InputError(f"highs: cannot set option {key!r} to {value!r}")

    configure(new_highs(), None)  # bad native options fail now, even if no sub-solve ever runs
    memory_limit = model_memory_limit(options)

    def solve(model: Model, time_limit: float | None, hint):
        started = time.monotonic()
        why = refusal("highs", model, time_limit, memory_limit)
        if why:
            return ModelAnswer("unknown", None, -INF, {"not_built": why})
        try:
            milp = build(model, cut_deadline=cuts_until(started, time_limit),
                         clock=BuildClock.for_limit(started, time_limit))
        except BuildTimeout as exc:
            return ModelAnswer("unknown", None, -INF, {"not_built": f"highs: {exc}"})
        h = new_highs()
        to_highs(milp, h)
        built = {"build_s": round(time.monotonic() - started, 4), "triangles": milp.cuts["triangles"],
                 "triangles_truncated": milp.cuts["truncated"]}
        if time_limit is not None:  # building the model spends the same budget: HiGHS gets what is left
            time_limit -= time.monotonic() - started
            if time_limit <= 0:
                return ModelAnswer("unknown", None, -INF, {**built, "highs_status": "no time left after building"})
        configure(h, time_limit)
        if hint is not None:
            start = milp.start(hint)
            if start is not None:
                sol = highspy.HighsSolution()
                sol.col_value = start.tolist()
                sol.value_valid = True
                h.setSolution(sol)
        h.HandleUserInterrupt = True  # lets cancelSolve stop a running solve
        finished = []
        with stdout_to_stderr():  # the log (verbose only) belongs on stderr
            interrupted = run_interruptible(lambda: finished.append(run_highs(h)), h.cancelSolve, grace=STOP_GRACE_S)
        if not finished:  # HiGHS did not react in time (e.g. inside presolve): leave it to its time limit
            return ModelAnswer("unknown", None, -INF, built, True)
        status = h.getModelStatus()
        info = h.getInfo()
        M = highspy.HighsModelStatus
        stats = {"highs_status": h.modelStatusToString(status), "mip_nodes": int(info.mip_node_count), **built}
        if interrupted:
            labels = milp.labels(np.asarray(h.getSolution().col_value)) if info.primal_solution_status == 2 else None
            return ModelAnswer("feasible" if labels is not None else "unknown", labels, -INF, stats, True)
        if status in (M.kInfeasible, M.kUnboundedOrInfeasible):
            return ModelAnswer("infeasible", None, INF, stats)  # every column is bounded: not unbounded
        labels = None
        if info.primal_solution_status == 2:  # kSolutionStatusFeasible
            labels = milp.labels(np.asarray(h.getSolution().col_value))
        bound = float(info.mip_dual_bound) / milp.scale
        if not math.isfinite(bound):
            bound = -INF
        if status == M.kOptimal and labels is not None:
            return ModelAnswer("optimal", labels, bound, stats)
        return ModelAnswer("feasible" if labels is not None else "unknown", labels, bound, stats)

    return solve
