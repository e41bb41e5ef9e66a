"""The assignment MILP of ``milp.py`` rebuilt with PuLP, so any solver PuLP drives can run it.

Native option ``solver``: ``"CBC"`` (default, bundled with PuLP), ``"HiGHS"`` (PuLP's highspy driver) or any other
name ``pulp.getSolver`` knows (GUROBI, CPLEX_PY, ... where installed). Every other native option is passed to that
solver's constructor. Bounds: PuLP has no portable way to read a MIP dual bound; CBC's is not exposed, so a
CBC run that stops early reports no bound (an optimal one reports its objective); with ``HiGHS`` the bound is read
from the highspy model PuLP keeps.
"""
from __future__ import annotations

import math
import shutil
import tempfile
import time
import warnings

import numpy as np

from ..errors import InputError
from ..instance import Instance
from ..options import SolveOptions
from .base import Backend, Outcome, SolveContext
from .budget import NO_CLOCK, BuildClock, BuildTimeout, refusal
from .curves import INF, Model, ModelAnswer
from .decompose import model_memory_limit, solve_exact, solver_native
from .interrupt import STOP_GRACE_S, child_processes, run_interruptible, terminate_new_children


# share of a sub-solve's time limit by which the optional rows must be PuLP rows (they cost more there than to build)
PULP_CUT_SHARE = 0.3
# seconds CBC may run past its time limit before it is stopped: it checks the limit only between phases (a dense
# 60-node model spent 1.4 s in its root LP after a 0.7 s limit); stopping at the limit rarely costs an answer
PULP_OVERRUN_S = 0.5


class PulpBackend(Backend):
    name = "pulp"
    summary = "the assignment MILP through PuLP (CBC by default; native solver=HiGHS or any PuLP solver)"
    exact = True
    gives_bound = True
    determinism = "deterministic"
    modules = ("pulp",)
    distributions = ("pulp",)

    def run(self, instance: Instance, options: SolveOptions, ctx: SolveContext) -> Outcome:
        return solve_exact(instance, options, ctx, model_solver(options, ctx))


def to_pulp(milp, name: str = "geoshare", optional_until: float | None = None, clock: BuildClock = NO_CLOCK):
    """``(LpProblem, variables)`` for a ``milp.Milp``: the same columns, rows and names. Optional rows (the
    triangle cuts) are left out once ``time.monotonic()`` passes ``optional_until``; ``milp.cuts`` then records
    how many were kept and ``truncated = "time"``. ``clock`` raises ``BuildTimeout`` past its deadline."""
    import pulp
    prob = pulp.LpProblem(name, pulp.LpMinimize)
    add = getattr(prob, "add_variable", None) or pulp.LpVariable  # PuLP >= 3.3 attaches variables to the model
    cols = [add(n, lowBound=float(lo), upBound=float(hi), cat=pulp.LpInteger if isint else pulp.LpContinuous)
            for n, lo, hi, isint in zip(milp.names, milp.lb, milp.ub, milp.integer)]
    prob += pulp.LpAffineExpression([(cols[j], float(c)) for j, c in enumerate(milp.cost) if c != 0]), "objective"
    A = milp.A
    optional = milp.optional if milp.optional is not None else np.zeros(milp.n_rows, dtype=bool)
    kept = skipped = 0
    for r in range(milp.n_rows):
        if optional[r]:  # a PuLP row costs ~20 us of Python: cuts only while time allows
            if skipped or (optional_until is not None and kept % 256 == 0 and time.monotonic() >= optional_until):
                skipped += 1
                continue
            kept += 1
        lo, hi = A.indptr[r], A.indptr[r + 1]
        clock.tick(int(hi - lo))
        expr = pulp.LpAffineExpression([(cols[j], float(a)) for j, a in zip(A.indices[lo:hi], A.data[lo:hi])])
        rlb, rub, rname = milp.row_lb[r], milp.row_ub[r], milp.row_names[r]
        if rlb == rub:
            prob += (expr == float(rub)), rname
        else:
            if math.isfinite(rub):
                prob += (expr <= float(rub)), rname + ("_ub" if math.isfinite(rlb) else "")
            if math.isfinite(rlb):
                prob += (expr >= float(rlb)), rname + ("_lb" if math.isfinite(rub) else "")
    if skipped:
        milp.cuts["triangles"] = kept // 3
        milp.cuts["truncated"] = "time"
    return prob, cols


