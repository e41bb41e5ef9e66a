"""Benchmark 3 — wall time of the real command ``geoshare-opt analyze`` (default: minilm, 256 sequences of 128 tokens,
diag, this machine's CPU; target ≤ 2 minutes), including process start, model loading and calibration-data
preparation.

    python benchmarks/frontend/run_cli_time.py
    python benchmarks/frontend/run_cli_time.py --spec benchmarks/frontend/gpt2_spec.py:make --device cuda \
        --no-seq-len                                   # GPT-2-small-sized random model on a GPU (not run here)

Writes ``results/cli-time-<spec>-<device>.json`` with the command, wall time, user/system CPU time, peak RSS of the
child and the summary ``analyze`` printed.
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="minilm")
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--no-seq-len", action="store_true", help="for specs that set their own sequence length")
    ap.add_argument("--estimator", default="diag")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    exe = [str(Path(sys.executable).with_name("geoshare-opt"))]   # the installed console script
    with tempfile.TemporaryDirectory() as tmp:
        shown = ["analyze", args.spec, "--estimator", args.estimator, "--ratio", "0.3", "--device", args.device]
        if args.spec == "minilm":
            shown += ["--samples", str(args.samples)]
        if not args.no_seq_len and args.spec == "minilm":
            shown += ["--seq-len", str(args.seq_len)]
        cmd = [*exe, *shown, "-o", os.path.join(tmp, "inst.json"), "-q"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"analyze failed ({proc.returncode}): {proc.stderr.strip()}")
    summary = json.loads(proc.stdout)
    row = {"command": " ".join(["geoshare-opt", *shown, "-o", "inst.json", "-q"]), "wall_s": wall,
           "user_cpu_s": after.ru_utime - before.ru_utime, "system_cpu_s": after.ru_stime - before.ru_stime,
           "peak_rss_mb": after.ru_maxrss / 1024, "analyze_time_s": summary["time_s"], "summary": summary,
           "cpus": os.cpu_count(), "load_average_at_end": os.getloadavg(), "python": platform.python_version()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = Path(args.spec.split(":")[0]).stem if ":" in args.spec else args.spec
    (out / f"cli-time-{name}-{args.device}.json").write_text(json.dumps(row, indent=1))
    print(json.dumps({k: row[k] for k in ("wall_s", "user_cpu_s", "analyze_time_s", "peak_rss_mb")}))


if __name__ == "__main__":
    main()
