"""Exact backends: time to a proven optimum against the number of nodes (issue 2, benchmark 3).

Families (one instance per size, seeded by the size; weights uniform in [-1, 1], 3 decimals, every pair an edge):
  single  one type of n nodes, at most K = k classes
  multi   three types of n nodes each (edges inside types only), at most k classes per type and K = 3k - 1 in total,
          so the per-type decomposition has to trade a class between types
Configurations: cpsat / highs / pulp (CBC) with the default model (per-type decomposition, symmetry breaking,
triangle cuts), each without symmetry breaking, and cpsat / highs without triangle cuts and without the
decomposition (multi only). Every run uses one thread and seed 0. Once a configuration misses the limit at some
size it is not run on larger sizes of that family (marked "skip").

    python benchmarks/solvers/exact/run.py            # full: sizes 8..28, 60 s per solve
    python benchmarks/solvers/exact/run.py --quick    # sizes 8..24, 20 s per solve

Writes results.csv, results.json, README.md (table regenerated from this run) and time_vs_nodes.png here
(or in --out).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

from geoshare_opt import solve
from geoshare_opt.instance import Instance

HERE = Path(__file__).resolve().parent

CONFIGS = {  # name -> (solver, native options, families)
    "cpsat": ("cpsat", {}, ("single", "multi")),
    "cpsat no-symmetry": ("cpsat", {"symmetry": False}, ("single", "multi")),
    "cpsat no-triangles": ("cpsat", {"triangles": False}, ("single", "multi")),
    "cpsat monolithic": ("cpsat", {"decompose": False}, ("multi",)),
    "highs": ("highs", {}, ("single", "multi")),
    "highs no-symmetry": ("highs", {"symmetry": False}, ("single", "multi")),
    "highs no-triangles": ("highs", {"triangles": False}, ("single", "multi")),
    "highs monolithic": ("highs", {"decompose": False}, ("multi",)),
    "pulp-cbc": ("pulp", {}, ("single", "multi")),
    "pulp-cbc no-symmetry": ("pulp", {"symmetry": False}, ("single", "multi")),
}


def dense_signed(n_per_type: int, n_types: int, k: int, seed: int) -> Instance:
    rng = np.random.default_rng(seed)
    nodes, edges = [], []
    for t in range(n_types):
        ids = [f"t{t}.n{i}" for i in range(n_per_type)]
        nodes += [{"id": x, "type": f"t{t}", "params": 1} for x in ids]
        for i in range(n_per_type):
            for j in range(i + 1, n_per_type):
                w = round(float(rng.uniform(-1.0, 1.0)), 3)
                edges.append((ids[i], ids[j], w if w != 0 else 0.001))
    if n_types == 1:
        return Instance.build(nodes, edges, k, name=f"single-n{n_per_type}-k{k}")
    return Instance.build(nodes, edges, k * n_types - 1, max_classes_per_type={f"t{t}": k for t in range(n_types)},
                          name=f"multi{n_types}-n{n_per_type}-k{k}")


def warm_up(configs: list[str]) -> None:
    """One untimed tiny solve per solver: library imports and the greedy's JIT compilation are not solve time."""
    tiny = dense_signed(5, 2, 2, seed=0)
    for solver in sorted({CONFIGS[c][0] for c in configs}):
        solve(tiny, solver)