def make_solver(options: SolveOptions, time_limit: float | None, warm: bool):
    import pulp
    native = solver_native(options)
    which = str(native.pop("solver", "CBC"))
    kwargs = {"msg": options.verbose > 0}
    if time_limit is not None:
        kwargs["timeLimit"] = max(float(time_limit), 1e-3)
    if options.threads > 1:
        kwargs["threads"] = options.threads
    if which.upper() in ("CBC", "PULP_CBC_CMD"):
        which = "PULP_CBC_CMD"
        kwargs["gapRel"] = 0.0
        kwargs["warmStart"] = warm
        if options.seed:
            kwargs["options"] = [f"randomCbcSeed {options.seed}"]
    elif which.upper() == "HIGHS":
        which = "HiGHS"
        kwargs["gapRel"] = 0.0
        kwargs["random_seed"] = options.seed
    kwargs.update(native)  # native options are applied last
    if which not in pulp.listSolvers():
        raise InputError(f"pulp: unknown solver {which!r}; PuLP knows {', '.join(pulp.listSolvers())}")
    if which not in pulp.listSolvers(onlyAvailable=True):
        raise InputError(f"pulp: solver {which!r} is not available on this machine")
    _check_native(which, native)
    try:
        with warnings.catch_warnings():  # PULP_CBC_CMD's PuLP-4 deprecation notice: it is still the bundled CBC
            warnings.simplefilter("ignore", DeprecationWarning)
            return pulp.getSolver(which, **kwargs)
    except TypeError as exc:
        raise InputError(f"pulp: bad option for {which}: {exc}") from None


def _check_native(which: str, native: dict) -> None:
    """PuLP files unknown keyword options away silently; name the wrong one instead. HiGHS options (passed to
    highspy's ``setOptionValue``) are checked against highspy itself."""
    import inspect
    import pulp
    cls = getattr(pulp, which)
    params = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    for key, value in native.items():
        if key in params:
            continue
        if which == "HiGHS":
            import highspy
            from .quiet import new_highs
            if new_highs().setOptionValue(key, value) == highspy.HighsStatus.kError:
                raise InputError(f"pulp: HiGHS cannot set option {key!r} to {value!r}")
        elif not takes_any or which == "PULP_CBC_CMD":
            raise InputError(f"pulp: unknown option {key!r} for {which}; it takes {', '.join(p for p in params if p != 'self')}")


def model_solver(options: SolveOptions, ctx: SolveContext):
    """A ``SolveModel`` for PuLP bound to the run's options (see curves.SolveModel)."""
    make_solver(options, None, False)  # bad native options fail now, even if no sub-solve ever runs
    memory_limit = model_memory_limit(options)

    def solve(model: Model, time_limit: float | None, hint):
        started = time.monotonic()
        why = refusal("pulp", model, time_limit, memory_limit)
        if why:
            return ModelAnswer("unknown", None, -INF, {"not_built": why})
        try:
            milp, prob, cols, start = build_problem(model, time_limit, started, hint)
        except BuildTimeout as exc:
            return ModelAnswer("unknown", None, -INF, {"not_built": f"pulp: {exc}"})
        built = {"build_s": round(time.monotonic() - started, 4), "triangles": milp.cuts["triangles"],
                 "triangles_truncated": milp.cuts["truncated"]}
        if time_limit is not None:  # building the model spends the same budget: the solver gets what is left
            time_limit -= time.monotonic() - started
            if time_limit <= 0:
                return ModelAnswer("unknown", None, -INF, {**built, "pulp_status": "no time left after building"})
        solver = make_solver(options, time_limit, start is not None)
        state, failure = run_solver(prob, solver, time_limit)
        stats = {"pulp_solver": solver.name, **built}
        if state == "killed":  # the solver was killed at its limit: nothing to read back
            return ModelAnswer("unknown", None, -INF, {**stats, "pulp_status": "killed at time limit"})
        if state == "interrupted":
            return ModelAnswer("unknown", None, -INF, stats, True)
        if failure is not None:
            raise failure
        return read_answer(prob, milp, cols, stats)

    return solve


