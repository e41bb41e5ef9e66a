"""Cost and quality of the built-in ``tiny-gpt``: training time of the frozen recipe, held-out perplexity against a
unigram byte model, cached-load time and the spec's metrics() time.

    python benchmarks/specs/run_tinygpt.py [--recipe full] [--force] [--cache DIR]

Trains the recipe into the cache (``$GEOSHARE_OPT_CACHE`` / ``$GEOSHARE_CACHE`` / ``~/.cache/geoshare-opt``, or
``--cache``) unless a valid entry exists (then the training time is the one recorded when it was trained);
``--force`` retrains. Writes ``tinygpt.json`` and prints the Markdown lines pasted into README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipe", default="full")
    parser.add_argument("--force", action="store_true", help="retrain even if the cache holds the model")
    parser.add_argument("--cache", default=None, help="cache directory (default: the package's)")
    parser.add_argument("--out", type=Path, default=HERE / "tinygpt.json")
    args = parser.parse_args()
    if args.cache:
        os.environ["GEOSHARE_OPT_CACHE"] = args.cache
    import torch

    from geoshare_opt.specs import load_spec
    from geoshare_opt.specs.tinygpt import build_model

    load_before = os.getloadavg()
    start = time.perf_counter()
    _, record = build_model(args.recipe, force=args.force)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    _, again = build_model(args.recipe)
    cached_load_s = time.perf_counter() - start
    assert again["cached"] and again["weights_sha256"] == record["weights_sha256"]
    spec = load_spec("tiny-gpt", recipe=args.recipe, quiet=True)
    start = time.perf_counter()
    metrics = spec.metrics(spec.model)
    metrics_s = time.perf_counter() - start
    result = {
        "recipe": record["recipe"], "recipe_sha256": record["recipe_sha256"],
        "weights_sha256": record["weights_sha256"], "trained_in_this_run": not record["cached"],
        "train_time_s": record["train_time_s"], "train_cpu_s": record.get("train_cpu_s"),
        "build_wall_s_this_run": build_s, "cached_load_s": cached_load_s,
        "train_device": record["device"], "train_threads": record["threads"],
        "heldout_perplexity_all_heldout_bytes": record["heldout_perplexity"],
        "unigram_heldout_perplexity": record["unigram_heldout_perplexity"], "heldout_bytes": record["heldout_bytes"],
        "final_train_loss": record["final_train_loss"], "trained_tokens": record["trained_tokens"],
        "parameters": sum(p.numel() for p in spec.model.parameters()),
        "spec_metrics": metrics, "spec_metrics_s": metrics_s, "spec_heldout_seqs": spec.meta["heldout_seqs"],
        "load_average_before": list(load_before), "load_average_after": list(os.getloadavg()),
        "cpus": os.cpu_count(), "python": sys.version.split()[0], "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    where = "trained in this run" if result["trained_in_this_run"] else "recorded when the cache entry was trained"
    print(f"| tiny-gpt ({args.recipe}) train ({where}, {record['device']}, {record['threads']} thread) | "
          f"{record['train_time_s']:.1f} s |")
    print(f"| tiny-gpt cached load | {cached_load_s:.2f} s |")
    print(f"| tiny-gpt metrics() ({spec.meta['heldout_seqs']} held-out windows) | {metrics_s:.2f} s |")
    print(f"held-out perplexity (all {record['heldout_bytes']} held-out bytes): {record['heldout_perplexity']:.3f}; "
          f"unigram byte model: {record['unigram_heldout_perplexity']:.3f}; uniform: 256; "
          f"parameters {result['parameters']:,}; load average {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
