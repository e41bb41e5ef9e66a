"""Benchmark 1b — damage prediction on digits-mlp across training seeds and spec settings.

One ``run_predict.py`` run per (setting, seed): the spec's ``seed`` fixes the data split, the initialisation and the
batch order, so each seed is a different trained network. A setting is a set of digits-mlp spec options; the old
setting (calibrate on the training set with cross-entropy, trained to ~zero loss) and the practitioner's setting
(calibration split kept out of training, weight decay + early stopping, label-free distillation loss) are compared
side by side, with the intermediate steps.

    python benchmarks/frontend/run_predict_seeds.py                      # 5 settings x 5 seeds, depth 8 (28 pairs)
    python benchmarks/frontend/run_predict_seeds.py --seeds 0 1 --settings new --depth 12

Writes ``results/seeds/predict-*.json`` (one per run, as run_predict.py writes them) and
``results/seeds-digits-mlp-depth<D>.json`` (Spearman per seed, median, minimum and number of seeds >= 0.8, for the
held-out spec loss and for the held-out task loss ``heldout_loss``, the test-set cross-entropy).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run_predict  # noqa: E402

SETTINGS = {
    "old": {},
    "split": {"calibration": "split"},
    "regularised": {"recipe": "regularised"},
    "split+regularised": {"calibration": "split", "recipe": "regularised"},
    "new": {"calibration": "split", "recipe": "regularised", "loss": "distill"},
}
BASELINE = "distance (baseline, plain mean)"
TARGET = 0.8


def summarise(values: list[float]) -> dict:
    return {"per_seed": values, "median": statistics.median(values), "min": min(values), "max": max(values),
            "seeds_at_target": sum(v >= TARGET for v in values), "seeds": len(values)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--estimators", nargs="+", default=["diag", "kfac", "lanczos"])
    ap.add_argument("--lanczos-steps", type=int, default=10)
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    runs_dir = Path(args.out) / "seeds"
    summary = {"model": "digits-mlp", "depth": args.depth, "pairs": args.depth * (args.depth - 1) // 2,
               "estimators": args.estimators, "lanczos_steps": args.lanczos_steps, "seeds": args.seeds,
               "settings": {}}
    for name in args.settings:
        per = {"heldout": {}, "task": {}}
        accuracy = []
        for seed in args.seeds:
            opts = {"depth": args.depth, **SETTINGS[name], "seed": seed}
            argv_run = ["--model", "digits-mlp", "--estimators", *args.estimators, "--lanczos-steps",
                        str(args.lanczos_steps), "--metric-damage", "heldout_loss", "--out", str(runs_dir)]
            for k, v in opts.items():
                argv_run += ["--spec-option", f"{k}={v}"]
            with contextlib.redirect_stdout(io.StringIO()):
                run_predict.main(argv_run)
            stem = "predict-digits-mlp" + "".join(f"-{k}{v}" for k, v in opts.items())
            report = json.loads((runs_dir / f"{stem}.json").read_text())
            accuracy.append(report["metrics_before"]["accuracy"])
            for kind, key in (("heldout", "spearman"), ("task", "spearman_metric_damage")):
                for est, s in report[key].items():
                    per[kind].setdefault(est, []).append(s["all"])
            line = {k: round(v, 2) for k, v in ((e, report["spearman"][e]["all"]) for e in report["spearman"])}
            print(f"{name} seed={seed} heldout-loss spearman {json.dumps(line)}", flush=True)
        summary["settings"][name] = {
            "spec_options": {"depth": args.depth, **SETTINGS[name]},
            "spec_loss": "KL to the original softmax" if SETTINGS[name].get("loss") == "distill" else "cross-entropy",
            "test_accuracy": summarise(accuracy),
            **{kind: {est: summarise(v) for est, v in d.items()} for kind, d in per.items()}}
    out = Path(args.out) / f"seeds-digits-mlp-depth{args.depth}.json"
    if out.is_file():  # keep settings not rerun this time
        old = json.loads(out.read_text())
        if old.get("seeds") == args.seeds and old.get("estimators") == args.estimators:
            summary["settings"] = {**{k: v for k, v in old["settings"].items() if k not in summary["settings"]},
                                   **summary["settings"]}
    out.write_text(json.dumps(summary, indent=1))
    print(json.dumps({n: {k: {e: round(s["median"], 2) for e, s in d.items()} for k, d in v.items()
                          if k in ("heldout", "task")} for n, v in summary["settings"].items()}))


if __name__ == "__main__":
    main()
