"""``sweep``: every budget's optimum against brute force, monotone frontiers, proven flags, infeasible budgets, the
heuristics on the same axes, and the command line (JSON, CSV, plot, clean errors)."""
from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from conformance import brute_force_optimum
import geoshare_opt
from geoshare_opt import InputError, Instance
from geoshare_opt.cli import cli
from geoshare_opt.budget_sweep import best_at, heuristic_points, sweep
from geoshare_opt.solvers.curves import merge_down, parts_of
from test_classcost import write_tied_instance


def random_instance(seed: int, sizes=(4, 3), hard_p=0.0, caps=None, params=None) -> Instance:
    rng = np.random.default_rng(seed)
    nodes, edges = [], []
    for t, n in enumerate(sizes):
        ids = [f"t{t}n{i}" for i in range(n)]
        p = params[t] if params else 10 * (t + 1)
        nodes += [{"id": i, "type": f"T{t}", "params": int(p if np.isscalar(p) else p[k]), "layer": k}
                  for k, i in enumerate(ids)]
        for a, b in itertools.combinations(ids, 2):
            r = rng.random()
            if r < hard_p:
                edges.append((a, b, "hard"))
            elif r < 0.9:
                edges.append((a, b, float(np.round(rng.normal(0.6, 1.0), 3))))
    kw = {"max_classes_per_type": caps} if caps else {}
    return Instance.build(nodes, edges, len(nodes), **kw)


def brute(inst: Instance, **budget) -> float | None:
    return brute_force_optimum(inst.with_budget(keep_caps=False, max_classes_per_type=inst.budget.max_classes_per_type
                                                or None, **budget))


@pytest.mark.parametrize("seed", range(6))
def test_every_budget_equals_brute_force(seed):
    inst = random_instance(seed, hard_p=0.25 if seed % 2 else 0.0, caps={"T0": 3} if seed == 4 else None)
    res = sweep(inst, "cpsat")
    assert res.complete and not res.interrupted
    n = len(inst.nodes)
    for row in res.rows:
        K = row["budget"]["max_classes"]
        opt = brute(inst, max_classes=K)
        if opt is None:
            assert row["infeasible"] and row["proven"] and row["damage"] is None
            continue
        assert row["feasible"] and row["proven"] and row["damage"] == pytest.approx(opt, abs=1e-9)
        assert row["n_classes"] <= K and row["gap"] == 0.0
        labels = np.array(row["labels"])
        assert len(np.unique(labels)) == row["n_classes"]
    # the parameter frontier: at its own points and at every budget in between
    total = int(inst.params.sum())
    need = sum(int(inst.params[inst.type_members(t)].max()) for t in inst.types)   # one class per type
    for P in sorted({r["stored_params"] for r in res.frontier} | set(range(0, total + 1, 5))):
        opt = brute(inst, max_classes=n, max_params=P) if P >= need else None
        best = best_at(res.frontier, P)
        if opt is None:
            assert best is None
        else:
            assert best is not None and best["damage"] == pytest.approx(opt, abs=1e-9), P


def test_frontiers_are_monotone_and_the_last_row_is_no_sharing():
    inst = random_instance(11, sizes=(5, 4))
    res = geoshare_opt.sweep(inst.to_dict(), "highs")            # the package-level API, any instance form
    dmg = [r["damage"] for r in res.rows]
    assert all(b <= a + 1e-12 for a, b in zip(dmg, dmg[1:]))
    assert res.rows[0]["budget"]["max_classes"] == 2 and res.rows[-1]["budget"]["max_classes"] == 9
    assert res.rows[-1]["stored_params"] == int(inst.params.sum()) or res.rows[-1]["damage"] < 0
    params = [r["stored_params"] for r in res.frontier]
    front = [r["damage"] for r in res.frontier]
    assert params == sorted(params) and all(b < a for a, b in zip(front, front[1:]))
    comp = [r["compression"] for r in res.frontier]
    assert comp == sorted(comp, reverse=True) and 0 <= comp[-1] < comp[0] < 1
    for t in res.types:
        vals = [p["objective"] for p in t["points"]]
        assert all(b <= a + 1e-12 for a, b in zip(vals, vals[1:]))


def test_hard_edges_make_small_budgets_infeasible_rows():
    nodes = [{"id": f"n{i}", "type": "t"} for i in range(3)] + [{"id": "m", "type": "u"}]
    edges = [("n0", "n1", "hard"), ("n1", "n2", "hard"), ("n0", "n2", "hard")]
    res = sweep(Instance.build(nodes, edges, 4), "cpsat")
    by_k = {r["budget"]["max_classes"]: r for r in res.rows}
    assert by_k[2]["infeasible"] and by_k[3]["infeasible"] and by_k[2]["proven"]
    assert by_k[4]["feasible"] and by_k[4]["damage"] == 0.0
    assert [r["budget"]["max_params"] for r in res.frontier] == [4]


def test_heuristic_backend_rows_are_not_proven_and_time_limit_zero_keeps_bounds():
    inst = random_instance(3, sizes=(6, 5))
    res = sweep(inst, "dsatur")
    exact = sweep(inst, "cpsat")
    assert not res.complete
    for a, b in zip(res.rows, exact.rows):
        assert a["damage"] >= b["damage"] - 1e-9           # never better than the optimum
        assert a["bound"] <= b["damage"] + 1e-9            # the bound is a bound
        if not a["proven"]:
            assert a["gap"] is not None and a["gap"] > 0
    cut = sweep(inst, "cpsat", time_limit=0)
    assert not cut.complete and all(r["feasible"] for r in cut.rows)   # the greedy and merges still give colourings
    assert any(not r["proven"] for r in cut.rows)
    assert all(r["bound"] <= r["damage"] + 1e-9 for r in cut.rows)


