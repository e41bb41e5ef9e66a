"""A conformance suite any backend can run: tiny problems with hand-derived optima, plus checks on every result.

Use it for a built-in backend (``tests/test_conformance.py``) or a third party's::

    import pytest
    from conformance import BackendConformance      # this file (with cpu_clock.py): copy them or put tests/ on sys.path

    class TestMyBackend(BackendConformance):
        @pytest.fixture
        def solver(self):
            return "mysolver"                            # a name in the registry below

        @pytest.fixture
        def registry(self):                              # optional; default: geoshare_opt's default registry
            reg = geoshare_opt.solvers.Registry({}, entry_points=False)
            reg.register("mysolver", MyBackend)
            return reg

What every backend must do (the contract of ``geoshare_opt.solvers.base.Backend``):
- return a well-formed result (all fields, the instance hash, the options echoed) — also with ``time_limit=0``;
- hold only checker-feasible assignments; objective recomputed; bound <= objective;
- exact backends (``exact = True``): ``optimal`` with the known optimum, ``infeasible`` on an infeasible budget;
- heuristics: never better than the optimum (that would be a checker bug), exact on the cases marked trivial,
  within ``heuristic_slack`` x (total |w|) of it on the others, ``status="none"`` on an infeasible budget;
- same seed with ``threads=1`` -> the same assignment; a warm start is accepted (and never worsened);
- Ctrl-C (a real SIGINT mid-run) -> ``solve`` returns within seconds, keeping its incumbent;
- a time limit is honoured (within seconds), and "optimal" is never claimed when a heuristic does better;
- an unknown native option raises ``InputError`` naming it, or is reported in ``result.message`` (never silently
  dropped).

Every optimum below is derived by hand in the case's note and re-checked by ``brute_force_optimum`` in
``tests/test_conformance.py``.
"""
from __future__ import annotations

import itertools
import json
import math
import os
import signal
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from geoshare_opt import InputError, Instance, evaluate, solve
from geoshare_opt.checker import check_result
from geoshare_opt.result import Result
from geoshare_opt.solvers import default_registry
from geoshare_opt.solvers.base import Backend, Outcome
from geoshare_opt.solvers.curves import parts_of

from cpu_clock import HANG_S, Spent

#: time limit given to every run of the suite (seconds); heuristics that run to the deadline use all of it
TIME_LIMIT = 2.0
#: default slack of a heuristic on the non-trivial cases, as a fraction of the case's total |weight|
#: (0: exact everywhere; a subclass may loosen it for a plain greedy and must say so)
HEURISTIC_SLACK = 0.0
ABS_TOL = 1e-6


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], Instance]
    optimum: float | None      # None: the budget is infeasible
    trivial: bool = True       # heuristics must be exact here too
    note: str = ""

    def instance(self) -> Instance:
        return self.build()


def _one_type(n_edges, k, nodes=None, **kw) -> Instance:
    ids = nodes or sorted({x for e in n_edges for x in e[:2]})
    return Instance.build([{"id": i, "type": "t"} for i in ids], n_edges, k, **kw)


