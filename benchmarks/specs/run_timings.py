"""Cost of the built-in specs: build, metrics, and one forward/backward of a calibration batch.

    python benchmarks/specs/run_timings.py [--n-calib 256] [--seq-len 128] [--repeats 3]

Writes benchmarks/specs/timings.json and prints a Markdown table (pasted into README.md). Each step is timed
``--repeats`` times after one warm-up where noted; the table reports the median and the minimum.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from geoshare_opt.specs import load_spec

HERE = Path(__file__).resolve().parent


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-calib", type=int, default=256)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "timings.json")
    args = parser.parse_args()
    rows: dict[str, list[float]] = {}

    rows["minilm make()"] = timed(lambda: load_spec("minilm", n_calib=args.n_calib, seq_len=args.seq_len,
                                                    batch_size=args.batch_size), 1)
    spec = load_spec("minilm", n_calib=args.n_calib, seq_len=args.seq_len, batch_size=args.batch_size)
    rows["minilm metrics()"] = timed(lambda: spec.metrics(spec.model), args.repeats)
    batch = next(iter(spec.batches()))

    def forward(impl):
        with torch.no_grad():
            spec.model(batch["input_ids"], batch["attention_mask"], attn_impl=impl)

    def forward_backward():
        spec.model.zero_grad(set_to_none=True)
        spec.loss(spec.model, batch).backward()

    forward("eager")  # warm-up
    rows[f"minilm forward {args.batch_size}x{args.seq_len} (eager)"] = timed(lambda: forward("eager"), args.repeats)
    rows[f"minilm forward {args.batch_size}x{args.seq_len} (sdpa)"] = timed(lambda: forward("sdpa"), args.repeats)
    rows[f"minilm loss forward+backward {args.batch_size}x{args.seq_len}"] = timed(forward_backward, args.repeats)
    spec.model.zero_grad(set_to_none=True)

    with tempfile.TemporaryDirectory() as cache:
        os.environ["GEOSHARE_CACHE"] = cache  # a cold cache for this process only
        rows["digits-mlp make() (trains)"] = timed(lambda: load_spec("digits-mlp"), 1)
        rows["digits-mlp make() (cached)"] = timed(lambda: load_spec("digits-mlp"), args.repeats)
        digits = load_spec("digits-mlp")
    rows["digits-mlp metrics()"] = timed(lambda: digits.metrics(digits.model), args.repeats)

    result = {"load_average_1_5_15min_at_end": list(os.getloadavg()), "cpus": os.cpu_count(),
              "python": sys.version.split()[0], "torch": torch.__version__, "threads": torch.get_num_threads(),
              "machine": platform.processor() or platform.machine(), "args": vars(args) | {"out": str(args.out)},
              "minilm_metrics": spec.metrics(spec.model), "digits_metrics": digits.metrics(digits.model),
              "seconds": rows}
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    # Times as multiples of one eager forward measured in the same run: robust to a shared, loaded machine.
    unit = statistics.median(rows[f"minilm forward {args.batch_size}x{args.seq_len} (eager)"])
    result["forward_units"] = {k: statistics.median(v) / unit for k, v in rows.items()}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| step | median s | min s | runs | x one eager forward |\n|---|---:|---:|---:|---:|")
    for name, values in rows.items():
        print(f"| {name} | {statistics.median(values):.3f} | {min(values):.3f} | {len(values)} | "
              f"{statistics.median(values) / unit:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
