"""``compare`` on 2 local Dask workers against the serial loop, on the same independent jobs, side by side in one run.

    python benchmarks/distributed/run_compare.py                # 32 jobs, 2 rounds (about 5 minutes idle)
    python benchmarks/distributed/run_compare.py --repeats 3 --rounds 1

The study: 4 committed DIMACS instances (soft colouring) × {anneal, cpsat} × ``--repeats`` seeds, every run with a
fixed amount of work and no wall-clock limit (anneal: its default move budget; CP-SAT: one worker,
``max_deterministic_time`` 2), so both commands do the same work and must print the same rows (checked, all columns
but the wall times). Each round runs the command ``geoshare-opt compare ...`` as a fresh process, then the same
command with ``--workers 2``: each pays its own start-up (imports, the solvers' compiled kernels loaded from the
cache), and the second also starting and closing the local cluster and its workers' imports. Throughput = jobs per
second of the whole command; the ratio is serial wall time over 2-worker wall time. The load average is recorded
before every command. Writes ``results/compare.json`` and prints the markdown table of the README.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
INSTANCES = ["dimacs_huck_K10_soft.json", "dimacs_jean_K9_soft.json", "dimacs_queen5_5_K4_soft.json",
             "dimacs_myciel4_K4_soft.json"]
SOLVERS = "anneal,cpsat"
NATIVE = ["cpsat:max_deterministic_time=2"]


def command(repeats: int, extra: list[str]) -> list[str]:
    paths = [str(REPO / "instances" / name) for name in INSTANCES]
    native = [arg for item in NATIVE for arg in ("--native", item)]
    return [sys.executable, "-m", "geoshare_opt.cli", "compare", *paths, "--solvers", SOLVERS, "--repeats",
            str(repeats), *native, "-q", *extra]


def timed(repeats: int, extra: list[str]) -> tuple[float, list[dict], tuple]:
    load = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(command(repeats, extra), capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"compare failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return wall, json.loads(proc.stdout), load


def same(a: list[dict], b: list[dict]) -> bool:
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows]
    return strip(a) == strip(b)


def table(rounds: list[dict], jobs: int) -> str:
    lines = ["| round | jobs | serial wall s | 2 local workers wall s | throughput ratio (serial time / 2-worker time) "
             "| same rows | load average before (serial, 2 workers) |", "|---|---|---|---|---|---|---|"]
    for r in rounds:
        lines.append(f"| {r['round']} | {jobs} | {r['serial_s']:.1f} | {r['workers_s']:.1f} | "
                     f"{r['serial_s'] / r['workers_s']:.2f} | {'yes' if r['same_rows'] else 'NO'} | "
                     f"{r['load_serial'][0]:.1f}, {r['load_workers'][0]:.1f} |")
    total_serial = sum(r["serial_s"] for r in rounds)
    total_workers = sum(r["workers_s"] for r in rounds)
    lines.append(f"| all | {jobs * len(rounds)} | {total_serial:.1f} | {total_workers:.1f} | "
                 f"{total_serial / total_workers:.2f} | {'yes' if all(r['same_rows'] for r in rounds) else 'NO'} | |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=4, help="seeds per (instance, solver)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results" / "compare.json"))
    args = ap.parse_args(argv)
    rounds = []
    for r in range(args.rounds):
        serial_s, serial_rows, load_serial = timed(args.repeats, [])
        workers_s, worker_rows, load_workers = timed(args.repeats, ["--workers", "2"])
        rounds.append({"round": r, "serial_s": serial_s, "workers_s": workers_s, "load_serial": load_serial,
                       "load_workers": load_workers, "same_rows": same(serial_rows, worker_rows)})
        print(f"round {r}: serial {serial_s:.1f} s, 2 workers {workers_s:.1f} s", file=sys.stderr)
    jobs = len(INSTANCES) * len(SOLVERS.split(",")) * args.repeats
    report = {"command": "python benchmarks/distributed/run_compare.py " + " ".join(argv or sys.argv[1:]),
              "compare": " ".join(["geoshare-opt"] + command(args.repeats, ["[--workers 2]"])[3:]),
              "instances": INSTANCES, "solvers": SOLVERS, "native": NATIVE, "repeats": args.repeats, "jobs": jobs,
              "cpus": os.cpu_count(), "python": platform.python_version(), "rounds": rounds,
              "table": table(rounds, jobs)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(report["table"])


if __name__ == "__main__":
    main()
