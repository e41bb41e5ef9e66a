"""How far apart are colourings after recovery, measured against the recovery's own noise?

One ratio, tie mode, the same recovery budget for every colouring (as benchmarks/measured/tie.sh), repeated with
several recovery seeds (the seed orders the calibration batches): the held-out metric after recovery of the
package's recommendation (`measured`, the refinement at its defaults), the solved colouring and every heuristic,
per seed, with the mean and the spread over seeds.

    python benchmarks/measured/recovery_noise.py        # tiny-gpt, 20 %, seeds 0-3 -> recovery_noise.json

Where two colourings differ after recovery by less than one colouring varies from seed to seed, one recovery cannot
rank them, and a table from one recovery seed says "level" or "behind" by chance.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = ["sequence", "cycle", "cycle-rev", "adjacent", "sandwich", "random"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", default="tiny-gpt")
    ap.add_argument("--ratio", type=float, default=0.2)
    ap.add_argument("--seeds", default="0,1,2,3", help="recovery seeds")
    ap.add_argument("--recover", type=int, default=40, help="recovery steps (tie.sh: tiny-gpt 40, MiniLM 16)")
    ap.add_argument("--recover-batch", type=int, default=8)
    ap.add_argument("--recover-lr", type=float, default=1e-3)
    ap.add_argument("--out", default=str(HERE / "recovery_noise.json"))
    return ap.parse_args(argv)


def colourings(spec, ratio: float, tmp: Path) -> tuple:
    """(instance, curvature, {name: Result}): solved, every heuristic and the refinement's recommendation, made as
    benchmarks/compression/run.py makes them for one ratio."""
    from geoshare_opt import solve
    from geoshare_opt.frontend import analyze, load_curvature
    from geoshare_opt.pipeline import heuristic_colourings, recommend_colouring, refine_settings
    base = analyze(spec, estimator="diag", mode="tie", ratio=ratio, seed=0, out=tmp / "tie.json")
    instance = base.with_budget(max_params=math.floor((1 - ratio) * int(base.params.sum())))
    curvature = load_curvature(tmp / "tie.json")
    result = solve(instance, "auto", time_limit=None, seed=0)
    found = {"solved": result, **dict(heuristic_colourings(instance, result, KINDS, "tie", 0))}
    log("measured refinement")
    rows, _ = recommend_colouring(spec, instance, curvature, result, KINDS, "tie", ratio, 0,
                                  refine_settings(True, None), lambda info: None)
    found.update(rows)
    return instance, curvature, found


def recovered_metric(spec, instance, curvature, result, recovery: dict, cache: dict) -> dict:
    """The metrics after the pipeline's recovery of one colouring, on all calibration data without checkpoints:
    the recovery itself, not the best-checkpoint guard, is what this study measures."""
    from geoshare_opt.materialize import apply
    from geoshare_opt.pipeline import recover_and_measure
    model, report = apply(spec.model, instance, result, "tie", curvature)
    record, _ = recover_and_measure(spec, model, report, recovery, "", lambda info: None, {}, cache)
    return record["metrics"]


def summary_of(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def main(argv=None) -> int:
    import torch
    from geoshare_opt.pipeline import primary_metric, recovery_settings
    from geoshare_opt.specs.load import load_spec
    args = parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    spec = load_spec(args.spec)
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory(prefix="geoshare-noise-") as tmp:
        instance, curvature, found = colourings(spec, args.ratio, Path(tmp))
    metric, per_seed, cache = None, {name: [] for name in found}, {}
    for seed in seeds:
        recovery = recovery_settings(args.recover, {"lr": args.recover_lr, "batch_size": args.recover_batch}, seed)
        for name, result in found.items():
            metrics = recovered_metric(spec, instance, curvature, result, recovery, cache)
            metric = metric or primary_metric(metrics)
            per_seed[name].append(metrics[metric])
            log(f"seed {seed} {name}: {metric} {metrics[metric]:.4f}")
    report = {"spec": args.spec, "ratio": args.ratio, "mode": "tie", "metric": metric, "seeds": seeds,
              "recovery": {"steps": args.recover, "batch_size": args.recover_batch, "lr": args.recover_lr},
              "after_recovery": per_seed, "summary": {n: summary_of(v) for n, v in per_seed.items()},
              "wall_s": round(time.perf_counter() - started, 1), "load_start": load_start,
              "load_end": os.getloadavg()[0], "command": " ".join(["python", *sys.argv])}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    from geoshare_opt.specs.base import lower_is_better
    sign = 1 if lower_is_better(metric) else -1
    for name, s in sorted(report["summary"].items(), key=lambda kv: sign * kv[1]["mean"]):
        print(f"{name:<13} mean {s['mean']:.4f}  sd {s['sd']:.4f}  range {s['min']:.4f}-{s['max']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
