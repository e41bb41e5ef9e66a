"""Exact backends with and without their heuristic start, and their wall time under a short limit.

    python benchmarks/solvers/exact_seed/run.py                                  # after only (seed on / off)
    mkdir /tmp/before && git archive ffebdee geoshare_opt | tar -x -C /tmp/before   # the tree before this change
    python benchmarks/solvers/exact_seed/run.py --before /tmp/before --before-label ffebdee --ratios 0.2,0.5

Two cases, every run through ``geoshare_opt.solve`` (public API) in its own subprocess, after an untimed warm-up
solve (imports, numba JIT) so that a cold cache does not count against the limit:
  * ``tiny-gpt``: the 24-layer tiny-gpt tie instance of benchmarks/solvers/real (144 nodes, 6 types x 24 layers)
    with ``max_params`` = (1 - ratio) of the stored parameters, ``--time-limit`` (20 s): the objective of every
    exact backend with its default start (greedy + short anneal), with ``seed_heuristic=false`` (greedy only), and
    (``--before``) the older tree; ``dsatur``, ``anneal`` and ``auto`` for reference.
  * ``dense60``: one dense signed type, 60 nodes, K = 6, ``--dense-limit`` (2 s): the wall time of highs, pulp and
    cpsat (the model build, O(n^3) triangle rows, used to be uncounted).
Runs alternate between the trees case by case, so that load changes hit both alike. Writes results.csv,
results.json and README.md next to this file (or ``--out``).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
TINY_GPT = ROOT / "benchmarks" / "solvers" / "real" / "instances" / "tiny-gpt-tie.json"
EXACT = ("cpsat", "highs", "pulp")


# ---------------------------------------------------------------------- one run (in a subprocess)
def make_instance(case: str, ratio: float):
    import numpy as np
    from geoshare_opt import Instance
    if case == "tiny-gpt":
        inst = Instance.load(TINY_GPT)
        return inst.with_budget(len(inst.nodes), max_params=math.floor((1.0 - ratio) * float(inst.params.sum())))
    rng = np.random.default_rng(0)
    n = 60
    iu, ju = np.triu_indices(n, 1)
    w = np.round(rng.normal(size=len(iu)), 3)
    edges = [(f"n{i}", f"n{j}", float(x) or 0.5) for i, j, x in zip(iu, ju, w)]
    return Instance.build([{"id": f"n{i}", "type": "t"} for i in range(n)], edges, 6, name="dense60")


def one(spec: dict) -> dict:
    import geoshare_opt
    from geoshare_opt import Instance
    warm = Instance.build([{"id": f"w{i}", "type": "t"} for i in range(4)],
                          [("w0", "w1", 1.0), ("w1", "w2", -1.0), ("w2", "w3", 2.0)], 2)
    for s in {spec["solver"], "dsatur", "anneal"}:
        geoshare_opt.solve(warm, s)  # imports and JIT, untimed
    inst = make_instance(spec["case"], spec["ratio"])
    t0 = time.perf_counter()
    r = geoshare_opt.solve(inst, spec["solver"], time_limit=spec["time_limit"], seed=0, threads=1,
                           native=spec.get("native") or None)
    wall = time.perf_counter() - t0
    seed = r.stats.get("seed") or {}
    return {**spec, "wall_s": round(wall, 3), "termination": r.termination, "message": r.message,
            "objective": r.objective,
            "bound": r.bound, "seed_used": seed.get("used"), "seed_anneal_s": seed.get("anneal_s"),
            "cuts_truncated": len(r.stats.get("cuts_truncated", [])) if "cuts_truncated" in r.stats else None}


def run_one(spec: dict, tree: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    out = subprocess.run([sys.executable, __file__, "--one", json.dumps(spec)], capture_output=True, text=True,
                         env=env, cwd=str(tree), timeout=spec["time_limit"] + 300)
    if out.returncode != 0:
        return {**spec, "error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- the plan
def plan(args) -> list[tuple[str, dict]]:
    """(tree label, spec) in the order they run: trees alternate for every (case, solver)."""
    trees = ["after"] + (["before"] if args.before else [])
    runs = []
    for ratio in args.ratios:
        base = {"case": "tiny-gpt", "ratio": ratio, "time_limit": args.time_limit}
        for solver in ("dsatur", "anneal", "auto"):
            runs.append(("after", {**base, "solver": solver, "variant": "default"}))
        for solver in EXACT:
            for tree in trees:
                runs.append((tree, {**base, "solver": solver, "variant": "default"}))
            runs.append(("after", {**base, "solver": solver, "variant": "seed_heuristic=false",
                                   "native": {"seed_heuristic": False}}))
    for solver in EXACT:
        for tree in trees:
            runs.append((tree, {"case": "dense60", "ratio": None, "time_limit": args.dense_limit, "solver": solver,
                                "variant": "default"}))
    return runs


def load_avg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def fmt(x, digits: int = 6) -> str:
    return "—" if x is None else (f"{x:.{digits}g}" if isinstance(x, float) else str(x))


def write_readme(out: Path, rows: list[dict], meta: dict) -> None:
    lines = ["# Exact backends: heuristic start and time-limited model building", "",
             f"Generated by `{meta['command']}` (numbers below are that command's output: results.csv, results.json).",
             f"Machine: {os.cpu_count()} CPUs shared with other jobs; load average (1, 5, 15 min) {meta['load_start']} "
             f"at the start and {meta['load_end']} at the end; total {meta['total_s']:.0f} s. Every run: "
             "`geoshare_opt.solve(instance, solver, time_limit=T, seed=0, threads=1)` in a fresh process after an "
             "untimed warm-up solve. `before` = " + (meta["before"] or "not run") + ".", "",
             "Start (column `start`): `default` = this tree's default (exact backends: the best of DSatur and a short "
             "anneal, at most 10 % of the limit, 2 s and 10 ms per node, as hint / MIP start); `seed_heuristic=false` = DSatur only "
             "(the older start, with this tree's time-limited model build); tree `before` = the older package.", "",
             "## tiny-gpt (144 nodes, 6 types x 24 layers), objective at the time limit", "",
             "Lower is better; `x auto` = objective / auto's objective in the same table.", "",
             "| ratio | solver | tree | start | termination | objective | x auto | seed used | wall s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for ratio in sorted({r["ratio"] for r in rows if r["case"] == "tiny-gpt"}):
        sel = [r for r in rows if r["case"] == "tiny-gpt" and r["ratio"] == ratio]
        auto = next((r["objective"] for r in sel if r["solver"] == "auto" and r.get("objective")), None)
        for r in sel:
            ratio_auto = r["objective"] / auto if auto and r.get("objective") is not None else None
            term = r.get("termination", r.get("error"))
            lines.append(f"| {ratio} | {r['solver']} | {r['tree']} | {r['variant']} | {term} "
                         f"| {fmt(r.get('objective'))} | {fmt(ratio_auto, 3)} | {fmt(r.get('seed_used'))} "
                         f"| {fmt(r.get('wall_s'), 3)} |")
    lines += ["", f"## dense60 (one signed type, 60 nodes, K = 6): wall time under a short limit", "",
              "| solver | tree | limit s | wall s | termination | objective | sub-solves with cuts truncated |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["case"] == "dense60":
            lines.append(f"| {r['solver']} | {r['tree']} | {r['time_limit']} | {fmt(r.get('wall_s'), 3)} "
                         f"| {r.get('termination', r.get('error'))} | {fmt(r.get('objective'))} "
                         f"| {fmt(r.get('cuts_truncated'))} |")
    lines.append("")
    (out / "README.md").write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--before", type=Path, help="a directory holding an older geoshare_opt package tree")
    ap.add_argument("--before-label", help="what --before is (e.g. its commit), for the README")
    ap.add_argument("--time-limit", type=float, default=20.0)
    ap.add_argument("--dense-limit", type=float, default=2.0)
    ap.add_argument("--ratios", type=lambda s: [float(x) for x in s.split(",")], default=[0.2])
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--render", action="store_true", help="only rewrite README.md from --out's results.json")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(json.loads(args.one))))
        return
    if args.render:
        data = json.loads((args.out / "results.json").read_text())
        write_readme(args.out, data["runs"], data["meta"])
        return
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"command": shlex.join(["python", "benchmarks/solvers/exact_seed/run.py", *sys.argv[1:]]),
            "before": (f"{args.before_label or ''} ({args.before})".strip() if args.before else None),
            "load_start": load_avg()}
    t0 = time.perf_counter()
    rows = []
    for tree, spec in plan(args):
        row = {**run_one(spec, ROOT if tree == "after" else args.before.resolve()), "tree": tree}
        row.pop("native", None)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    meta.update(total_s=time.perf_counter() - t0, load_end=load_avg())
    fields = ["case", "ratio", "solver", "tree", "variant", "time_limit", "wall_s", "termination", "objective",
              "bound", "seed_used", "seed_anneal_s", "cuts_truncated", "error"]
    with open(args.out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "runs": rows}, indent=1))
    write_readme(args.out, rows, meta)


if __name__ == "__main__":
    main()