CASES: list[Case] = [
    Case("single_node", lambda: Instance.build([{"id": "a", "type": "t", "params": 7}], [], 1), 0.0,
         note="one node, one class, nothing to pay"),
    Case("zero_optimum", lambda: _one_type([("a", "b", 1.0)], 2), 0.0, note="two classes separate the pair"),
    Case("triangle_k2", lambda: _one_type([("a", "b", 1.0), ("b", "c", 2.0), ("a", "c", 3.0)], 2), 1.0,
         trivial=False, note="3 nodes in 2 classes: some pair shares; the cheapest is a-b (1)"),
    Case("triangle_k3", lambda: _one_type([("a", "b", 1.0), ("b", "c", 2.0), ("a", "c", 3.0)], 3), 0.0),
    Case("signed_k2", lambda: _one_type([("a", "b", -2.0), ("c", "d", -3.0), ("a", "c", 1.0), ("b", "d", 1.0),
                                         ("a", "d", 5.0), ("b", "c", 5.0)], 2), -5.0,
         trivial=False, note="{a,b}{c,d} collects both negative edges and no positive one: -5"),
    Case("signed_k1", lambda: _one_type([("a", "b", -2.0), ("c", "d", -3.0), ("a", "c", 1.0), ("b", "d", 1.0),
                                         ("a", "d", 5.0), ("b", "c", 5.0)], 1), 7.0,
         note="one class holds every edge: -2-3+1+1+5+5 = 7"),
    Case("negative_fewer_classes", lambda: _one_type([("a", "b", -1.0), ("b", "c", -1.0), ("a", "c", -1.0)], 3),
         -3.0, note="all-negative triangle: one class (-3) although 3 are allowed; using fewer classes is legal"),
    Case("fractional_weights", lambda: _one_type([("a", "b", 0.1), ("b", "c", 0.2), ("a", "c", 0.3),
                                                  ("c", "d", -0.25)], 2), -0.15, trivial=False,
         note="{a,b}{c,d}: 0.1 - 0.25 = -0.15; next best {b,c,d}{a}: 0.2 - 0.25 = -0.05"),
    Case("hard_path", lambda: _one_type([("a", "b", "hard"), ("b", "c", "hard"), ("a", "c", 4.0)], 2), 4.0,
         note="b must be alone; with 2 classes a and c share (4)"),
    Case("hard_path_k3", lambda: _one_type([("a", "b", "hard"), ("b", "c", "hard"), ("a", "c", 4.0)], 3), 0.0),
    Case("infeasible_hard_triangle", lambda: _one_type([("a", "b", "hard"), ("b", "c", "hard"),
                                                        ("a", "c", "hard")], 2), None,
         note="a hard triangle needs 3 classes; the budget allows 2"),
    Case("two_types_budget", lambda: _two_types(3), 3.0,
         trivial=False, note="A = triangle of 1s (f_A(1)=3, f_A(2)=1), B = pair of weight 10 (f_B(1)=10, f_B(2)=0); K=3: "
              "A1+B2 = 3 beats A2+B1 = 11"),
    Case("two_types_budget_k4", lambda: _two_types(4), 1.0, trivial=False, note="K=4: A2+B2 = 1"),
    Case("per_type_cap", lambda: _two_types(4, max_classes_per_type={"A": 1}), 3.0,
         note="A capped at one class: 3 + B2 = 3"),
    Case("max_params", lambda: Instance.build(
        [{"id": "a", "type": "t", "params": 10}, {"id": "b", "type": "t", "params": 10},
         {"id": "c", "type": "t", "params": 1}],
        [("a", "b", 5.0), ("a", "c", 1.0), ("b", "c", 1.0)], 3, max_params=15), 5.0,
         trivial=False, note="stored params: {a}{b}{c}=21, {a,c}{b}=20, {a,b}{c}=11 (cost 5), {a,b,c}=10 (cost 7); <=15 -> 5"),
    Case("type_without_edges", lambda: Instance.build(
        [{"id": "a1", "type": "A"}, {"id": "a2", "type": "A"}, {"id": "b1", "type": "B"}, {"id": "b2", "type": "B"}],
        [("b1", "b2", 1.0)], 2), 1.0, note="each type needs a class: K=2 leaves B one class (1)"),
    Case("cross_type_edge_ignored", lambda: Instance.build(
        [{"id": "a", "type": "A"}, {"id": "b", "type": "B"}], [("a", "b", 100.0)], 2), 0.0,
         note="different types never share a class, so their edge never counts"),
    Case("mixed_hard_soft_types", lambda: Instance.build(
        [{"id": f"a{i}", "type": "A"} for i in range(4)] + [{"id": f"b{i}", "type": "B"} for i in range(3)],
        [("a0", "a1", "hard"), ("a1", "a2", "hard"), ("a2", "a3", "hard"), ("a0", "a2", 2.0), ("a1", "a3", 3.0),
         ("a0", "a3", -1.0), ("b0", "b1", 1.0), ("b1", "b2", 1.0), ("b0", "b2", 1.0)], 4), 2.0, trivial=False,
         note="A's hard path a0-a1-a2-a3 has one 2-colouring, {a0,a2}{a1,a3} (2+3 = 5); with 3 classes "
              "{a0,a3}{a1}{a2} = -1. B = triangle of 1s: f_B(1)=3, f_B(2)=1. K=4: A3+B1 = 2 beats A2+B2 = 6"),
    Case("no_nodes", lambda: Instance.build([], [], 1), 0.0,
         note="nothing to colour: the empty assignment, objective 0"),
]