def test_mixed_parameter_counts_flag_the_frontier():
    inst = random_instance(5, sizes=(4, 3), params=[[10, 10, 3, 3], 7])
    res = sweep(inst, "cpsat")
    assert not res.params_exact and res.notes
    for r in res.rows:                                       # stored params are the colouring's own
        assert r["stored_params"] <= sum(sorted(inst.params[inst.type_members(t)])[-1] * k
                                         for t, k in r["classes_per_type"].items())


def test_heuristics_never_beat_the_frontier():
    inst = random_instance(7, sizes=(6, 6))
    res = sweep(inst, "cpsat")
    pts = heuristic_points(inst, ["all", "sequence", "cycle", "cycle-rev", "adjacent", "sandwich", "random", "none"],
                           seeds=range(3))
    assert {p["kind"] for p in pts} >= {"all", "none", "sandwich"}
    assert len([p for p in pts if p["kind"] == "random"]) == 6 * 3
    for p in pts:
        best = best_at(res.frontier, p["stored_params"])
        assert best is not None and best["damage"] <= p["damage"] + 1e-9, p
    with pytest.raises(InputError, match="unknown heuristic"):
        heuristic_points(inst, ["diagonal"])


def test_merge_down_respects_hard_edges():
    inst = Instance.build([{"id": f"n{i}", "type": "t"} for i in range(4)],
                          [("n0", "n1", "hard"), ("n2", "n3", 5.0), ("n0", "n2", 1.0)], 4)
    part = parts_of(inst)[0]
    two = merge_down(part, np.arange(4), 2)
    assert two[0] != two[1] and len(set(two.tolist())) == 2
    assert merge_down(part, np.arange(4), 1) is None


def test_true_cost_column(tmp_path):
    from geoshare_opt.classcost import load_class_cost
    path = write_tied_instance(tmp_path, layers=(4, 3))
    inst = Instance.load(path)
    cc = load_class_cost(inst, path)
    res = sweep(inst, "cpsat", class_cost=cc)
    for r in res.rows:
        assert r["true_cost"] == pytest.approx(cc(np.array(r["labels"])))
        assert r["true_cost"] <= r["damage"] + 1e-9        # a pair sum over-counts classes of 3+ (h >= 0)


# ---------------------------------------------------------------------- the command line
def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(res, needle):
    assert res.exit_code == 2, (res.exit_code, res.stderr)
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], res.stderr


def test_cli_sweep_json_csv_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    path = write_tied_instance(tmp_path, layers=(4, 3))
    csv_path, png = tmp_path / "s.csv", tmp_path / "s.png"
    res = run("sweep", path, "--true-cost", "--csv", csv_path, "--plot", png, "--heuristics", "sequence,random",
              "--random-seeds", "2")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["format"] == "geoshare-sweep" and out["complete"]
    assert len(out["rows"]) == 7 - 2 + 1 and all("true_cost" in r for r in out["rows"])
    assert {h["kind"] for h in out["heuristics"]} == {"sequence", "random"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("frontier,max_classes,max_params")
    assert len(lines) == 1 + len(out["rows"]) + len(out["frontier"])
    assert "proven" in res.stderr                              # the table for people
    csv_only = run("sweep", path, "--csv", "-", "--quiet")
    assert csv_only.exit_code == 0 and csv_only.stdout.startswith("frontier,") and csv_only.stderr == ""


def test_cli_sweep_errors(tmp_path, instance_file, monkeypatch):
    one_line_error(run("sweep", instance_file, "--true-cost"), "names no curvature sidecar")
    one_line_error(run("sweep", instance_file, "--plot", tmp_path / "missing" / "x.png"), "does not exist")
    one_line_error(run("sweep", instance_file, "--plot", tmp_path / "x.txt"), ".png")
    one_line_error(run("sweep", instance_file, "--heuristics", "sequence,zigzag"), "zigzag")
    one_line_error(run("sweep", instance_file, "--solver", "nope"), "nope")
    old = write_tied_instance(tmp_path, weights=False, name="old")
    one_line_error(run("sweep", old, "--true-cost"), "holds no weights")
    monkeypatch.setitem(sys.modules, "matplotlib", None)      # matplotlib not installed
    one_line_error(run("sweep", instance_file, "--plot", tmp_path / "x.png"), "matplotlib")
    assert not (tmp_path / "x.png").exists()


def test_sweep_stack_never_imports_torch(tmp_path):
    path = write_tied_instance(tmp_path, layers=(3,), shapes=((2, 2),))
    code = ("import sys, geoshare_opt.classcost as c, geoshare_opt.cli.sweep;"
            "from geoshare_opt import Instance, solve, sweep;"
            f"i = Instance.load({str(path)!r}); cc = c.load_class_cost(i, {str(path)!r});"
            "sweep(i, 'cpsat', class_cost=cc);"
            f"solve(i, 'classcost', native={{'sidecar': {str(path.with_name('net.curvature.safetensors'))!r}}});"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("seed", range(8))
def test_forest_bound_is_a_lower_bound_and_infinite_only_when_infeasible(seed):
    from geoshare_opt.budget_sweep import forest_bounds, lightest_forest, linkage_labels
    inst = random_instance(seed, sizes=(6,), hard_p=0.3 if seed % 2 else 0.0)
    part = parts_of(inst.with_budget(6))[0]
    forest = lightest_forest(part)
    bounds = forest_bounds(part, forest)
    for k in range(1, 7):
        opt = brute(inst, max_classes=k)
        if opt is not None:
            assert bounds[k] <= opt + 1e-9, (k, bounds[k], opt)
        if bounds[k] == np.inf:
            assert opt is None
        lab = linkage_labels(part, forest, k)
        assert lab is None or part.feasible(lab, k)
