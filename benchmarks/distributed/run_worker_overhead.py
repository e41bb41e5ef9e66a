"""What a Dask worker costs one solver run: the same CP-SAT run in this process, on a 1-worker local cluster with Dask's
default settings, and on the 1-worker cluster ``--workers`` starts (``fanout.LOCAL_CONFIG``: profiler off).

    python benchmarks/distributed/run_worker_overhead.py        # 3 rounds (about 2 minutes idle)

The run: ``dimacs_queen5_5_K4_soft.json``, CP-SAT, one worker thread, ``max_deterministic_time`` 1 (a fixed amount
of work). Each round runs it once in every setting (after one untimed run in each, which loads the libraries).
Wall time and the CPU time of the process that ran it (user + system, all its threads: for a worker, its event
loop and Dask's profiler too). Writes ``results/worker_overhead.json`` and prints the README's table.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

from geoshare_opt import Instance
from geoshare_opt.compare import solve_job
from geoshare_opt.fanout import Cluster, connected

HERE = Path(__file__).resolve().parent
INSTANCE = HERE.parents[1] / "instances" / "dimacs_queen5_5_K4_soft.json"
NATIVE = {"max_deterministic_time": 1.0}


def measured_run(inst: Instance) -> tuple[float, float]:
    """(wall s, CPU s of this process) of one run."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    solve_job(inst, "cpsat", None, 0, 1, NATIVE, None)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter() - t0, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


@contextlib.contextmanager
def dask_defaults():
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:
        yield client


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results" / "worker_overhead.json"))
    args = ap.parse_args(argv)
    inst = Instance.load(INSTANCE)
    settings = {"this process": None, "Dask worker, Dask's defaults": dask_defaults,
                "Dask worker, --workers settings (profiler off)": lambda: connected(Cluster(workers=1, quiet=True))}
    runs: dict[str, list] = {name: [] for name in settings}
    measured_run(inst)
    loads = []
    for _ in range(args.rounds):
        loads.append(os.getloadavg()[0])
        for name, start in settings.items():
            if start is None:
                runs[name].append(measured_run(inst))
                continue
            with start() as client:
                client.submit(measured_run, inst, pure=False).result()           # the worker's imports
                runs[name].append(client.submit(measured_run, inst, pure=False).result())
        print(f"round {len(loads)}: " + ", ".join(f"{n} {r[-1][0]:.1f} s" for n, r in runs.items()), file=sys.stderr)
    base = statistics.median(w for w, _ in runs["this process"]), statistics.median(c for _, c in runs["this process"])
    lines = ["| where the run executes | wall s (median) | ratio | CPU s (median) | ratio |", "|---|---|---|---|---|"]
    for name, r in runs.items():
        wall, cpu = statistics.median(w for w, _ in r), statistics.median(c for _, c in r)
        lines.append(f"| {name} | {wall:.2f} | {wall / base[0]:.2f} | {cpu:.2f} | {cpu / base[1]:.2f} |")
    lines.append(f"\nload average before the rounds: {', '.join(f'{x:.1f}' for x in loads)}")
    report = {"command": "python benchmarks/distributed/run_worker_overhead.py " + " ".join(argv or sys.argv[1:]),
              "runs": runs, "loads": loads, "cpus": os.cpu_count(), "table": "\n".join(lines)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(report["table"])


if __name__ == "__main__":
    main()
