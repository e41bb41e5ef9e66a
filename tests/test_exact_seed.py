"""Exact backends start from a good incumbent and honour a short time limit while building their models.

Without a warm start, cpsat / highs / pulp seed themselves with the best of the dsatur greedy and a short anneal run
(``decompose.start_labels``), offer it, and pass it as hint / MIP start; ``auto`` does not pay for it twice. The
optional triangle rows are built only while time allows (``milp.limited_triangles``), so a dense instance under a
2 s limit returns near the limit with the incumbent.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from geoshare_opt import Instance, solve
from geoshare_opt.checker import check_result
from geoshare_opt.solvers import decompose
from geoshare_opt.solvers.auto import exact_solver_for
from geoshare_opt.solvers.curves import Model, parts_of
from geoshare_opt.solvers.milp import build

from exact_cases import case
from cpu_clock import Spent

EXACT = ("cpsat", "highs", "pulp")


def layered(n_layers: int = 14, n_types: int = 3, seed: int = 0, keep: float = 0.6) -> Instance:
    """Like a curvature instance of a deep model: one node per layer and type, positive damage weights that grow
    with the layer distance (a few negative), uniform parameter counts per type, and a parameter cap that forces
    sharing. Too large to prove in a second; the greedy is far from the best colouring."""
    rng = np.random.default_rng(seed)
    nodes, edges = [], []
    for t in range(n_types):
        ids = [f"L{i}.t{t}" for i in range(n_layers)]
        nodes += [{"id": i, "type": f"t{t}", "params": 100 * (t + 1)} for i in ids]
        for i in range(n_layers):
            for j in range(i + 1, n_layers):
                w = abs(j - i) * rng.uniform(0.5, 1.5) + rng.normal(0, 0.5)
                edges.append((ids[i], ids[j], round(float(w), 4) or 0.1))
    inst = Instance.build(nodes, edges, n_layers * n_types, name="layered")
    total = int(sum(nd["params"] for nd in nodes))
    return inst.with_budget(n_layers * n_types, max_params=int(keep * total) // 2)


def dense_signed(n: int = 60, seed: int = 0, k: int = 6) -> Instance:
    rng = np.random.default_rng(seed)
    iu, ju = np.triu_indices(n, 1)
    w = np.round(rng.normal(size=len(iu)), 3)
    edges = [(f"n{i}", f"n{j}", float(x) or 0.5) for i, j, x in zip(iu, ju, w)]
    return Instance.build([{"id": f"n{i}", "type": "t"} for i in range(n)], edges, k, name=f"dense{n}")


@pytest.fixture
def anneal_calls(monkeypatch):
    """Counts the anneal seed runs (the real function still runs)."""
    calls = []
    real = decompose._anneal_seed

    def counting(instance, options, ctx):
        calls.append(len(instance.nodes))
        return real(instance, options, ctx)

    monkeypatch.setattr(decompose, "_anneal_seed", counting)
    return calls


# ------------------------------------------------------------------------------------------- the seed
@pytest.mark.parametrize("solver", EXACT)
def test_exact_backend_is_no_worse_than_dsatur_without_warm_start(solver, anneal_calls):
    inst = layered()
    greedy = solve(inst, "dsatur")
    assert greedy.feasible
    r = solve(inst, solver, time_limit=1.5, threads=1)
    assert check_result(inst, r) == []
    assert r.feasible and r.objective <= greedy.objective + 1e-9
    seed = r.stats["seed"]
    assert anneal_calls == [len(inst.nodes)]
    assert seed["greedy"] == pytest.approx(greedy.objective)
    assert 0 < seed["anneal_limit_s"] <= min(0.1 * 1.5, decompose.SEED_MAX_S, 0.01 * len(inst.nodes)) + 1e-9
    assert isinstance(seed["anneal"], float) and r.objective <= seed["anneal"] + 1e-9
    assert seed["used"] in ("greedy", "anneal")


def test_seed_beats_the_greedy_on_a_layered_instance():
    """The reason for the seed: here the greedy leaves a lot on the table and CP-SAT's time is short."""
    inst = layered()
    greedy = solve(inst, "dsatur").objective
    seeded = solve(inst, "cpsat", time_limit=1.0, threads=1)
    assert seeded.stats["seed"]["used"] == "anneal"
    assert seeded.stats["seed"]["anneal"] < 0.9 * greedy


