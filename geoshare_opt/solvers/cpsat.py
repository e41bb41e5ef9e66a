"""OR-Tools CP-SAT on the Boolean assignment model (formulations/cpsat.md), per type where the decomposition is
exact, with colour-symmetry breaking and a complete hint (the greedy + anneal start of decompose.start_labels)."""
from __future__ import annotations

import math
import time

import numpy as np

from ..errors import InputError
from ..instance import Instance
from ..options import SolveOptions, check_threads
from .base import Backend, Outcome, SolveContext
from .budget import NO_CLOCK, BuildClock, BuildTimeout, refusal
from .curves import INF, Model, ModelAnswer, first_appearance
from .decompose import model_memory_limit, solve_exact, solver_native
from .interrupt import STOP_GRACE_S, run_interruptible
from .milp import cuts_until, limited_triangles


class CpSatBackend(Backend):
    name = "cpsat"
    summary = "OR-Tools CP-SAT on the Boolean assignment model (exact per-type decomposition, symmetry breaking, hints)"
    exact = True
    gives_bound = True
    determinism = "seeded with threads=1"
    modules = ("ortools",)
    distributions = ("ortools",)

    def run(self, instance: Instance, options: SolveOptions, ctx: SolveContext) -> Outcome:
        # solve_exact offers the heuristic start (greedy, short anneal) before the first CP-SAT call
        return solve_exact(instance, options, ctx, model_solver(options, ctx))


def weight_scale(w: np.ndarray) -> float:
    """CP-SAT needs integer objective coefficients. Integer weights are used as they are; otherwise a power of two
    makes the largest |w| about 2^30 while keeping the sum of |w| under 2^50 (no int64 overflow anywhere). The
    rounding error is carried into the reported bound (``bound_from``), so the bound stays valid."""
    if len(w) == 0:
        return 1.0
    a = np.abs(w)
    if np.all(w == np.round(w)) and a.sum() < 2.0 ** 50:
        return 1.0
    e = min(30 - math.log2(a.max()), 50 - math.log2(a.sum()))
    return 2.0 ** math.floor(e)