def run(sizes: list[int], k: int, time_limit: float, configs: list[str], families: list[str]) -> list[dict]:
    warm_up(configs)
    rows = []
    for family in families:
        failed: set[str] = set()
        for n in sizes:
            inst = dense_signed(n, 1 if family == "single" else 3, k, seed=n)
            for name in configs:
                solver, native, fams = CONFIGS[name]
                if family not in fams:
                    continue
                row = {"family": family, "nodes_per_type": n, "nodes": len(inst.nodes), "k": k, "config": name,
                       "solver": solver, "time_limit_s": time_limit}
                if name in failed:
                    rows.append({**row, "termination": "skip"})
                    continue
                t0 = time.perf_counter()
                r = solve(inst, solver, time_limit=time_limit, seed=0, threads=1, native=native)
                wall = time.perf_counter() - t0
                row.update(termination=r.termination, objective=r.objective, bound=r.bound, gap=r.gap,
                           wall_s=round(wall, 3), subsolves=r.stats.get("subsolves"))
                rows.append(row)
                print(f"{family:6s} n={n:3d} {name:22s} {r.termination:10s} obj={r.objective} bound={r.bound} "
                      f"{wall:7.2f}s", file=sys.stderr, flush=True)
                if r.termination != "optimal":
                    failed.add(name)
    return rows


def check_agreement(rows: list[dict]) -> list[str]:
    """Every configuration that proves optimality on an instance must report the same objective."""
    issues = []
    by_inst: dict[tuple, list] = {}
    for r in rows:
        if r.get("termination") == "optimal":
            by_inst.setdefault((r["family"], r["nodes_per_type"]), []).append(r)
    for key, rs in by_inst.items():
        vals = [r["objective"] for r in rs]
        if max(vals) - min(vals) > 1e-6 * max(1.0, abs(vals[0])):
            issues.append(f"{key}: optima disagree: " + ", ".join(f"{r['config']}={r['objective']}" for r in rs))
    return issues


def table(rows: list[dict], family: str, sizes: list[int], configs: list[str], time_limit: float) -> str:
    head = "| configuration | " + " | ".join(f"n={n}" for n in sizes) + " | largest proven |"
    sep = "|" + "---|" * (len(sizes) + 2)
    lines = [head, sep]
    for name in configs:
        if family not in CONFIGS[name][2]:
            continue
        cells, largest = [], "-"
        for n in sizes:
            r = next((r for r in rows if r["family"] == family and r["config"] == name and r["nodes_per_type"] == n), None)
            if r is None:
                cells.append("")
            elif r["termination"] == "optimal":
                cells.append(f"{r['wall_s']:.2f}")
                largest = str(n)
            elif r["termination"] == "skip":
                cells.append("skip")
            else:
                gap = "" if r.get("gap") is None else f" (gap {r['gap']:.2f})"
                cells.append(f">{time_limit:g}{gap}")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {largest} |")
    return "\n".join(lines)


