"""Heuristic colourings: every kind is feasible with the requested number of classes per type, the patterns are
the published ones, budgets size the class counts, and the module stays torch-free."""
import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from geoshare_opt.baselines import KINDS, baseline, pattern, uniform_counts
from geoshare_opt.checker import evaluate
from geoshare_opt.cli import cli
from geoshare_opt.errors import InputError
from geoshare_opt.instance import Instance


def network_instance(layers=6, roles=(("q", 16), ("up", 64)), max_params=None, shuffle=False, seed=0):
    """A transformer-like instance: one type per role, one node per layer (ids like the front end's)."""
    rng = np.random.default_rng(seed)
    nodes = [{"id": f"layer.{l}.{r}.weight", "type": f"{r}:{p}", "params": p, "layer": l}
             for r, p in roles for l in range(layers)]
    if shuffle:
        nodes = [nodes[i] for i in rng.permutation(len(nodes))]
    edges = [{"u": a["id"], "v": b["id"], "w": float(rng.normal())}
             for i, a in enumerate(nodes) for b in nodes[i + 1:] if a["type"] == b["type"]]
    return Instance.build(nodes, edges, len(nodes), max_params=max_params)


@pytest.mark.parametrize("kind", [k for k in KINDS])
@pytest.mark.parametrize("layers", [1, 2, 5, 6, 7, 12])
def test_every_kind_feasible_with_requested_classes(kind, layers):
    inst = network_instance(layers, shuffle=True, seed=layers)
    for n in range(1, layers + 1):
        res = baseline(inst, kind, classes=n, seed=n)
        assert res.feasible and res.solver == f"baseline:{kind}" and res.termination == "completed"
        ev = evaluate(inst, res.assignment)
        assert ev.feasible and abs(ev.objective - res.objective) < 1e-9
        expect = {"all": 1, "none": layers}.get(kind, n)
        assert set(res.classes_per_type.values()) == {expect}


def test_patterns_match_the_literature():
    assert pattern("cycle-rev", 6, 3).tolist() == [0, 1, 2, 2, 1, 0]
    assert pattern("cycle", 6, 3).tolist() == [0, 1, 2, 0, 1, 2]
    assert pattern("sequence", 6, 3).tolist() == [0, 0, 1, 1, 2, 2]
    assert pattern("sequence", 6, 4).tolist() == [0, 0, 1, 2, 2, 3]
    assert pattern("adjacent", 6, 3).tolist() == [0, 0, 1, 1, 2, 2]
    assert pattern("adjacent", 6, 4).tolist() == [0, 0, 1, 1, 2, 3]
    assert pattern("adjacent", 6, 2).tolist() == [0, 0, 0, 1, 1, 1]
    assert pattern("sandwich", 6, 3).tolist() == [0, 1, 1, 1, 1, 2]
    assert pattern("sandwich", 6, 4).tolist() == [0, 1, 2, 1, 2, 3]
    assert pattern("all", 6, 4).tolist() == [0] * 6
    r1, r2 = pattern("random", 12, 5, np.random.default_rng(1)), pattern("random", 12, 5, np.random.default_rng(1))
    assert r1.tolist() == r2.tolist() and len(set(r1.tolist())) == 5


def test_layer_order_not_node_order():
    inst = network_instance(6, roles=(("q", 16),), shuffle=True, seed=3)
    res = baseline(inst, "cycle-rev", classes=3)
    by_layer = [res.assignment[f"layer.{l}.q.weight"] for l in range(6)]
    # canonical labels differ, the partition does not: 0 1 2 2 1 0
    assert by_layer[0] == by_layer[5] and by_layer[1] == by_layer[4] and by_layer[2] == by_layer[3]
    assert len(set(by_layer)) == 3


def test_counts_from_budget_and_ratio():
    total = 6 * (16 + 64)
    inst = network_instance(6, max_params=int(0.5 * total))
    assert uniform_counts(inst) == {"q:16": 3, "up:64": 3}
    assert uniform_counts(network_instance(6), ratio=0.2) == {"q:16": 4, "up:64": 4}
    res = baseline(inst, "sandwich")                       # default: what the budget allows
    assert res.feasible and res.stored_params <= inst.budget.max_params
    over = baseline(inst, "cycle", classes=5)              # more than the budget allows: reported, not hidden
    assert not over.feasible and "max_params" in over.message
    mixed = baseline(network_instance(6), "sequence", classes={"q:16": 2, "up:64": 5})
    assert mixed.classes_per_type == {"q:16": 2, "up:64": 5}


def test_bad_requests():
    inst = network_instance(4)
    with pytest.raises(InputError, match="kind"):
        baseline(inst, "zigzag", classes=2)
    with pytest.raises(InputError, match="ratio"):
        baseline(inst, "cycle", ratio=1.0)
    with pytest.raises(InputError, match="classes"):
        baseline(inst, "cycle", classes=0)
    with pytest.raises(InputError, match="unknown type"):
        baseline(inst, "cycle", classes={"nope": 2, "q:16": 1, "up:64": 1})


def test_hard_edges_reported_not_hidden():
    nodes = [{"id": f"l{i}", "type": "t", "params": 1, "layer": i} for i in range(4)]
    inst = Instance.build(nodes, [("l0", "l2", "hard")], 4)
    res = baseline(inst, "cycle", classes=2)
    assert not res.feasible and "hard edge" in res.message


def test_cli_baseline(tmp_path):
    inst = network_instance(6, max_params=int(0.5 * 6 * 80))
    path = tmp_path / "inst.json"
    inst.save(path)
    runner = CliRunner()
    r = runner.invoke(cli, ["baseline", str(path), "--kind", "cycle-rev"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["solver"] == "baseline:cycle-rev" and res["classes_per_type"] == {"q:16": 3, "up:64": 3}
    out = tmp_path / "res.json"
    r = runner.invoke(cli, ["baseline", str(path), "--kind", "random", "--classes", "2", "--seed", "4", "-o", str(out)])
    assert r.exit_code == 0 and r.stdout == "" and json.loads(out.read_text())["n_classes"] == 4
    r = runner.invoke(cli, ["baseline", str(path), "--kind", "cycle", "--classes", "6"])
    assert r.exit_code == 3 and "max_params" in r.stderr
    r = runner.invoke(cli, ["baseline", str(path), "--kind", "cycle", "--ratio", "2"])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["baseline", str(tmp_path / "missing.json"), "--kind", "all"])
    assert r.exit_code == 2 and "not found" in r.stderr


def test_baselines_do_not_import_torch():
    code = "import sys, geoshare_opt.baselines, geoshare_opt.cli.backend; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