def _two_types(k, **kw) -> Instance:
    nodes = [{"id": f"a{i}", "type": "A"} for i in range(3)] + [{"id": f"b{i}", "type": "B"} for i in range(2)]
    edges = [("a0", "a1", 1.0), ("a1", "a2", 1.0), ("a0", "a2", 1.0), ("b0", "b1", 10.0)]
    return Instance.build(nodes, edges, k, **kw)


# ---------------------------------------------------------------------- brute force (reference for the cases)
def brute_force_optimum(inst: Instance) -> float | None:
    """The optimum by enumerating every partition of every type; None if infeasible (tiny instances only)."""
    return brute_force_solve(inst)[0]


class _OutOfTime(Exception):
    pass


def brute_force_solve(inst: Instance, expired: Callable[[], bool] = lambda: False
                      ) -> tuple[float | None, np.ndarray | None]:
    """Optimum and an optimal labelling by enumeration: every partition of each type (restricted growth strings,
    Bell(n_t) of them), then every combination of per-type choices under the budget. Exponential: <= ~10 per type."""
    per_type = []
    for blk in parts_of(inst):
        options = {}  # (classes, stored params) -> (cost, labels) of the best hard-feasible partition
        for count, rgs in enumerate(_restricted_growth(blk.n)):
            if count % 512 == 0 and expired():
                raise _OutOfTime
            lab = np.asarray(rgs, dtype=np.int64)
            same = lab[:, None] == lab[None, :]
            if np.any(blk.hard & same):
                continue
            k = int(lab.max()) + 1
            cost = float(np.sum(np.triu(blk.W * same, 1)))
            stored = int(sum(blk.params[lab == c].max() for c in range(k)))
            key = (k, stored)
            if key not in options or cost < options[key][0]:
                options[key] = (cost, lab)
        per_type.append([(k, stored, cost, lab) for (k, stored), (cost, lab) in options.items()])
    b = inst.budget
    best, best_combo = None, None
    for combo in itertools.product(*per_type):
        if sum(c[0] for c in combo) > b.max_classes:
            continue
        if any(c[0] > b.max_classes_per_type.get(t, math.inf) for t, c in zip(inst.types, combo)):
            continue
        if b.max_params is not None and sum(c[1] for c in combo) > b.max_params:
            continue
        cost = sum(c[2] for c in combo)
        if best is None or cost < best:
            best, best_combo = cost, combo
    if best_combo is None:
        return None, None
    labels = np.zeros(len(inst.nodes), dtype=np.int64)
    offset = 0
    for part, (k, _, _, lab) in zip(parts_of(inst), best_combo):
        labels[part.nodes] = lab + offset
        offset += k
    return best, labels


def _restricted_growth(n: int):
    if n == 0:
        yield []
        return

    def rec(prefix, mx):
        if len(prefix) == n:
            yield list(prefix)
            return
        for c in range(mx + 2):
            prefix.append(c)
            yield from rec(prefix, max(mx, c))
            prefix.pop()

    yield from rec([0], 0)


