"""Benchmark 1 — does the criterion predict damage?

For every same-type pair of a real model: tie the pair for real (both tensors set to the merge the estimator's model
assumes: the curvature-weighted mean with the estimator's own diagonal for diag/kfac, the plain mean for lanczos and for
the weight-distance baseline), measure the held-out loss increase (``spec.heldout`` + ``spec.loss``), and report the
Spearman rank correlation between predicted pair weights and measured damage, over all pairs and within each type.

    python benchmarks/frontend/run_predict.py --model digits-mlp
    python benchmarks/frontend/run_predict.py --model minilm --samples 64

Writes ``results/predict-<model>.csv`` (one row per pair) and ``results/predict-<model>.json`` (correlations).
Uses only the public API (``geoshare_opt.frontend.analyze``, ``load_curvature``, ``geoshare_opt.specs.load_spec``).
"""
from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import torch
from scipy.stats import spearmanr

from geoshare_opt.frontend import analyze, load_curvature
from geoshare_opt.specs import load_spec

HERE = Path(__file__).resolve().parent


def heldout_loss(spec, data=None) -> float:
    """Example-weighted mean loss over ``data`` (default: the held-out batches)."""
    total = count = 0.0
    with torch.no_grad():
        for batch in (data or spec.heldout)():
            n = next(t for t in (batch.values() if isinstance(batch, dict) else batch)
                     if isinstance(t, torch.Tensor)).shape[0]
            total += float(spec.loss(spec.model, batch)) * n
            count += n
    return total / count


def metric_value(spec, name: str):
    """A loss-like function of the model: ``spec.metrics(model)[name]``, negated when higher is better."""
    from geoshare_opt.specs.base import lower_is_better

    sign = 1.0 if lower_is_better(name) else -1.0

    def value(data=None) -> float:
        return sign * float(spec.metrics(spec.model)[name])
    return value


def tie_damage(spec, u: str, v: str, diag: dict | None, base: float, data=None, measure=None) -> float:
    """Loss increase (held-out, or on ``data``) with u and v both set to their merge (weighted by ``diag`` or the
    plain mean); ``measure`` replaces the held-out loss (e.g. a metric, ``metric_value``)."""
    params = dict(spec.model.named_parameters())
    wu, wv = params[u].detach().clone(), params[v].detach().clone()
    if diag is None:
        merged = (wu + wv) / 2
    else:
        hu, hv = diag[f"diag/{u}"], diag[f"diag/{v}"]
        s = hu + hv
        merged = torch.where(s > 0, (hu * wu + hv * wv) / torch.where(s > 0, s, torch.ones_like(s)), (wu + wv) / 2)
    try:
        with torch.no_grad():
            params[u].copy_(merged)
            params[v].copy_(merged)
        return (measure or (lambda d: heldout_loss(spec, d)))(data) - base
    finally:
        with torch.no_grad():
            params[u].copy_(wu)
            params[v].copy_(wv)


