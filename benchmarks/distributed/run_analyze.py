"""``analyze`` on 2 gloo processes (torchrun) against one process, on the same calibration, side by side in one run.

    python benchmarks/distributed/run_analyze.py                 # both workloads, 3 rounds (a few minutes idle)
    python benchmarks/distributed/run_analyze.py --workloads lanczos-wide --rounds 5

Each round runs every configuration once, in turn, on every workload (so load drifts hit them alike): the command
``geoshare-opt analyze`` as one process with ``--threads 1`` and ``--threads 2``, and under ``torchrun --standalone
--nproc-per-node 2`` with ``--threads 1`` per process. Wall time is the whole command (interpreter start, torch import,
model load, curvature, pair weights, writing); ``curvature_s`` is the pass alone (``meta.timing``, rank 0). The
instance difference is the largest pair-weight difference between the 2-process instance and the 1-process,
1-thread one, over the largest weight. The load average is recorded before every round. Writes
``results/analyze.json`` and prints the markdown table of the README.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from geoshare_opt import Instance

HERE = Path(__file__).resolve().parent
WORKLOADS = {     # a curvature pass that dominates the command, and one that start-up dominates
    "lanczos-wide": ["digits-mlp", "--spec-option", "depth=8", "--spec-option", "hidden=256", "--estimator", "lanczos",
                     "--lanczos-steps", "30"],
    "diag": ["digits-mlp"],
}
CONFIGS = {"1 process, 1 thread": (1, 1), "1 process, 2 threads": (1, 2), "2 gloo processes × 1 thread": (2, 1)}
BASELINE = "1 process, 1 thread"


def command(processes: int, threads: int, args: list[str], out: str) -> list[str]:
    cli = ["-m", "geoshare_opt.cli", "analyze", *args, "--threads", str(threads), "-o", out, "-q"]
    if processes == 1:
        return [sys.executable, *cli]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", *cli]


def run_once(processes: int, threads: int, args: list[str], out: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    proc = subprocess.run(command(processes, threads, args, out), capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"analyze failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    meta = Instance.load(out).meta
    return {"wall_s": wall, "curvature_s": meta["timing"]["curvature_s"], "distributed": meta.get("distributed")}


def max_difference(a: str, b: str) -> float:
    wa = {(e.u, e.v): e.w for e in Instance.load(a).edges}
    wb = {(e.u, e.v): e.w for e in Instance.load(b).edges}
    return max(abs(wa[k] - wb[k]) for k in wa) / max(abs(w) for w in wa.values())


def measure(workloads: list[str], rounds: int, tmp: str) -> list[dict]:
    for name in workloads:      # trains and caches the model once, untimed
        run_once(1, 1, WORKLOADS[name], os.path.join(tmp, "warm.json"))
    rows = []
    for r in range(rounds):
        load = os.getloadavg()
        for name in workloads:
            outs = {}
            for label, (processes, threads) in CONFIGS.items():
                outs[label] = os.path.join(tmp, f"{name}-{processes}-{threads}.json")
                row = run_once(processes, threads, WORKLOADS[name], outs[label])
                rows.append({"round": r, "workload": name, "config": label, "load_before": load, **row})
            rows[-1]["max_rel_difference"] = max_difference(outs[BASELINE], outs["2 gloo processes × 1 thread"])
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| workload (`analyze` arguments) | configuration | wall s (median) | ratio to 1 process, 1 thread | "
             "curvature s (median) | ratio | max pair-weight difference / largest | load average before rounds |",
             "|---|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["workload"] for r in rows):
        mine = [r for r in rows if r["workload"] == name]
        med = {c: (statistics.median(r["wall_s"] for r in mine if r["config"] == c),
                   statistics.median(r["curvature_s"] for r in mine if r["config"] == c)) for c in CONFIGS}
        loads = sorted({round(r["load_before"][0], 1) for r in mine})
        diffs = [r["max_rel_difference"] for r in mine if "max_rel_difference" in r]
        for c in CONFIGS:
            wall, curv = med[c]
            diff = f"{max(diffs):.1e}" if c != BASELINE and CONFIGS[c][0] > 1 else ""
            lines.append(f"| {name} (`{' '.join(WORKLOADS[name])}`) | {c} | {wall:.2f} | "
                         f"{wall / med[BASELINE][0]:.2f} | {curv:.2f} | {curv / med[BASELINE][1]:.2f} | {diff} | "
                         f"{', '.join(map(str, loads))} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results" / "analyze.json"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(args.workloads, args.rounds, tmp)
    report = {"command": "python benchmarks/distributed/run_analyze.py " + " ".join(argv or sys.argv[1:]),
              "cpus": os.cpu_count(), "python": platform.python_version(), "rows": rows, "table": table(rows)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(report["table"])


if __name__ == "__main__":
    main()