class _Built:
    """The CP-SAT model of a ``Model`` and the variables needed to hint it and read it back."""

    def __init__(self, model: Model, cut_deadline: float | None = None, clock: BuildClock = NO_CLOCK):
        from ortools.sat.python import cp_model
        self.model = model
        m = self.m = cp_model.CpModel()
        self.x: list[list[dict[int, object]]] = []
        self.y: list[list[object]] = []
        self.z: list[list[object] | None] = []
        self.s: list[list[object] | None] = []
        all_w = np.concatenate([p.soft_w for p in model.parts]) if model.parts else np.zeros(0)
        self.scale = weight_scale(all_w)
        self.round_err = float(np.abs(all_w * self.scale - np.round(all_w * self.scale)).sum())
        with_z = model.needs_class_count or model.max_params is not None
        obj_terms, z_all, param_terms = [], [], []
        self.cuts = {"triangles": 0, "truncated": None}  # optional rows: none generated after cut_deadline
        for t, p in enumerate(model.parts):
            C = p.cap
            x = [{c: m.new_bool_var(f"x_{t}_{i}_{c}") for c in range(min(C, i + 1) if model.symmetry else C)}
                 for i in range(p.n)]
            self.x.append(x)
            for i in range(p.n):
                m.add_exactly_one(x[i].values())
            for a, b in zip(p.hard_u.tolist(), p.hard_v.tolist()):
                clock.tick(2 * C)
                for c in x[a].keys() & x[b].keys():
                    m.add_bool_or([~x[a][c], ~x[b][c]])
            ys = self._soft_edges(t, p, x, obj_terms, clock)
            self.y.append(ys)
            if model.triangles:  # transitivity of "same class", as linear rows so that CP-SAT's LP sees them
                for a, b, c, ab, bc, ac in limited_triangles(p, cut_deadline, self.cuts):
                    m.add(ys[ab] + ys[bc] - ys[ac] <= 1)
                    m.add(ys[ab] - ys[bc] + ys[ac] <= 1)
                    m.add(-ys[ab] + ys[bc] + ys[ac] <= 1)
            if model.symmetry:  # canonical labels: i in class c >= 1 needs an earlier node in class c - 1
                for i in range(p.n):
                    clock.tick(len(x[i]) * i)
                    for c in x[i]:
                        if c >= 1:
                            m.add_bool_or([~x[i][c]] + [x[j][c - 1] for j in range(c - 1, i)])
            zs = ss = None
            if with_z:
                zs = [m.new_bool_var(f"z_{t}_{c}") for c in range(C)]
                for c in range(C):
                    members = [x[i][c] for i in range(p.n) if c in x[i]]
                    for xi in members:
                        m.add_implication(xi, zs[c])
                    m.add_bool_or([~zs[c]] + members)  # z exactly "class used": no free choice left to search
                z_all.extend(zs)
                if model.max_params is not None:
                    if p.uniform_params:
                        param_terms.extend((z, p.max_param) for z in zs)
                    else:
                        ss = [m.new_int_var(0, p.max_param, f"s_{t}_{c}") for c in range(C)]
                        for c in range(C):
                            for i in range(p.n):
                                if c in x[i] and p.params[i] > 0:
                                    m.add(ss[c] >= int(p.params[i])).only_enforce_if(x[i][c])
                        param_terms.extend((sv, 1) for sv in ss)
            self.z.append(zs)
            self.s.append(ss)
        if with_z and model.needs_class_count:
            m.add(sum(z_all) <= model.max_classes)
        if model.max_params is not None and param_terms:
            m.add(sum(c * v for v, c in param_terms) <= model.max_params)
        terms = [(y, c) for y, c in obj_terms if c != 0]
        if terms:
            m.minimize(sum(c * y for y, c in terms))

    def _soft_edges(self, t: int, p, x: list[dict[int, object]], obj_terms: list, clock: BuildClock) -> list:
        """One Boolean ``y`` per soft edge of part ``p`` (both ends in one class), its clauses and objective term."""
        m, ys = self.m, []
        for e, (a, b, w) in enumerate(zip(p.soft_u.tolist(), p.soft_v.tolist(), p.soft_w.tolist())):
            clock.tick(3 * p.cap)
            y = m.new_bool_var(f"y_{t}_{e}")
            ys.append(y)
            for c in x[a].keys() | x[b].keys():
                xa, xb = x[a].get(c), x[b].get(c)
                if w > 0:  # both in c forces y
                    if xa is not None and xb is not None:
                        m.add_bool_or([~xa, ~xb, y])
                else:      # y needs a shared class: y and a in c imply b in c, and the other way round
                    if xa is not None:
                        m.add_bool_or([~y, ~xa] + ([xb] if xb is not None else []))
                    if xb is not None:
                        m.add_bool_or([~y, ~xb] + ([xa] if xa is not None else []))
            obj_terms.append((y, int(round(w * self.scale))))
        return ys

    def hint(self, labels: list[np.ndarray]) -> bool:
        """A complete hint (every variable) from a feasible labelling; False if it does not fit the slots."""
        labels = [first_appearance(lab) for lab in labels]
        for p, lab, x in zip(self.model.parts, labels, self.x):
            if any(int(c) not in x[i] for i, c in enumerate(lab.tolist())):
                return False
        m = self.m
        for p, lab, x, ys, zs, ss in zip(self.model.parts, labels, self.x, self.y, self.z, self.s):
            for i, c in enumerate(lab.tolist()):
                for cc, var in x[i].items():
                    m.add_hint(var, cc == c)
            same = lab[p.soft_u] == lab[p.soft_v]
            for y, v in zip(ys, same.tolist()):
                m.add_hint(y, v)
            if zs is not None:
                used = set(lab.tolist())
                for c, z in enumerate(zs):
                    m.add_hint(z, c in used)
            if ss is not None:
                stored = np.zeros(p.cap, dtype=np.int64)
                np.maximum.at(stored, lab, p.params)
                for c, sv in enumerate(ss):
                    m.add_hint(sv, int(stored[c]))
        return True

    def labels(self, solver) -> list[np.ndarray]:
        out = []
        for x in self.x:
            out.append(np.array([next(c for c, v in xi.items() if solver.boolean_value(v)) for xi in x],
                                dtype=np.int64))
        return out

    def bound_from(self, scaled_bound: float) -> float:
        """A valid lower bound on the true (unscaled) objective from CP-SAT's bound on the rounded one."""
        if not math.isfinite(scaled_bound):
            return -INF
        return (scaled_bound - self.round_err) / self.scale


