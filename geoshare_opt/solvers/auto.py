"""``auto`` (the default): chain the backends by size — greedy warm start → annealing → exact proof.

Stages, all sharing one incumbent (every feasible state a stage finds is offered to the caller's context):
1. ``dsatur`` greedy (milliseconds), the anneal's start;
2. ``anneal`` (simulated annealing + TabuCol);
3. an exact backend with the best labels as a complete hint, only when a proof is in reach: ``colgen`` on instances
   with non-negative weights and no hard edges whose types have at most ``COLGEN_MAX_TYPE_NODES`` nodes (it proves every budget
   of 24-layer types in seconds), else ``cpsat`` when every type has at most ``EXACT_MAX_TYPE_NODES`` nodes
   (``exact_solver_for``; benchmarks/solvers/colgen/crossover.md). Its termination (optimal / infeasible /
   time_limit) and bound become the result's.

Time: with a limit T, annealing gets ``ANNEAL_SHARE`` of T when the exact stage will run (the rest goes to the
proof), else all of T. Without a limit ``auto`` is reproducible and still stops on its own: annealing runs its
default move budget (about a second), and each CP-SAT sub-solve of the exact stage at most
``DEFAULT_EXACT_WORK`` units of CP-SAT's deterministic time (a count of work, not seconds of this machine), colgen
``DEFAULT_COLGEN_WORK`` units of its work budget; another ``exact_solver`` gets ``DEFAULT_EXACT_LIMIT`` seconds
instead. Native options: ``exact`` (bool, force the exact stage on/off), ``anneal`` / ``cpsat`` / ``colgen`` (dicts
passed to that stage's native options; any other exact backend reads the dict under its own name), ``exact_solver``
(another exact backend name, default ``exact_solver_for(instance)``). ``stats["stages"]`` records what ran. The exact
stage runs with native ``seed_heuristic=False``: stages 1-2 already are the greedy + anneal start the exact backends
would otherwise compute for themselves (decompose.start_labels).
"""
from __future__ import annotations

import time
from dataclasses import replace

from ..errors import InputError, SolverUnavailableError
from ..instance import Instance
from ..options import SolveOptions
from ..result import Termination
from .base import Backend, Outcome, SolveContext

EXACT_MAX_TYPE_NODES = 40
# colgen, the exact stage for non-negative weights without hard edges, proves the whole curve of 24-layer types in
# seconds and most of it at 48 (benchmarks/solvers/colgen/README.md, crossover.md)
COLGEN_MAX_TYPE_NODES = 48
ANNEAL_SHARE = 0.3
DEFAULT_EXACT_LIMIT = 20.0
DEFAULT_EXACT_WORK = 10.0    # CP-SAT ``max_deterministic_time`` per sub-solve when no time limit is given
DEFAULT_COLGEN_WORK = 5e9    # colgen ``work_limit`` for the whole run when no time limit is given (about 20-40 s)
_NATIVE = {"exact", "anneal", "cpsat", "colgen", "exact_solver"}


def _stage(ctx: SolveContext, instance: Instance, backend_cls, options: SolveOptions) -> tuple[Outcome, float]:
    """Run one backend under its own deadline, forwarding its incumbents to the parent context."""
    child = SolveContext(instance, options, log=ctx.log, progress=ctx.progress)
    t0 = time.perf_counter()
    try:
        out = backend_cls().run(instance, options, child)
    finally:
        if child.best_labels is not None:
            ctx.offer(child.best_labels)
    if out.labels is not None:
        ctx.offer(out.labels)
    return out, time.perf_counter() - t0


def exact_solver_for(instance: Instance) -> str:
    """The default exact stage: colgen where the set-partitioning model is strong (non-negative soft weights, no
    hard edges, a decomposition by type: the curvature instances), cpsat otherwise. Measured in
    benchmarks/solvers/colgen/crossover.md: hard edges make it a colouring problem, whose fractional bound CP-SAT
    beats; with signed weights that cancel, the set-partitioning LP bound is weak and CP-SAT proves dense types of
    24-32 nodes that colgen does not; coupled types go to CP-SAT anyway."""
    from .decompose import can_decompose
    _, _, w, hard = instance.edge_arrays
    signed = bool((w[~hard] < 0).any())
    return "colgen" if not hard.any() and not signed and can_decompose(instance) else "cpsat"


