"""torch thread counts side by side: the same `geoshare-opt analyze minilm` run with --threads 1 and --threads 2,
alternating, each a fresh process, with the load average recorded before and after every run.

    python benchmarks/threads/run.py [--threads 1,2] [--repeats 3] [--samples 32] [--burners 0]

``--burners B`` starts B busy-looping processes for the duration (a stand-in for other jobs on a shared machine;
they are stopped at the end). Prints one JSON line per run (threads, wall s, CPU s, load before/after)."""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def one_run(threads: int, samples: int, out: str) -> dict:
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "geoshare_opt.cli", "analyze", "minilm", "--samples", str(samples),
                           "--ratio", "0.5", "--threads", str(threads), "-q", "-o", out],
                          capture_output=True, text=True, env={k: v for k, v in os.environ.items()
                                                               if k not in ("OMP_NUM_THREADS", "GEOSHARE_THREADS")})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"threads": threads, "rc": proc.returncode, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--burners", type=int, default=0)
    args = ap.parse_args()
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.burners)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.repeats):
                for t in map(int, args.threads.split(",")):
                    row = one_run(t, args.samples, os.path.join(tmp, f"i{t}.json"))
                    print(json.dumps({"repeat": r, "burners": args.burners, **row}), flush=True)
    finally:
        for b in burners:
            b.terminate()
            b.wait()


if __name__ == "__main__":
    main()
