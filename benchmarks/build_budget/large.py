"""Wall time and peak memory of the exact backends under a time limit on instances whose models are too large to
build: the issue-14 cases (a dense 400-node single-type instance; 20,000 nodes with 1,000,000 edges), each solve a
fresh `geoshare-opt solve` process measured by GNU time.

    python benchmarks/build_budget/large.py [--cases dense400,sparse20k] [--solvers cpsat,highs,pulp] [--limit 10]

Writes the instances under benchmarks/build_budget/data/ (not committed; regenerated from the seed) and prints one
JSON line per (case, solver): wall seconds of the process (reading a 1M-edge instance included), max RSS, the
solve's own seconds (``solve_s``: what the time limit bounds), termination, objective and the result's message.
``GEOSHARE_REPO=DIR`` runs another checkout's code (e.g. the commit before the fix) on the same instances."""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def make(case: str) -> Path:
    path = HERE / "data" / f"{case}.json"
    if path.exists():
        return path
    from geoshare_opt.instance import Instance
    rng = np.random.default_rng(0)
    if case == "dense400":
        n = 400
        iu, ju = np.triu_indices(n, 1)
        k = 8
    else:                                   # 20,000 nodes, 1,000,000 distinct random edges
        n, m = 20_000, 1_000_000
        codes = np.unique(rng.integers(0, n * n, size=int(m * 1.2)))
        iu, ju = codes // n, codes % n
        keep = iu < ju
        iu, ju = iu[keep][:m], ju[keep][:m]
        k = 64
    w = rng.normal(size=len(iu))
    nodes = [{"id": f"n{i}", "type": "t"} for i in range(n)]
    edges = [(f"n{a}", f"n{b}", float(x)) for a, b, x in zip(iu.tolist(), ju.tolist(), w.tolist())]
    path.parent.mkdir(exist_ok=True)
    Instance.build(nodes, edges, k, name=case).save(path)
    return path


def run(path: Path, solver: str, limit: float) -> dict:
    cmd = ["/usr/bin/time", "-v", "timeout", "300", sys.executable, "-m", "geoshare_opt.cli", "solve", str(path),
           "--solver", solver, "--time-limit", str(limit), "-q"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cwd = None
    if os.environ.get("GEOSHARE_REPO"):      # `-m` puts the working directory first on sys.path: run from there
        env["PYTHONPATH"] = cwd = os.environ["GEOSHARE_REPO"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", out.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr)
    h, m, s = wall.groups()
    row = {"solver": solver, "limit_s": limit, "rc": out.returncode,
           "wall_s": round(int(h or 0) * 3600 + int(m) * 60 + float(s), 1),
           "max_rss_mb": round(int(rss.group(1)) / 1024)}
    try:
        res = json.loads(out.stdout)
        row.update(solve_s=round(res["wall_time_s"], 1), termination=res["termination"], objective=res["objective"],
                   message=res["message"][:160])
    except ValueError:
        row["stderr"] = out.stderr.strip().splitlines()[:2]
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="dense400,sparse20k")
    ap.add_argument("--solvers", default="cpsat,highs,pulp")
    ap.add_argument("--limit", type=float, default=10.0)
    args = ap.parse_args()
    print(json.dumps({"load": os.getloadavg()}), flush=True)
    for case in args.cases.split(","):
        path = make(case)
        for solver in args.solvers.split(","):
            print(json.dumps({"case": case, **run(path, solver, args.limit)}), flush=True)
    print(json.dumps({"load": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