class AutoBackend(Backend):
    name = "auto"
    summary = "greedy -> annealing -> colgen or CP-SAT proof when small enough (the default)"
    exact = False          # exact only when its last stage proves optimality (termination says so)
    gives_bound = True
    determinism = "seeded with threads=1"
    modules = ("numba",)
    distributions = ("numba", "ortools")

    def run(self, instance: Instance, options: SolveOptions, ctx: SolveContext) -> Outcome:
        from . import get_backend
        from .anneal import AnnealBackend
        from .dsatur import DsaturBackend

        native = dict(options.native)
        unknown = set(native) - _NATIVE
        if unknown:
            raise InputError(f"auto: unknown native option {sorted(unknown)[0]!r} (known: {', '.join(sorted(_NATIVE))})")
        for stage in ("anneal", "cpsat", "colgen"):
            if not isinstance(native.get(stage, {}), dict):
                raise InputError(f"auto: native option {stage} must be an object of that stage's options, e.g. "
                                 f"{stage}='{{\"key\": value}}', got {native[stage]!r}")
        largest = max((len(instance.type_members(t)) for t in instance.types), default=0)
        default_exact = exact_solver_for(instance)
        want_exact = bool(native.get("exact", largest <= (COLGEN_MAX_TYPE_NODES if default_exact == "colgen"
                                                           else EXACT_MAX_TYPE_NODES)))
        exact_cls, exact_note = None, ""
        if want_exact:
            try:
                exact_cls = get_backend(str(native.get("exact_solver", default_exact)))
            except SolverUnavailableError as exc:
                exact_note = f"exact stage skipped: {exc}"
        stages: list[dict] = []
        stats: dict = {"stages": stages}
        if exact_note:
            stats["note"] = exact_note

        def record(name, out, wall):
            stages.append({"solver": name, "termination": Termination(out.termination).value,
                           "feasible": out.labels is not None, "wall_s": round(wall, 4),
                           "objective": ctx.best_objective if ctx.best_labels is not None else None})

        base = replace(options, native={})
        # 1. greedy
        out, wall = _stage(ctx, instance, DsaturBackend, replace(base, time_limit=ctx.time_left()))
        record("dsatur", out, wall)
        if ctx.expired():
            return self._finish(ctx, Termination.TIME_LIMIT, None, stats)
        # 2. annealing (from the greedy, or the user's warm start)
        left = ctx.time_left()
        a_limit = None if left is None else (left * ANNEAL_SHARE if exact_cls else left)
        warm = options.warm_start if options.warm_start is not None else ctx.best_labels
        a_native = dict(native.get("anneal", {}))
        if exact_cls is not None:
            # the proof is what matters on small instances: do not let a hopeless colouring search eat its time
            a_native.setdefault("tabu_iters", max(200_000, 2000 * len(instance.nodes)))
        a_opts = replace(base, time_limit=a_limit, warm_start=warm, native=a_native)
        out, wall = _stage(ctx, instance, AnnealBackend, a_opts)
        record("anneal", out, wall)
        termination = Termination(out.termination)
        if termination == Termination.TIME_LIMIT and exact_cls is None:
            return self._finish(ctx, Termination.TIME_LIMIT, None, stats)
        if exact_cls is None:
            return self._finish(ctx, Termination.COMPLETED, None, stats)
        # 3. exact proof with the incumbent as hint
        left = ctx.time_left()
        e_native = dict(native.get(exact_cls.name, {}))
        e_native.setdefault("seed_heuristic", False)  # stages 1-2 were that seed: do not pay twice
        e_limit = left
        if left is None and exact_cls.name == "cpsat":   # a work budget: the same answer on any machine
            e_native.setdefault("max_deterministic_time", DEFAULT_EXACT_WORK)
        elif left is None and exact_cls.name == "colgen":
            e_native.setdefault("work_limit", DEFAULT_COLGEN_WORK)
        elif left is None:
            e_limit = DEFAULT_EXACT_LIMIT
        if e_limit is not None and e_limit <= 0:
            return self._finish(ctx, Termination.TIME_LIMIT, None, stats)
        e_opts = replace(base, time_limit=e_limit, warm_start=ctx.best_labels, native=e_native)
        out, wall = _stage(ctx, instance, exact_cls, e_opts)
        record(exact_cls.name, out, wall)
        term = Termination(out.termination)
        if term == Termination.INFEASIBLE and ctx.best_labels is not None:
            # cannot both hold; the driver would flag it, keep the incumbent and say what happened
            return self._finish(ctx, Termination.ERROR, None, stats, "exact stage claimed infeasible but a feasible "
                                                                      "assignment was found")
        if term == Termination.TIME_LIMIT and left is None:
            term = Termination.COMPLETED  # our own default cap on the proof, not the user's limit
        return self._finish(ctx, term, out.bound, stats, out.message)

    @staticmethod
    def _finish(ctx: SolveContext, term: Termination, bound, stats, message: str = "") -> Outcome:
        return Outcome(term, None if ctx.best_labels is None else ctx.best_labels.copy(), bound, message, stats)
