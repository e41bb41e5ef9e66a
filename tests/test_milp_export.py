"""The MILP as data: every feasible labelling maps to a point that satisfies every row with the checker's objective
(so the linearisation is right for both signs), the export round-trips through highspy, stdout stays clean."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from geoshare_opt.checker import evaluate
from geoshare_opt.errors import InputError
from geoshare_opt.instance import Instance
from geoshare_opt.solvers.bruteforce import brute_force
from geoshare_opt.solvers.curves import global_labels
from geoshare_opt.solvers.milp import build, export, instance_model

from exact_cases import case


def row_violation(milp, v) -> float:
    act = milp.A @ v
    return float(max(np.max(milp.row_lb - act, initial=0.0), np.max(act - milp.row_ub, initial=0.0)))


@pytest.mark.parametrize("symmetry", [True, False])
def test_start_vector_of_the_optimum_is_feasible_with_the_same_objective(symmetry):
    checked = 0
    for seed in range(120):
        inst, opt = case(seed)
        if opt is None:
            continue
        _, labels = brute_force(inst)
        model = instance_model(inst, symmetry)
        milp = build(model)
        parts = model.parts
        local = [np.unique(labels[p.nodes], return_inverse=True)[1] for p in parts]
        v = milp.start(local)
        assert v is not None, seed
        assert row_violation(milp, v) <= 1e-9, seed
        assert np.all(v >= milp.lb - 1e-12) and np.all(v <= milp.ub + 1e-12)
        assert float(milp.cost @ v) / milp.scale == pytest.approx(opt, abs=1e-9), seed
        back = global_labels(parts, milp.labels(v), len(inst.nodes))
        assert evaluate(inst, back).objective == pytest.approx(opt, abs=1e-9)
        checked += 1
    assert checked >= 80


def test_negative_edge_cannot_claim_a_reward_apart():
    """y of a negative edge must be 0 when its ends sit in different classes (the classic silent MILP bug)."""
    inst = Instance.build([{"id": "a", "type": "t"}, {"id": "b", "type": "t"}, {"id": "c", "type": "t"}],
                          [("a", "b", -1.0), ("a", "c", "hard")], 2)
    milp = build(instance_model(inst, symmetry=False))
    v = milp.start([np.array([0, 1, 1])])
    assert row_violation(milp, v) == 0
    v[milp.y_cols[0][0]] = 1.0  # pretend a and b share
    assert row_violation(milp, v) > 0.5


def read_back_optimum(path: Path) -> float:
    import highspy
    from geoshare_opt.solvers.quiet import new_highs, stdout_to_stderr
    h = new_highs()
    with stdout_to_stderr():
        h.readModel(str(path))
        h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return float(h.getInfo().objective_function_value)


@pytest.mark.parametrize("fmt", ["lp", "mps"])
def test_export_round_trips_through_highspy(tmp_path, capfd, fmt):
    inst, opt = case(3)
    seed = 3
    while opt is None or len(inst.types) < 2:
        seed += 1
        inst, opt = case(seed)
    out = export(inst, tmp_path / f"model.{fmt}", fmt)
    captured = capfd.readouterr()
    assert captured.out == ""
    assert out.exists() and out.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"model.{fmt}"]  # no temp file left behind
    assert read_back_optimum(out) == pytest.approx(opt, abs=1e-6)


def test_export_with_parameter_cap_and_per_type_caps(tmp_path):
    nodes = [{"id": "a", "type": "t", "params": 5}, {"id": "b", "type": "t", "params": 1},
             {"id": "c", "type": "t", "params": 1}, {"id": "d", "type": "u", "params": 2},
             {"id": "e", "type": "u", "params": 2}]
    edges = [("a", "b", 1.0), ("b", "c", 2.0), ("a", "c", -1.5), ("d", "e", 3.0)]
    inst = Instance.build(nodes, edges, 4, max_classes_per_type={"u": 1}, max_params=8)
    opt = brute_force(inst)[0]
    assert read_back_optimum(export(inst, tmp_path / "m.mps")) == pytest.approx(opt, abs=1e-6)
    assert read_back_optimum(export(inst, tmp_path / "m.lp", symmetry=False)) == pytest.approx(opt, abs=1e-6)


def test_export_rejects_bad_format_and_directory(tmp_path):
    inst, _ = case(0)
    with pytest.raises(InputError, match="format"):
        export(inst, tmp_path / "m.txt")
    with pytest.raises(InputError, match="directory"):
        export(inst, tmp_path / "missing" / "m.lp")


def test_first_highs_banner_goes_to_stderr():
    """highspy prints a banner on fd 1 at the first Highs() of a process: the guard must move it."""
    code = "from geoshare_opt.solvers.quiet import new_highs; new_highs()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == ""


@pytest.mark.parametrize("solver", ["highs", "pulp", "cpsat"])
def test_tiny_weights_are_solved_exactly(solver):
    """Weights of order 1e-9 (small curvature damage) sit below MIP solvers' absolute gap tolerance; the
    normalised objective keeps the answers exact."""
    from geoshare_opt import solve
    from exact_cases import case
    checked = 0
    for seed in range(40):
        inst, opt = case(seed)
        if opt is None:
            continue
        d = inst.to_dict()
        for e in d["edges"]:
            if "w" in e:
                e["w"] *= 1e-9
        tiny = Instance.from_dict(d)
        r = solve(tiny, solver, native={"hint": False})
        assert r.termination == "optimal"
        assert r.objective == pytest.approx(opt * 1e-9, abs=1e-15), seed
        checked += 1
    assert checked >= 25