class BruteForceBackend(Backend):
    """An exact reference backend for tiny instances (enumeration); used to test this suite itself."""
    name = "brute"
    summary = "exhaustive enumeration (tests only)"
    exact = True
    gives_bound = True
    determinism = "deterministic"

    def run(self, instance, options, ctx):
        unknown = set(options.native)
        if unknown:
            raise InputError(f"brute: unknown native option {sorted(unknown)[0]!r}")
        try:
            best, labels = brute_force_solve(instance, ctx.expired)
        except _OutOfTime:
            return Outcome("time_limit")
        if labels is None:
            return Outcome("infeasible")
        return Outcome("optimal", labels, best)


# ---------------------------------------------------------------------- checks on one result
RESULT_FIELDS = {"format": str, "version": int, "instance_sha256": str, "instance_name": str, "solver": str,
                 "solver_version": str, "termination": str, "status": str, "wall_time_s": (int, float),
                 "options": dict, "message": str, "stats": dict}


def check_well_formed(res: Result, inst: Instance, solver: str, *, time_limit=None, seed=0, threads=1) -> None:
    """Every field present with the right type; the hash, solver name and options echoed; JSON round trip."""
    d = res.to_dict()
    for key, typ in RESULT_FIELDS.items():
        assert isinstance(d[key], typ), f"{key} = {d[key]!r}"
    assert d["format"] == "geoshare-result" and d["version"] == 1
    assert d["instance_sha256"] == inst.sha256
    assert d["solver"] == solver
    assert d["termination"] in {"optimal", "infeasible", "time_limit", "interrupted", "completed",
                                "iteration_limit", "error"}
    assert d["status"] in {"feasible", "none"}
    assert d["wall_time_s"] >= 0
    opts = d["options"]
    assert opts["time_limit"] == time_limit and opts["seed"] == seed and opts["threads"] == threads
    for key in ("objective", "bound", "gap"):
        assert d[key] is None or (isinstance(d[key], (int, float)) and math.isfinite(d[key])), key
    if res.feasible:
        assert set(d["assignment"]) == {n.id for n in inst.nodes}
        assert isinstance(d["objective"], (int, float))
    else:
        assert d["assignment"] is None and d["objective"] is None
    text = res.dumps()
    again = Result.loads(text)
    assert again.to_dict() == json.loads(text)
    _schema_check(json.loads(text))


def _schema_check(payload: dict) -> None:
    try:
        import jsonschema
    except ImportError:  # the schema test file covers this when jsonschema is present
        return
    from geoshare_opt.schemas import load_schema
    jsonschema.validate(payload, load_schema("result"))


def check_against_instance(res: Result, inst: Instance) -> None:
    """Feasible when it says so, objective recomputed, bound <= objective, gap consistent."""
    assert check_result(inst, res) == [], check_result(inst, res)
    if res.feasible:
        ev = evaluate(inst, res.assignment)
        assert ev.feasible, ev.violations
        assert res.objective == pytest.approx(ev.objective, abs=1e-9)
        if res.bound is not None:
            assert res.bound <= res.objective + 1e-6 * max(1.0, abs(res.objective))
    if res.termination == "infeasible":
        assert not res.feasible


