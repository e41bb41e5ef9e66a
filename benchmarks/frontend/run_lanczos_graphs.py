"""Benchmark 2b — Lanczos with the per-batch gradient graphs kept across steps, against recomputing them.

``analyze(..., estimator="lanczos")`` keeps each calibration batch's gradient graph (built once, with
``create_graph``) for the later Lanczos steps when it fits ``lanczos_graph_budget`` (default: half the available
memory), so those steps run only the double backward. This script runs both variants alternately in one process
(``--repeats`` times each; alternating cancels part of a changing machine load), each between two timings of the
floor (one forward+backward over the same data), checks that the eigenvalues are identical, and reports the ratios.

    python benchmarks/frontend/run_lanczos_graphs.py                         # minilm, 64 sequences, m = 5
    python benchmarks/frontend/run_lanczos_graphs.py --model digits-mlp --repeats 3

Writes ``results/lanczos-graphs-<model>-<device>.json``. Uses only the public API.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None):
    import torch

    from geoshare_opt.frontend import analyze, discover
    from geoshare_opt.specs import load_spec

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--samples", type=int, default=64, help="calibration sequences (minilm)")
    ap.add_argument("--lanczos-steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    spec = load_spec(args.model, **({"n_calib": args.samples} if args.model == "minilm" else {}))
    dev = torch.device(args.device)
    spec.model.to(dev).eval()
    params = dict(spec.model.named_parameters())
    targets = [params[n.name] for n in discover(spec.model)]

    def floor() -> float:
        from geoshare_opt.specs import move_batch
        t0 = time.perf_counter()
        for batch in spec.batches():
            torch.autograd.grad(spec.loss(spec.model, move_batch(batch, dev)), targets)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    floor()                                                    # warm-up
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for label, budget in (("recompute", 0), ("kept", None)):
                f1 = floor()
                t0 = time.perf_counter()
                inst = analyze(spec, estimator="lanczos", lanczos_steps=args.lanczos_steps, device=args.device,
                               lanczos_graph_budget=budget, out=Path(tmp) / "i.json")
                total = time.perf_counter() - t0
                f2 = floor()
                row = {"variant": label, "repeat": rep, "analyze_s": total, "floor_s": (f1 + f2) / 2,
                       "ratio_to_floor": total / ((f1 + f2) / 2), "graphs_kept": inst.meta["lanczos"]["graphs_kept"],
                       "graphs_kept_mb": inst.meta["lanczos"]["graphs_kept_mb"],
                       "eigenvalues": inst.meta["lanczos"]["eigenvalues"], "load_average": os.getloadavg()}
                print(json.dumps({k: v for k, v in row.items() if k != "eigenvalues"}), flush=True)
                rows.append(row)
    same = all(r["eigenvalues"] == rows[0]["eigenvalues"] for r in rows)
    summary = {v: statistics.mean(r["ratio_to_floor"] for r in rows if r["variant"] == v)
               for v in ("recompute", "kept")}
    report = {"model": args.model, "samples": inst.meta["samples"], "batches": inst.meta["batches"],
              "device": args.device, "lanczos_steps": args.lanczos_steps, "target": 3.5 * args.lanczos_steps,
              "eigenvalues_identical": same, "mean_ratio": summary,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
              "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"lanczos-graphs-{args.model}-{args.device}.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({"eigenvalues_identical": same, "mean_ratio": summary}))


if __name__ == "__main__":
    main()