def test_seed_heuristic_false_keeps_the_greedy_only(anneal_calls):
    inst = layered()
    r = solve(inst, "cpsat", time_limit=0.5, threads=1, native={"seed_heuristic": False})
    assert anneal_calls == []
    seed = r.stats["seed"]
    assert seed["anneal"] == "skipped: native seed_heuristic=False"
    assert seed["used"] == "greedy" and "anneal_s" not in seed
    assert r.feasible and r.objective <= seed["greedy"] + 1e-9


def test_hint_false_starts_from_nothing(anneal_calls):
    r = solve(layered(), "highs", time_limit=0.5, native={"hint": False})
    assert anneal_calls == [] and r.stats["seed"] == {"used": None, "skipped": "native hint=False"}


@pytest.mark.parametrize("solver", EXACT)
def test_tiny_instances_skip_the_anneal(solver, anneal_calls):
    """Brute-force sizes prove in milliseconds: no anneal, on both the decomposed and the monolithic path."""
    methods = set()
    for seed in (0, 3, 5, 11, 17, 21):
        inst, opt = case(seed)
        r = solve(inst, solver)
        if opt is None:
            continue
        assert r.termination == "optimal" and r.objective == pytest.approx(opt, abs=1e-6)
        assert r.stats["seed"]["anneal"] in (f"skipped: fewer than {decompose.SEED_MIN_NODES} nodes",
                                             "skipped: the greedy meets the trivial bound"), r.stats["seed"]
        methods.add(r.stats["method"])
    assert anneal_calls == []
    assert methods == {"decomposition", "monolithic"}


def test_warm_start_is_used_as_given(anneal_calls):
    inst = layered()
    warm = solve(inst, "dsatur")
    r = solve(inst, "highs", time_limit=0.5, warm_start=warm)
    assert anneal_calls == [] and r.stats["seed"] == {"used": "warm_start"}
    assert r.objective <= warm.objective + 1e-9


def test_auto_does_not_seed_twice(anneal_calls):
    inst = layered(n_layers=8)  # small enough for auto's exact stage
    r = solve(inst, "auto", time_limit=3.0, threads=1)
    assert [s["solver"] for s in r.stats["stages"]] == ["dsatur", "anneal", exact_solver_for(inst)]
    assert anneal_calls == []


# ------------------------------------------------------------------------------------------- build time
def test_build_stops_generating_cuts_at_the_deadline():
    inst = dense_signed(20, k=4)
    part = parts_of(inst)[0]
    full = build(Model((part,), 4, None, True, True))
    none = build(Model((part,), 4, None, True, False))
    cut = build(Model((part,), 4, None, True, True), cut_deadline=time.monotonic() - 1.0)
    assert full.cuts == {"triangles": 1140, "truncated": None}
    assert int(full.optional.sum()) == 3 * 1140
    assert all(full.row_names[r].startswith("tri_") for r in np.flatnonzero(full.optional))
    assert cut.cuts == {"triangles": 0, "truncated": "time"}
    assert cut.n_rows == none.n_rows and not cut.optional.any()  # every row needed for correctness is kept


def test_pulp_rows_leave_out_cuts_after_the_deadline():
    pytest.importorskip("pulp")
    from geoshare_opt.solvers.pulp_milp import to_pulp
    part = parts_of(dense_signed(12, k=3))[0]
    milp = build(Model((part,), 3, None, True, True))
    rows_without_cuts = milp.n_rows - int(milp.optional.sum())
    prob, _ = to_pulp(milp, optional_until=time.monotonic() - 1.0)
    assert prob.numConstraints() == rows_without_cuts
    assert milp.cuts["truncated"] == "time" and milp.cuts["triangles"] == 0


@pytest.mark.parametrize("solver", EXACT)
def test_build_respects_a_short_time_limit(solver):
    """Dense 60 nodes (34 220 triangles: seconds of model building) under a 2 s limit: the run ends near the limit
    (before: highs 3.4 s, pulp 3.5-6 s) with the seed incumbent, and says the cuts were cut short."""
    solve(dense_signed(6, k=2), solver)  # imports and JIT warm-up, untimed
    inst = dense_signed()
    limit, slack = 2.0, 1.5  # CBC may overrun its limit by PULP_OVERRUN_S
    with Spent() as spent:
        r = solve(inst, solver, time_limit=limit, threads=1)
    spent.check(limit, slack, solver)
    assert r.termination == "time_limit" and r.feasible
    assert check_result(inst, r) == []
    assert r.objective <= r.stats["seed"]["greedy"] + 1e-9
    assert r.stats["cuts_truncated"][0]["reason"] == "time"