def model_solver(options: SolveOptions, ctx: SolveContext):
    """A ``SolveModel`` for CP-SAT bound to the run's options (see curves.SolveModel)."""
    native = solver_native(options)

    def configure(solver, time_limit: float | None) -> None:
        prm = solver.parameters
        if "num_search_workers" not in native:  # CP-SAT rejects both set; the older name must keep working
            prm.num_workers = options.threads
        prm.catch_sigint_signal = False  # Ctrl-C is handled by run_interruptible (CP-SAT's own handler hides it)
        prm.random_seed = options.seed
        prm.log_search_progress = options.verbose > 1
        prm.log_to_stdout = False        # stdout carries the result: the log reaches stderr through ctx.log
        # the LP relaxation with every clause linearised is what proves dense signed instances (measured on the
        # benchmark's single-type n=20, k=4 instance with triangle rows: level 1 no proof in 60 s, level 2 in 6 s);
        # native options can override it
        prm.linearization_level = 2
        if time_limit is not None:
            prm.max_time_in_seconds = max(float(time_limit), 1e-3)
        for key, value in native.items():  # native options are applied last
            if key in ("num_workers", "num_search_workers") and value != 0:   # 0: CP-SAT chooses. One OS thread
                check_threads(value, f"native option {key}")                   # each: 10**5 swamp a machine
            try:
                setattr(prm, key, value)
            except (AttributeError, TypeError, ValueError) as exc:
                raise InputError(f"cpsat: cannot set parameter {key!r} to {value!r}: {exc}") from None

    from ortools.sat.python import cp_model
    configure(cp_model.CpSolver(), None)  # bad native options fail now, even if no sub-solve ever runs
    memory_limit = model_memory_limit(options)

    def solve(model: Model, time_limit: float | None, hint):
        started = time.monotonic()
        why = refusal("cpsat", model, time_limit, memory_limit)
        if why:
            return ModelAnswer("unknown", None, -INF, {"not_built": why})
        try:
            built = _Built(model, cuts_until(started, time_limit), BuildClock.for_limit(started, time_limit))
        except BuildTimeout as exc:
            return ModelAnswer("unknown", None, -INF, {"not_built": f"cpsat: {exc}"})
        if hint is not None:
            built.hint(hint)
        build = {"build_s": round(time.monotonic() - started, 4), "triangles": built.cuts["triangles"],
                 "triangles_truncated": built.cuts["truncated"]}
        if time_limit is not None:  # building the model spends the same budget: CP-SAT gets what is left
            time_limit -= time.monotonic() - started
            if time_limit <= 0:
                return ModelAnswer("unknown", None, -INF, {**build, "cpsat_status": "no time left after building"})
        solver = cp_model.CpSolver()
        configure(solver, time_limit)
        if options.verbose > 1:
            solver.log_callback = ctx.log
        outcome = []
        interrupted = run_interruptible(lambda: outcome.append(solver.solve(built.m)), solver.stop_search,
                                        grace=STOP_GRACE_S)
        if not outcome:  # the stop did not land within the grace period: leave the solver to its time limit
            return ModelAnswer("unknown", None, -INF, build, True)
        status = outcome[0]
        stats = {"cpsat_status": solver.status_name(status), "branches": int(solver.num_branches), **build}
        if interrupted:  # whatever status CP-SAT gives after a stop, nothing was proven
            labels = built.labels(solver) if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) else None
            return ModelAnswer("feasible" if labels is not None else "unknown", labels, -INF, stats, True)
        if status == cp_model.INFEASIBLE:
            return ModelAnswer("infeasible", None, INF, stats)
        if status == cp_model.MODEL_INVALID:
            raise RuntimeError(f"CP-SAT rejected the model: {built.m.validate()}")
        labels = built.labels(solver) if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) else None
        # best_objective_bound is only meaningful once CP-SAT has a status with an objective: on UNKNOWN (time
        # limit hit before any solution, e.g. in presolve) the response field is its default 0, which is no bound
        bound = built.bound_from(solver.best_objective_bound) if labels is not None else -INF
        if status == cp_model.OPTIMAL:
            return ModelAnswer("optimal", labels, bound, stats)
        return ModelAnswer("feasible" if labels is not None else "unknown", labels, bound, stats)

    return solve