def build_problem(model: Model, time_limit: float | None, started: float, hint):
    """``(milp, LpProblem, variables, start vector or None)``. Optional cuts only while time allows: generating
    them (CUT_SHARE of the limit), then turning them into PuLP rows (PULP_CUT_SHARE). Raises ``BuildTimeout`` at
    the time limit."""
    from .milp import build, cuts_until
    clock = BuildClock.for_limit(started, time_limit)
    milp = build(model, cut_deadline=cuts_until(started, time_limit), clock=clock)
    prob, cols = to_pulp(milp, optional_until=cuts_until(started, time_limit, PULP_CUT_SHARE), clock=clock)
    start = milp.start(hint) if hint is not None else None
    if start is not None:
        for var, value in zip(cols, start.tolist()):
            var.setInitialValue(value)
    return milp, prob, cols, start


def run_solver(prob, solver, time_limit: float | None) -> tuple[str, Exception | None]:
    """Run ``prob.solve(solver)`` in a worker thread: ``("done" | "killed" | "interrupted", failure)``.

    CBC does not check its timeLimit everywhere (e.g. a large root LP): a watchdog stops it ``PULP_OVERRUN_S`` past
    the limit. PuLP has no stop call: Ctrl-C terminates the solver process it started (CBC); an in-process solver
    (pulp.HiGHS) is given up on after STOP_GRACE_S and finishes alone at its time limit. PuLP's model and solution
    files go to a directory of our own, removed whatever happens: PuLP deletes them only after a solve that returns
    normally, not after a kill at the limit, Ctrl-C or SIGTERM."""
    import threading

    import pulp

    from .quiet import stdout_to_stderr
    failed: list[Exception] = []
    timed_out, solve_ended = threading.Event(), threading.Event()

    def run() -> None:
        try:
            prob.solve(solver)
        except pulp.PulpSolverError as exc:  # e.g. CBC killed by the same Ctrl-C
            failed.append(exc)

    before = child_processes()
    watchdog = None
    if time_limit is not None:

        def watch() -> None:
            if solve_ended.wait(time_limit + PULP_OVERRUN_S):
                return
            timed_out.set()
            # keep stopping new solver processes until the solve returns: PuLP may still be writing the model
            # file at the deadline and start CBC after it (a dense model once ran 170 s past a 1 s limit)
            while not solve_ended.is_set():
                terminate_new_children(before)
                solve_ended.wait(0.05)

        watchdog = threading.Thread(target=watch, name="geoshare-pulp-watchdog", daemon=True)
        watchdog.start()
    solver.tmpDir = tempfile.mkdtemp(prefix="geoshare-pulp-")
    try:
        with stdout_to_stderr():  # CBC's log (msg=True) and highspy's banner must not reach stdout
            interrupted = run_interruptible(run, lambda: terminate_new_children(before), grace=STOP_GRACE_S)
    finally:
        solve_ended.set()
        if watchdog is not None:
            watchdog.join()  # a watchdog still running would stop the next sub-solve's CBC
        shutil.rmtree(solver.tmpDir, ignore_errors=True)
    if interrupted:
        return "interrupted", None
    if timed_out.is_set():
        return "killed", None
    return "done", failed[0] if failed else None


def read_answer(prob, milp, cols, stats: dict) -> ModelAnswer:
    """The ``ModelAnswer`` of a solve that returned: status, labels, and the bound where the solver exposes one."""
    import pulp
    stats = {**stats, "pulp_status": pulp.LpStatus.get(prob.status, str(prob.status))}
    sol = prob.sol_status
    if sol == pulp.LpSolutionInfeasible or prob.status == pulp.LpStatusInfeasible:
        return ModelAnswer("infeasible", None, INF, stats)
    labels = None
    values = [v.varValue for v in cols]
    if sol in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible) and all(v is not None for v in values):
        labels = milp.labels(np.asarray(values, dtype=float))
    bound = -INF
    highs = getattr(prob, "solverModel", None)
    if highs is not None and hasattr(highs, "getInfo"):
        b = float(highs.getInfo().mip_dual_bound) / milp.scale
        bound = b if math.isfinite(b) else -INF
    if sol == pulp.LpSolutionOptimal and labels is not None:
        return ModelAnswer("optimal", labels, bound, stats)
    return ModelAnswer("feasible" if labels is not None else "unknown", labels, bound, stats)
