"""``compare`` on 2 local Dask workers against the serial loop, on the same independent jobs, side by side in one run.

    python benchmarks/distributed/run_compare.py                # 64 jobs, 1 round (about 6 minutes idle)
    python benchmarks/distributed/run_compare.py --repeats 3 --rounds 2

The study: 4 DIMACS graphs the repository carries (``instances/reference``), converted to soft colouring one class
below their chromatic number (queen5_5 K4, myciel5 K5, DSJC125.1 K4, games120 K8) × {anneal, cpsat} ×
``--repeats`` seeds; every run has a fixed amount of work and no wall-clock limit (anneal: its default move budget;
CP-SAT: one worker, ``max_deterministic_time`` 2), so both commands do the same work and must print the same rows
(checked, all columns but the wall times). Each round runs the command ``geoshare-opt compare ...`` as a fresh
process, then the same command with ``--workers 2``: each pays its own start-up (imports, the solvers' compiled
kernels loaded from the cache), the second also starting and closing the local cluster and its workers' imports.
Throughput = jobs per second of the whole command; the ratio is serial wall time over 2-worker wall time. CPU time is
user + system of the command and every process it started (the workers included): on a machine whose cores are busy
with other work, two workers get less than two cores, which the CPU column shows. The load average is recorded before
every command. Writes ``results/compare.json`` and prints the markdown table of the README.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GRAPHS = {"queen5_5": 4, "myciel5": 5, "DSJC125.1": 4, "games120": 8}     # DIMACS graph -> classes (chi - 1)
SOLVERS = "anneal,cpsat"
NATIVE = ["cpsat:max_deterministic_time=2"]
CLI = [sys.executable, "-m", "geoshare_opt.cli"]


def instances(tmp: str) -> list[str]:
    """The study's instances, converted from the carried DIMACS files (``geoshare-opt convert``)."""
    paths = []
    for graph, k in GRAPHS.items():
        out = os.path.join(tmp, f"{graph}_K{k}_soft.json")
        subprocess.run([*CLI, "convert", str(REPO / "instances" / "reference" / "dimacs" / f"{graph}.col"), "--soft",
                        "--k", str(k), "-o", out], check=True, capture_output=True, stdin=subprocess.DEVNULL)
        paths.append(out)
    return paths


def command(paths: list[str], repeats: int, extra: list[str]) -> list[str]:
    native = [arg for item in NATIVE for arg in ("--native", item)]
    return [*CLI, "compare", *paths, "--solvers", SOLVERS, "--repeats", str(repeats), *native, "-q", "--json", "-",
            *extra]


def timed(paths: list[str], repeats: int, extra: list[str]) -> dict:
    """Wall time, CPU time (user + system of the command and every process it started) and rows of one command."""
    load = os.getloadavg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(command(paths, repeats, extra), capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"compare failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {"wall_s": wall, "cpu_s": cpu, "rows": json.loads(proc.stdout), "load": load}


def same(a: list[dict], b: list[dict]) -> bool:
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows]
    return strip(a) == strip(b)


def table(rounds: list[dict], jobs: int) -> str:
    lines = ["| round | jobs | serial: wall s / CPU s | 2 local workers: wall s / CPU s | throughput ratio (serial wall / "
             "2-worker wall) | same rows | load average before (serial, 2 workers) |", "|---|---|---|---|---|---|---|"]
    for r in rounds:
        s, w = r["serial"], r["workers"]
        lines.append(f"| {r['round']} | {jobs} | {s['wall_s']:.1f} / {s['cpu_s']:.1f} | {w['wall_s']:.1f} / "
                     f"{w['cpu_s']:.1f} | {s['wall_s'] / w['wall_s']:.2f} | {'yes' if r['same_rows'] else 'NO'} | "
                     f"{s['load'][0]:.1f}, {w['load'][0]:.1f} |")
    total = {k: sum(r[k]["wall_s"] for r in rounds) for k in ("serial", "workers")}
    cpu = {k: sum(r[k]["cpu_s"] for r in rounds) for k in ("serial", "workers")}
    lines.append(f"| all | {jobs * len(rounds)} | {total['serial']:.1f} / {cpu['serial']:.1f} | {total['workers']:.1f} / "
                 f"{cpu['workers']:.1f} | {total['serial'] / total['workers']:.2f} | "
                 f"{'yes' if all(r['same_rows'] for r in rounds) else 'NO'} | |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=8, help="seeds per (instance, solver)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out", default=str(HERE / "results" / "compare.json"))
    args = ap.parse_args(argv)
    rounds = []
    with tempfile.TemporaryDirectory(prefix="compare-study-") as tmp:
        paths = instances(tmp)
        for r in range(args.rounds):
            serial = timed(paths, args.repeats, [])
            workers = timed(paths, args.repeats, ["--workers", "2"])
            rounds.append({"round": r, "same_rows": same(serial.pop("rows"), workers.pop("rows")), "serial": serial,
                           "workers": workers})
            print(f"round {r}: serial {serial['wall_s']:.1f} s, 2 workers {workers['wall_s']:.1f} s", file=sys.stderr)
    jobs = len(GRAPHS) * len(SOLVERS.split(",")) * args.repeats
    report = {"command": "python benchmarks/distributed/run_compare.py " + " ".join(argv or sys.argv[1:]),
              "compare": " ".join(["geoshare-opt"] + command([os.path.basename(p) for p in paths], args.repeats,
                                                             ["[--workers 2]"])[3:]),
              "instances": {g: f"{g}.col --soft --k {k}" for g, k in GRAPHS.items()}, "solvers": SOLVERS, "native": NATIVE, "repeats": args.repeats, "jobs": jobs,
              "cpus": os.cpu_count(), "python": platform.python_version(), "rounds": rounds,
              "table": table(rounds, jobs)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(report["table"])


if __name__ == "__main__":
    main()