def plot(rows: list[dict], configs: list[str], families: list[str], time_limit: float, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(families), figsize=(6.5 * len(families), 4.6), squeeze=False)
    for ax, family in zip(axes[0], families):
        for name in configs:
            if family not in CONFIGS[name][2]:
                continue
            rs = [r for r in rows if r["family"] == family and r["config"] == name and r["termination"] != "skip"]
            xs = [r["nodes_per_type"] for r in rs]
            ys = [r["wall_s"] if r["termination"] == "optimal" else time_limit for r in rs]
            if not xs:
                continue
            line, = ax.plot(xs, ys, marker="o", label=name, linestyle="--" if "no-" in name or "mono" in name else "-")
            miss = [(x, y) for x, y, r in zip(xs, ys, rs) if r["termination"] != "optimal"]
            if miss:
                ax.scatter(*zip(*miss), marker="x", s=80, color=line.get_color())
        ax.axhline(time_limit, color="grey", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("nodes per type")
        ax.set_ylabel("seconds to proven optimum (x = limit reached)")
        ax.set_title(f"{family}: dense signed, k={rows[0]['k']}" + (" per type, 3 types" if family == "multi" else ""))
        ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_readme(rows, sizes, configs, families, args, issues, path: Path, elapsed: float) -> None:
    cmd = "python benchmarks/solvers/exact/run.py" + (" --quick" if args.quick else "")
    extra = []
    if args.sizes:
        extra.append("--sizes " + " ".join(map(str, sizes)))
    if args.time_limit is not None:
        extra.append(f"--time-limit {args.time_limit:g}")
    if args.configs:
        extra.append("--configs " + ",".join(configs))
    if extra:
        cmd += " " + " ".join(extra)
    text = [
        "# Exact backends: time to a proven optimum",
        "",
        f"Generated by `{cmd}` ({elapsed / 60:.1f} min, {platform.processor() or platform.machine()}, "
        f"one thread per solve, seed 0). Cells: seconds to a proven optimum; `>{args.effective_limit:g} (gap g)`: "
        "the limit was reached (gap as defined in formulations/README.md); `skip`: not run after a miss at a "
        "smaller size. Instances and configurations are described in `run.py`'s docstring; raw rows in "
        "`results.csv` / `results.json`; plot in `time_vs_nodes.png`.",
        "",
    ]
    for family in families:
        text += [f"## {family}", "", table(rows, family, sizes, configs, args.effective_limit), ""]
    text += ["## Agreement", "",
             "Every configuration that proved an optimum on an instance reported the same objective."
             if not issues else "Disagreements (a bug):\n" + "\n".join(f"- {i}" for i in issues), ""]
    text += ["![time vs nodes](time_vs_nodes.png)", ""]
    notes = HERE / "NOTES.md"  # observations written by hand after a run, kept apart from the generated tables
    if notes.exists():
        text += [notes.read_text()]
    path.write_text("\n".join(text))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="sizes 8..24, 20 s per solve")
    ap.add_argument("--sizes", type=int, nargs="+", help="nodes per type")
    ap.add_argument("--k", type=int, default=4, help="classes per type (default 4)")
    ap.add_argument("--time-limit", type=float, help="seconds per solve (default 60; 20 with --quick)")
    ap.add_argument("--configs", help="comma-separated subset of: " + ", ".join(CONFIGS))
    ap.add_argument("--families", default="single,multi")
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--report-only", action="store_true",
                    help="rebuild README.md and the plot from results.json in --out without solving")
    args = ap.parse_args(argv)
    sizes = args.sizes or ([8, 12, 16, 20, 24] if args.quick else [8, 12, 16, 20, 24, 28])
    args.effective_limit = args.time_limit if args.time_limit is not None else (20.0 if args.quick else 60.0)
    configs = args.configs.split(",") if args.configs else list(CONFIGS)
    for c in configs:
        if c not in CONFIGS:
            ap.error(f"unknown configuration {c!r}")
    families = args.families.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        saved = json.loads((args.out / "results.json").read_text())
        rows, elapsed = saved["rows"], saved.get("elapsed_s", 0.0)
        sizes = sorted({r["nodes_per_type"] for r in rows})
        configs = [c for c in CONFIGS if any(r["config"] == c for r in rows)]
        families = [f for f in ("single", "multi") if any(r["family"] == f for r in rows)]
        args.effective_limit = rows[0]["time_limit_s"]
        args.quick, args.sizes, args.time_limit, args.configs = saved["args"]
    else:
        t0 = time.perf_counter()
        rows = run(sizes, args.k, args.effective_limit, configs, families)
        elapsed = time.perf_counter() - t0
    issues = check_agreement(rows)
    keys = ["family", "nodes_per_type", "nodes", "k", "config", "solver", "time_limit_s", "termination",
            "objective", "bound", "gap", "wall_s", "subsolves"]
    with open(args.out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in keys})
    (args.out / "results.json").write_text(json.dumps(
        {"rows": rows, "agreement_issues": issues, "elapsed_s": elapsed,
         "args": [args.quick, args.sizes, args.time_limit, args.configs]}, indent=1))
    plot(rows, configs, families, args.effective_limit, args.out / "time_vs_nodes.png")
    write_readme(rows, sizes, configs, families, args, issues, args.out / "README.md", elapsed)
    for i in issues:
        print("DISAGREEMENT:", i, file=sys.stderr)
    return 1 if issues else 0


if __name__ == "__main__":
    sys.exit(main())
