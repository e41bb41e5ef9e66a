"""The heuristic backends (dsatur, anneal) and the default chain (auto): feasible whenever they say so, seeded
runs reproducible, time limits honoured, and close to the exhaustive optimum on tiny instances."""
from __future__ import annotations

import numpy as np
import pytest

from geoshare_opt.api import solve
from geoshare_opt.checker import evaluate
from geoshare_opt.errors import InputError
from geoshare_opt.instance import Instance
from geoshare_opt.solvers.bruteforce import brute_force
from geoshare_opt.solvers.dsatur import greedy_labels
from cpu_clock import Spent


def random_instance(seed: int, n_max: int = 8, caps: bool = True) -> Instance:
    """Several types, signed weights, some hard edges, sometimes per-type caps and a parameter cap."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, n_max + 1))
    n_types = int(rng.integers(1, 4))
    types = rng.integers(0, n_types, size=n)
    params = rng.choice([1, 2, 4, 8], size=n) if rng.random() < 0.5 else np.full(n, 3)
    nodes = [{"id": f"n{i}", "type": f"t{types[i]}", "params": int(params[i])} for i in range(n)]
    edges = []
    for i in range(n):
        for j in range(i + 1, n):
            r = rng.random()
            if r < 0.15:
                edges.append((f"n{i}", f"n{j}", "hard"))
            elif r < 0.8:
                edges.append((f"n{i}", f"n{j}", float(np.round(rng.normal(0.3, 1.0), 3))))
    used_types = sorted(set(f"t{t}" for t in types))
    k = int(rng.integers(len(used_types), n + 1))
    per_type = {}
    max_params = None
    if caps and rng.random() < 0.4:
        per_type = {t: int(rng.integers(1, 4)) for t in used_types if rng.random() < 0.6}
    if caps and rng.random() < 0.4:
        need = sum(int(params[types == int(t[1:])].max()) for t in used_types)
        max_params = need + int(rng.integers(0, 12))
    return Instance.build(nodes, edges, k, max_classes_per_type=per_type or None, max_params=max_params,
                          name=f"rand{seed}")


@pytest.mark.parametrize("solver", ["dsatur", "anneal"])
def test_feasible_when_they_say_so_and_never_better_than_optimal(solver):
    matched = feasible_count = 0
    for seed in range(60):
        inst = random_instance(seed)
        opt = brute_force(inst)
        res = solve(inst, solver, seed=seed)
        assert res.termination in ("completed", "time_limit")
        if res.feasible:
            ev = evaluate(inst, res.assignment)
            assert ev.feasible, (seed, ev.violations)
            assert abs(ev.objective - res.objective) < 1e-9
            assert opt is not None and res.objective >= opt[0] - 1e-9
            feasible_count += 1
            matched += abs(res.objective - opt[0]) < 1e-6
        else:
            assert res.assignment is None
    assert feasible_count >= 45
    if solver == "anneal":
        assert matched >= 0.9 * feasible_count  # tiny instances: annealing should nearly always reach the optimum


def test_greedy_labels_respects_every_cap_on_larger_instances():
    for seed in range(20):
        inst = random_instance(1000 + seed, n_max=40)
        lab = greedy_labels(inst, seed=seed % 3)
        if lab is not None:
            assert evaluate(inst, lab).feasible


def test_infeasible_budget_gives_status_none():
    tri = Instance.build([{"id": c, "type": "T"} for c in "abc"],
                         [("a", "b", "hard"), ("b", "c", "hard"), ("a", "c", "hard")], 2)
    for solver in ("dsatur", "anneal"):
        res = solve(tri, solver, native={"tabu_iters": 2000} if solver == "anneal" else None)
        assert res.status == "none" and res.termination == "completed" and res.assignment is None
        assert res.message


def test_anneal_reproducible_with_the_same_seed():
    inst = random_instance(7, n_max=8)
    big = Instance.build([{"id": str(i), "type": "x"} for i in range(60)],
                         [(str(i), str(j), float(np.sin(i * 7 + j))) for i in range(60) for j in range(i + 1, 60)
                          if (i * j) % 5 == 1], 4)
    for x in (inst, big):
        a = solve(x, "anneal", seed=3, native={"sweeps": 300})
        b = solve(x, "anneal", seed=3, native={"sweeps": 300})
        assert a.assignment == b.assignment and a.objective == b.objective


def test_anneal_time_limit_honoured_and_warm_start_used():
    rng = np.random.default_rng(0)
    n = 3000
    edges = {}
    for _ in range(12000):
        i, j = sorted(rng.integers(0, n, size=2).tolist())
        if i != j:
            edges[(i, j)] = float(rng.choice([-1.0, 1.0]))
    inst = Instance.build([{"id": str(i), "type": "v"} for i in range(n)],
                          [(str(i), str(j), w) for (i, j), w in edges.items()], 3)
    with Spent() as spent:
        res = solve(inst, "anneal", time_limit=1.0, seed=1)
    assert res.feasible
    spent.check(1.0, 0.6, "anneal")
    assert res.termination in ("time_limit", "completed")
    greedy = solve(inst, "dsatur")
    assert res.objective < greedy.objective  # annealing improves on its greedy start
    warm = solve(inst, "anneal", time_limit=0.3, seed=2, warm_start=res)
    assert warm.feasible and warm.objective <= res.objective + 1e-9


def test_anneal_hard_colouring_with_tabu_phase():
    # the 5-wheel needs 4 colours; greedy order is irrelevant, TabuCol must find a proper 4-colouring
    rim = [(str(i), str((i + 1) % 5), "hard") for i in range(5)]
    spokes = [("h", str(i), "hard") for i in range(5)]
    inst = Instance.build([{"id": str(i), "type": "v"} for i in range(5)] + [{"id": "h", "type": "v"}],
                          rim + spokes, 4)
    res = solve(inst, "anneal", seed=0, native={"init": "random"})
    assert res.feasible and evaluate(inst, res.assignment).feasible
    assert solve(inst.with_budget(3), "anneal", native={"tabu_iters": 5000}).status == "none"


def test_anneal_unknown_native_option_is_bad_input():
    inst = random_instance(1)
    with pytest.raises(InputError, match="unknown native option"):
        solve(inst, "anneal", native={"temperature": 3})


def test_dsatur_is_deterministic_and_fast():
    rng = np.random.default_rng(5)
    n = 3000
    pairs = {tuple(sorted(rng.integers(0, n, size=2).tolist())) for _ in range(15000)}
    inst = Instance.build([{"id": str(i), "type": "v"} for i in range(n)],
                          [(str(i), str(j), "hard") for i, j in pairs if i != j], 40)
    a = solve(inst, "dsatur")
    with Spent() as spent:
        b = solve(inst, "dsatur")
    spent.check(0.0, 2.0, "dsatur")
    assert a.feasible and a.assignment == b.assignment


def test_auto_chains_stages_and_proves_small_instances():
    inst = random_instance(11, n_max=8)
    opt = brute_force(inst)
    res = solve(inst, "auto", time_limit=20)
    names = [s["solver"] for s in res.stats["stages"]]
    assert names[:2] == ["dsatur", "anneal"]
    if opt is None:
        assert res.status == "none"
    else:
        assert abs(res.objective - opt[0]) < 1e-6
    if "cpsat" in names:
        assert res.termination in ("optimal", "infeasible") and res.bound is not None or opt is None


def test_auto_skips_the_proof_on_big_instances_and_honours_the_limit():
    n = 400
    inst = Instance.build([{"id": str(i), "type": "v"} for i in range(n)],
                          [(str(i), str((i * 7 + 3) % n), 1.0) for i in range(n) if (i * 7 + 3) % n > i], 3)
    with Spent() as spent:
        res = solve(inst, "auto", time_limit=1.0)
    spent.check(1.0, 0.6, "auto")
    assert [s["solver"] for s in res.stats["stages"]] == ["dsatur", "anneal"]
    assert res.feasible and res.bound is None


def test_anneal_repairs_a_warm_start_over_the_parameter_cap():
    nodes = [{"id": str(i), "type": "v", "params": 10} for i in range(6)]
    edges = [(str(i), str(j), 1.0) for i in range(6) for j in range(i + 1, 6)]
    inst = Instance.build(nodes, edges, 6, max_params=30)
    res = solve(inst, "anneal", seed=0, warm_start=list(range(6)))  # 6 classes store 60 > 30
    assert res.feasible and res.n_classes <= 3
    assert res.objective == pytest.approx(brute_force(inst)[0])