# ---------------------------------------------------------------------- the suite
class BackendConformance:
    """Subclass and provide a ``solver`` fixture (and optionally ``registry``) to run the suite on a backend."""

    time_limit = TIME_LIMIT
    heuristic_slack = HEURISTIC_SLACK

    @pytest.fixture
    def registry(self):
        return default_registry

    @pytest.fixture
    def backend_cls(self, solver, registry):
        return registry.get(solver)

    def run(self, inst, solver, registry, **kw):
        kw.setdefault("time_limit", self.time_limit)
        return solve(inst, solver, registry=registry, **kw)

    @pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
    def test_known_optimum(self, case, solver, registry, backend_cls):
        inst = case.instance()
        res = self.run(inst, solver, registry)
        check_well_formed(res, inst, solver, time_limit=self.time_limit)
        check_against_instance(res, inst)
        assert res.termination != "error", res.message
        if case.optimum is None:
            assert not res.feasible
            if backend_cls.exact:
                assert res.termination == "infeasible", (res.termination, res.message)
            return
        if backend_cls.exact:
            assert res.termination == "optimal", (res.termination, res.message)
            assert res.objective == pytest.approx(case.optimum, abs=ABS_TOL)
            assert res.bound == pytest.approx(case.optimum, abs=1e-6 * max(1, abs(case.optimum)))
            assert res.gap == 0.0
            return
        assert res.feasible, f"{solver} found no assignment on a feasible case ({res.termination}: {res.message})"
        assert res.objective >= case.optimum - ABS_TOL, "better than the optimum: checker or case is wrong"
        total = float(np.abs(inst.edge_arrays[2]).sum())
        tol = ABS_TOL + (0.0 if case.trivial else self.heuristic_slack * total)
        assert res.objective <= case.optimum + tol, f"{solver}: {res.objective} vs optimum {case.optimum}"

    def test_zero_time_limit(self, solver, registry):
        inst = medium_instance()
        res = self.run(inst, solver, registry, time_limit=0)
        check_well_formed(res, inst, solver, time_limit=0)
        check_against_instance(res, inst)

    def test_seed_reproducible(self, solver, registry, backend_cls):
        """Without a time limit every backend runs its own work budget (no wall clock): the same seed gives the
        same answer, however loaded the machine (with a 0.3 s limit one run of two could finish and the other
        not, on a busy machine)."""
        inst = medium_instance()
        a = self.run(inst, solver, registry, seed=7, threads=1, time_limit=None)
        b = self.run(inst, solver, registry, seed=7, threads=1, time_limit=None)
        check_well_formed(a, inst, solver, time_limit=None, seed=7)
        assert a.status == b.status and a.termination == b.termination
        if backend_cls.determinism.startswith("deterministic") or "seed" in backend_cls.determinism:
            assert a.assignment == b.assignment
            assert a.objective == b.objective

    def test_warm_start_accepted(self, solver, registry):
        inst = medium_instance()
        warm = greedy_labels(inst)
        ev = evaluate(inst, warm)
        assert ev.feasible
        res = self.run(inst, solver, registry, warm_start=warm)
        check_well_formed(res, inst, solver, time_limit=self.time_limit)
        check_against_instance(res, inst)
        assert res.options["warm_start"] is True
        assert res.feasible, "a feasible warm start was given but no assignment came back"
        # the warm start is feasible; the driver keeps offered incumbents, so a good backend never does worse
        assert res.objective <= ev.objective + ABS_TOL, (res.objective, ev.objective)

    def test_warm_start_from_result_file(self, solver, registry, tmp_path):
        inst = CASES[2].instance()
        first = self.run(inst, solver, registry)
        # this case is feasible with a known optimum: every backend must return an assignment to restart from
        assert first.feasible, f"{solver} found no assignment on the feasible case {CASES[2].name!r}"
        path = tmp_path / "r.json"
        first.save(path)
        res = self.run(inst, solver, registry, warm_start=str(path))
        check_against_instance(res, inst)
        assert res.feasible

    def test_unknown_native_option(self, solver, registry):
        inst = CASES[2].instance()
        key = "no_such_option_xyz"
        try:
            res = self.run(inst, solver, registry, native={key: 1})
        except InputError as exc:
            assert key in str(exc)
            assert "\n" not in str(exc)
            return
        assert key in res.message, f"unknown native option {key!r} silently ignored"

    def test_ctrl_c_stops_promptly(self, solver, registry, backend_cls):
        """A real SIGINT well into a long run (inside the solver library by then: exact backends spend their first
        second building models): ``solve`` returns (never raises) within a few seconds, with a well-formed result
        that keeps any incumbent. Exact backends of the default registry (native solver libraries, where Ctrl-C
        is easy to lose) run in a child process with a hard timeout, so one that ignores Ctrl-C fails quickly
        instead of stalling the suite."""
        inst = interrupt_instance()
        in_child = registry is default_registry and backend_cls.exact
        limit, delay, grace = 12.0, (3.0 if in_child else 1.5), 3.0
        if in_child:
            spent, res = _ctrl_c_in_child(solver, delay, limit, timeout=limit + HANG_S)
        else:
            spent, res = _ctrl_c_in_process(lambda: self.run(inst, solver, registry, time_limit=limit), delay)
        check_well_formed(res, inst, solver, time_limit=limit)
        check_against_instance(res, inst)
        # an ignored Ctrl-C runs on to the limit (termination time_limit); a prompt stop spends little CPU after it
        # (CPU seconds, not wall seconds, which a loaded machine stretches: see cpu_clock)
        assert res.termination != "time_limit", f"{solver} ignored the Ctrl-C at {delay}s"
        spent.check(delay, grace, f"{solver} after Ctrl-C at {delay}s ({res.termination})")
        if res.feasible:
            assert res.termination in ("interrupted", "completed", "optimal"), res.termination

    def test_time_limit_and_optimality_claims_hold(self, solver, registry, backend_cls):
        """On an instance no exact backend proves in 2 s: the run ends near its time limit, and an "optimal" claim
        is never beaten by a heuristic's assignment (a backend stopped by the clock must not claim a proof).
        Default-registry backends run in a child process with a hard timeout so a stall fails fast."""
        inst = interrupt_instance()
        limit, slack = 2.0, 3.0
        if registry is default_registry:
            spent, res = _timed_in_child(solver, limit, timeout=limit + HANG_S)
        else:
            with Spent() as spent:
                res = self.run(inst, solver, registry, time_limit=limit)
        check_well_formed(res, inst, solver, time_limit=limit)
        check_against_instance(res, inst)
        spent.check(limit, slack, f"{solver} with time_limit={limit}")
        if res.termination == "optimal":
            ref = reference_objective(inst)
            assert res.objective <= ref + 1e-6 * max(1.0, abs(ref)), (
                f"{solver} claims optimal {res.objective} but a heuristic found {ref}")

    def test_infeasible_is_not_an_exception(self, solver, registry):
        inst = CASES[[c.name for c in CASES].index("infeasible_hard_triangle")].instance()
        res = self.run(inst, solver, registry, time_limit=0.5)
        check_well_formed(res, inst, solver, time_limit=0.5)
        assert not res.feasible


