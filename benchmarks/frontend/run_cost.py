"""Benchmark 2 — cost of ``analyze`` against the floor of one forward+backward pass.

For each estimator, in a fresh process (so peak memory is that estimator's): load the spec, time one
forward+backward over the calibration data (gradients of the loss w.r.t. the candidate tensors — the floor), time
``analyze`` on the same data, time the floor again, and report ``analyze / floor`` (mean of the two floors), the
pair-weight share of the total, and peak memory (process RSS via ``resource``; on CUDA also
``torch.cuda.max_memory_allocated``).

    python benchmarks/frontend/run_cost.py --model digits-mlp
    python benchmarks/frontend/run_cost.py --model minilm --samples 64 --lanczos-steps 5
    python benchmarks/frontend/run_cost.py --model benchmarks/frontend/gpt2_spec.py:make --device cuda \
        --estimators diag lanczos --lanczos-steps 5          # GPT-2-small-sized, random weights (GPU)

Writes ``results/cost-<model>-<device>.json`` and prints one JSON line per estimator.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _floor(spec, names, device) -> float:
    import torch
    from geoshare_opt.specs import move_batch

    model = spec.model
    params = dict(model.named_parameters())
    targets = [params[n] for n in names]
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for batch in spec.batches():
        batch = move_batch(batch, device)
        loss = spec.loss(model, batch)
        torch.autograd.grad(loss, targets)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def measure(model_ref: str, estimator: str, samples, lanczos_steps: int, device: str, mode: str, queue) -> None:
    import torch

    from geoshare_opt.frontend import analyze, discover
    from geoshare_opt.specs import load_spec

    try:
        dev = torch.device(device)
        opts = {"n_calib": samples} if model_ref == "minilm" and samples else {}
        spec = load_spec(model_ref, **opts)
        spec.model.to(dev).eval()
        if samples and model_ref != "minilm":   # cut user specs to `samples` examples, like analyze does
            from geoshare_opt.frontend.runtime import Calibration
            cal = Calibration(spec, dev, next(spec.model.parameters()).dtype, samples)
            data = [b for _, b, _ in cal]
            spec.batches = lambda: iter(data)
        names = [n.name for n in discover(spec.model)]
        _floor(spec, names, dev)                                   # warm-up (allocator, kernels)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        f1 = _floor(spec, names, dev)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            inst = analyze(spec, estimator=estimator, mode=mode, ratio=0.3, lanczos_steps=lanczos_steps,
                           device=device, out=Path(tmp) / "i.json")
            total = time.perf_counter() - t0
        f2 = _floor(spec, names, dev)
        floor = (f1 + f2) / 2
        row = {"model": model_ref, "estimator": estimator, "mode": mode, "device": str(dev),
               "samples": inst.meta["samples"], "batches": inst.meta["batches"], "nodes": len(inst.nodes),
               "pairs": len(inst.edges), "floor_s": floor, "analyze_s": total, "ratio_to_floor": total / floor,
               "curvature_s": inst.meta["timing"]["curvature_s"], "pairs_s": inst.meta["timing"]["pairs_s"],
               "pairs_share": inst.meta["timing"]["pairs_s"] / total,
               "lanczos_steps": lanczos_steps if estimator == "lanczos" else None,
               "target": {"diag": 1.5, "kfac": None, "lanczos": 3.5 * lanczos_steps}[estimator],
               "rss_before_mb": rss_before,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "spread": inst.meta["spread"], "method": inst.meta["method"]}
        if dev.type == "cuda":
            row["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
            row["gpu"] = torch.cuda.get_device_name()
        queue.put(row)
    except BaseException as exc:  # report, do not hang the parent
        queue.put({"model": model_ref, "estimator": estimator, "error": f"{type(exc).__name__}: {exc}"})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="digits-mlp")
    ap.add_argument("--estimators", nargs="+", default=["diag", "kfac", "lanczos"])
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--lanczos-steps", type=int, default=5)
    ap.add_argument("--mode", default="tie")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    ctx = mp.get_context("spawn")
    rows = []
    for est in args.estimators:
        q = ctx.Queue()
        p = ctx.Process(target=measure, args=(args.model, est, args.samples, args.lanczos_steps, args.device,
                                              args.mode, q))
        p.start()
        row = q.get()
        p.join()
        print(json.dumps(row), flush=True)
        rows.append(row)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = Path(args.model.split(":")[0]).stem if ":" in args.model else args.model
    path = out / f"cost-{name}-{args.device}-{args.mode}.json"
    if path.is_file():  # keep rows of estimators not rerun this time
        kept = [r for r in json.loads(path.read_text())["rows"] if r.get("estimator") not in args.estimators]
        rows = kept + rows
    order = {"diag": 0, "kfac": 1, "lanczos": 2}
    rows.sort(key=lambda r: order.get(r.get("estimator"), 3))
    report = {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
              "args": vars(args), "rows": rows}
    path.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