def correlations(rows: list[dict], pred: str, dmg: str) -> dict:
    out = {"all": float(spearmanr([r[pred] for r in rows], [r[dmg] for r in rows]).statistic)}
    per_type = {}
    for t in sorted({r["type"] for r in rows}):
        sub = [r for r in rows if r["type"] == t]
        if len(sub) >= 3:
            per_type[t] = float(spearmanr([r[pred] for r in sub], [r[dmg] for r in sub]).statistic)
    out["within_type_mean"] = sum(per_type.values()) / len(per_type) if per_type else None
    out["per_type"] = per_type
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="digits-mlp", help="built-in spec (digits-mlp, minilm) or file.py:make")
    ap.add_argument("--estimators", nargs="+", default=["diag", "kfac", "lanczos"])
    ap.add_argument("--samples", type=int, default=None, help="calibration examples (default: the spec's)")
    ap.add_argument("--lanczos-steps", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calib-damage", action="store_true",
                    help="also measure the damage on the calibration data (the loss the curvature models)")
    ap.add_argument("--spec-option", action="append", default=[], metavar="KEY=VALUE",
                    help="option for a built-in spec (integers converted), e.g. depth=8 or loss=distill for "
                         "digits-mlp")
    ap.add_argument("--metric-damage", default=None, metavar="METRIC",
                    help="also correlate with the change of spec.metrics()[METRIC] (e.g. heldout_loss: the task "
                         "loss on the test set, whatever loss calibrates)")
    ap.add_argument("--diag-methods", nargs="+", default=["auto"],
                    help="diag methods to compare (auto ggn empirical hutchinson); columns diag-<method>")
    ap.add_argument("--no-first-order", action="store_true", help="leave out the g·δ term where a gradient exists")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    opts = {k: int(v) if v.lstrip("-").isdigit() else v for k, v in (o.split("=", 1) for o in args.spec_option)}
    if args.model == "minilm" and args.samples:
        opts["n_calib"] = args.samples
    spec = load_spec(args.model, **opts)
    spec.model.eval()
    samples = None if args.model == "minilm" else args.samples
    base = heldout_loss(spec)
    base_calib = heldout_loss(spec, spec.batches) if args.calib_damage else None
    measure = metric_value(spec, args.metric_damage) if args.metric_damage else None
    base_metric = measure() if measure else None
    rows: dict[tuple[str, str], dict] = {}
    timings = {}
    runs = [(f"diag-{m}" if m != "auto" else "diag", "diag", m) if est == "diag" else (est, est, "auto")
            for est in args.estimators for m in (args.diag_methods if est == "diag" else ["auto"])]
    args.estimators = [name for name, _, _ in runs]
    with tempfile.TemporaryDirectory() as tmp:
        for est, estimator, method in runs:
            t0 = time.perf_counter()
            inst = analyze(spec, estimator=estimator, samples=samples, lanczos_steps=args.lanczos_steps,
                           seed=args.seed, diag_method=method, first_order=not args.no_first_order,
                           out=Path(tmp) / f"{est}.json")
            timings[est] = time.perf_counter() - t0
            diag = None if est == "lanczos" else load_curvature(Path(tmp) / f"{est}.json")
            types = {n.id: n.type for n in inst.nodes}
            for e in inst.edges:
                row = rows.setdefault((e.u, e.v), {"u": e.u, "v": e.v, "type": types[e.u]})
                row[f"pred_{est}"] = e.w
                row[f"damage_{est}"] = tie_damage(spec, e.u, e.v, diag, base)
                if args.calib_damage:
                    row[f"calib_damage_{est}"] = tie_damage(spec, e.u, e.v, diag, base_calib, spec.batches)
                if measure:
                    row[f"metric_damage_{est}"] = tie_damage(spec, e.u, e.v, diag, base_metric, measure=measure)
    params = dict(spec.model.named_parameters())
    for (u, v), row in rows.items():
        row["pred_distance"] = float((params[u] - params[v]).detach().double().pow(2).sum())
        row["damage_mean"] = row.get("damage_lanczos") if "damage_lanczos" in row else \
            tie_damage(spec, u, v, None, base)
        if args.calib_damage:
            row["calib_damage_mean"] = row.get("calib_damage_lanczos") if "calib_damage_lanczos" in row else \
                tie_damage(spec, u, v, None, base_calib, spec.batches)
        if measure:
            row["metric_damage_mean"] = row.get("metric_damage_lanczos") if "metric_damage_lanczos" in row else \
                tie_damage(spec, u, v, None, base_metric, measure=measure)
    rows_l = list(rows.values())
    report = {"model": args.model, "spec_options": opts, "pairs": len(rows_l), "heldout_loss": base, "analyze_s": timings,
              "first_order": not args.no_first_order,
              "spearman": {est: correlations(rows_l, f"pred_{est}", f"damage_{est}") for est in args.estimators}}
    report["spearman"]["distance (baseline, plain mean)"] = correlations(rows_l, "pred_distance", "damage_mean")
    if args.calib_damage:
        report["spearman_calibration_damage"] = {
            est: correlations(rows_l, f"pred_{est}", f"calib_damage_{est}") for est in args.estimators}
        report["spearman_calibration_damage"]["distance (baseline, plain mean)"] = correlations(
            rows_l, "pred_distance", "calib_damage_mean")
    if measure:
        report["metric_damage"] = args.metric_damage
        report["spearman_metric_damage"] = {
            est: correlations(rows_l, f"pred_{est}", f"metric_damage_{est}") for est in args.estimators}
        report["spearman_metric_damage"]["distance (baseline, plain mean)"] = correlations(
            rows_l, "pred_distance", "metric_damage_mean")
    report["spec_meta"] = {k: v for k, v in spec.meta.items() if isinstance(v, (str, int, float, bool))}
    if spec.metrics is not None:
        report["metrics_before"] = spec.metrics(spec.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = args.model.replace("/", "_").replace(":", "_") + "".join(f"-{k}{v}" for k, v in opts.items()
                                                                     if k != "n_calib")
    if args.diag_methods != ["auto"] or args.no_first_order:     # a variant study: keep the main files
        name += "-methods" + ("-nofirst" if args.no_first_order else "")
    with open(out / f"predict-{name}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows_l[0].keys()))
        w.writeheader()
        w.writerows(rows_l)
    (out / f"predict-{name}.json").write_text(json.dumps(report, indent=1))
    for key in ("spearman", "spearman_calibration_damage", "spearman_metric_damage"):
        if key in report:
            print(key, json.dumps({k: {"all": round(v["all"], 3), "within_type_mean": v["within_type_mean"]}
                                   for k, v in report[key].items()}))


if __name__ == "__main__":
    main()