def medium_instance(n_per_type: int = 8, seed: int = 3) -> Instance:
    """Two types, signed weights, a few hard edges and all three caps: a case no heuristic solves by accident,
    still small enough that exact backends prove it in well under a second."""
    rng = np.random.default_rng(seed)
    nodes, edges = [], []
    for t in ("A", "B"):
        ids = [f"{t}{i}" for i in range(n_per_type)]
        nodes += [{"id": i, "type": t, "params": int(rng.integers(1, 5))} for i in ids]
        for i, j in itertools.combinations(range(n_per_type), 2):
            r = rng.random()
            if r < 0.1:
                edges.append((ids[i], ids[j], "hard"))
            elif r < 0.8:
                edges.append((ids[i], ids[j], float(np.round(rng.normal(0.5, 1.0), 3))))
    return Instance.build(nodes, edges, 7, max_classes_per_type={"A": 4}, max_params=40, name="medium")


def _ctrl_c_in_process(run: Callable[[], Result], delay: float) -> tuple[Spent, Result]:
    if threading.current_thread() is not threading.main_thread():
        pytest.fail("the Ctrl-C conformance test must run in the main thread: signals reach the main thread only")
    returned = False
    res = None
    timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    spent = Spent().__enter__()
    try:
        try:
            timer.start()
            res = run()
            returned = True
        finally:
            spent.__exit__(None, None, None)
            timer.cancel()
            timer.join()
    except KeyboardInterrupt:
        if not returned:
            pytest.fail("KeyboardInterrupt escaped geoshare_opt.solve")
    finally:
        signal.signal(signal.SIGINT, previous)
    return spent, res


_CHILD = """
import json, os, signal, sys, threading, time
sys.path.insert(0, {tests!r})
from conformance import interrupt_instance
from cpu_clock import Spent
from geoshare_opt import solve
inst = interrupt_instance()
signal.signal(signal.SIGINT, signal.default_int_handler)  # background jobs may start with SIGINT ignored
threading.Timer({delay!r}, os.kill, (os.getpid(), signal.SIGINT)).start()
with Spent() as spent:
    res = solve(inst, {solver!r}, time_limit={limit!r})
print(json.dumps({{"wall": spent.wall, "cpu": spent.cpu, "result": res.to_dict()}}))
"""


def _spent_in_child(payload: dict) -> Spent:
    spent = Spent()
    spent.wall, spent.cpu = payload["wall"], payload["cpu"]
    return spent


def _ctrl_c_in_child(solver: str, delay: float, limit: float, timeout: float) -> tuple[Spent, Result]:
    import subprocess
    import sys
    code = _CHILD.format(tests=os.path.dirname(os.path.abspath(__file__)), delay=delay, solver=solver, limit=limit)
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{solver} still running {timeout:.0f}s after start, Ctrl-C at {delay}s ignored")
    assert out.returncode == 0, f"KeyboardInterrupt or crash in solve (exit {out.returncode}): {out.stderr[-1500:]}"
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    return _spent_in_child(payload), Result.from_dict(payload["result"])


_TIMED_CHILD = """
import json, sys, time
sys.path.insert(0, {tests!r})
from conformance import interrupt_instance
from cpu_clock import Spent
from geoshare_opt import solve
inst = interrupt_instance()
with Spent() as spent:
    res = solve(inst, {solver!r}, time_limit={limit!r})
print(json.dumps({{"wall": spent.wall, "cpu": spent.cpu, "result": res.to_dict()}}))
"""


def _timed_in_child(solver: str, limit: float, timeout: float) -> tuple[Spent, Result]:
    import subprocess
    import sys
    code = _TIMED_CHILD.format(tests=os.path.dirname(os.path.abspath(__file__)), solver=solver, limit=limit)
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{solver} still running {timeout:.0f}s after start with time_limit={limit}")
    assert out.returncode == 0, out.stderr[-1500:]
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    return _spent_in_child(payload), Result.from_dict(payload["result"])


_REFERENCE: dict[str, float] = {}


def reference_objective(inst: Instance) -> float:
    """A good objective for ``inst`` from the package's simulated annealing (cached per instance)."""
    if inst.sha256 not in _REFERENCE:
        res = solve(inst, "anneal", time_limit=3.0, seed=0)
        assert res.feasible
        _REFERENCE[inst.sha256] = res.objective
    return _REFERENCE[inst.sha256]


def interrupt_instance(n: int = 150, seed: int = 0) -> Instance:
    """One dense signed type that no backend finishes in half a second (a feasible start is trivial)."""
    rng = np.random.default_rng(seed)
    iu, ju = np.triu_indices(n, 1)
    keep = rng.random(len(iu)) < 0.3
    w = np.round(rng.normal(size=keep.sum()), 3)
    edges = [(f"n{i}", f"n{j}", float(x)) for i, j, x in zip(iu[keep], ju[keep], w)]
    return Instance.build([{"id": f"n{i}", "type": "t"} for i in range(n)], edges, 6, name="interrupt")


def greedy_labels(inst: Instance) -> np.ndarray:
    """A feasible assignment for ``medium_instance``: each type in as many classes as hard edges force, by a
    first-fit colouring; the caps of ``medium_instance`` leave room for it (asserted by the caller)."""
    labels = np.full(len(inst.nodes), -1, dtype=np.int64)
    next_class = 0
    for blk in parts_of(inst):
        local = np.full(blk.n, -1)
        for i in range(blk.n):
            used = {local[j] for j in np.flatnonzero(blk.hard[i]) if local[j] >= 0}
            local[i] = next(c for c in range(blk.n) if c not in used)
        labels[blk.nodes] = local + next_class
        next_class += int(local.max()) + 1
    return labels
