"""Compression benchmark: the solved colouring against every heuristic colouring and against per-layer low rank
(no sharing), on a real network, at several compression ratios, in both sharing modes.

    python benchmarks/compression/run.py                      # minilm, ratios 0.2 0.3 0.4 0.5, tie and basis
    python benchmarks/compression/run.py --spec digits-mlp --ratios 0.25,0.5
    python benchmarks/compression/run.py --recover 16 --recover-batch 4 --random-seeds 0,1,2   # + recovery

For every ratio R (fraction of the shareable layers' stored parameters removed):
  tie   -- analyze once (diag curvature, tie pair weights); the budget max_params = ⌊(1−R)·Σ params⌋ is set per ratio
           (``Instance.with_budget``); solve; every heuristic at the solved number of classes per type (same stored
           parameters); each colouring materialised with the curvature-weighted merge.
  basis -- analyze per ratio (the basis pair weights depend on the rank R implies); solve; every heuristic at the
           solved classes per type; ``none`` = every layer alone = per-layer whitened low rank (SVD-LLM style) at
           the same ratio. Every class gets Basis Sharing's rank for ratio R.
With ``--recover N`` every colouring (solved and heuristic) is then recovered with the same budget (N steps of
``geoshare_opt.materialize.recover``: distillation to the original network on the calibration batches, or
``--recover-method lora``) and measured again; the table shows each before -> after, and the recovery time. The
package's recommendation is then chosen for the recovered network (``geoshare_opt.measured.after_recovery``, on
calibration data): row ``measured-rec`` when it is not the ``measured`` colouring.
``--random-seeds 0,1,2`` runs the ``random`` heuristic once per seed (rows ``random-<seed>`` and their mean).
Writes results.json, results.csv, compression.png and the results section of README.md (between markers), all
from this run. Uses the public API only.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = ("all", "sequence", "cycle", "cycle-rev", "adjacent", "sandwich", "random")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default="minilm")
    ap.add_argument("--ratios", default="0.2,0.3,0.4,0.5")
    ap.add_argument("--modes", default="tie,basis")
    ap.add_argument("--solver", default="cpsat")
    ap.add_argument("--estimator", default="diag")
    ap.add_argument("--samples", type=int, default=None, help="calibration sequences for analyze (spec default)")
    ap.add_argument("--time-limit", default="30", help="solver seconds, or 'none' (the work budgets the pipeline "
                    "uses by default: the same colouring on every machine)")
    ap.add_argument("--no-refine", action="store_true", help="no measured row (the package's recommendation)")
    ap.add_argument("--refine-score", choices=("loss", "distill"), default=None, help="what the measured "
                    "refinement scores: the spec's loss or the distillation to the trained network (default: the spec's "
                    "refine_score)")
    ap.add_argument("--refine-passes", type=int, default=None, help="forward passes of the measured refinement "
                    "(default: the pipeline's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kinds", default=",".join(KINDS), help="heuristic colourings to compare against")
    ap.add_argument("--random-seeds", default=None, help="comma-separated seeds of the random heuristic")
    ap.add_argument("--recover", type=int, default=None, metavar="N", help="recovery steps for every colouring")
    ap.add_argument("--recover-lr", type=float, default=None, help="recovery learning rate (default 1e-4)")
    ap.add_argument("--recover-method", default=None, help="distill (default) or lora")
    ap.add_argument("--recover-rank", type=int, default=None, help="lora rank per member (default 8)")
    ap.add_argument("--recover-batch", type=int, default=None, help="examples per recovery step (default: the "
                    "spec's batches)")
    ap.add_argument("--spec-option", action="append", default=[], metavar="KEY=VALUE",
                    help="option of the spec's make() (e.g. n_heldout=128), repeatable")
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--no-readme", action="store_true", help="do not rewrite README.md's results section")
    ap.add_argument("--render", metavar="RESULTS_JSON", default=None,
                    help="only re-render tables, plot and README from a results.json this script wrote")
    args = ap.parse_args(argv)
    args.time_limit = None if str(args.time_limit).lower() == "none" else float(args.time_limit)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.render:
        summary = json.loads(Path(args.render).read_text())
        table = render(summary, Path(args.out), readme=not args.no_readme)
        print(table)
        return 0

    import torch
    torch.set_num_threads(max(1, torch.get_num_threads()))
    from geoshare_opt.pipeline import PIPELINE_SPEC_DEFAULTS, evaluate_model, recovery_settings
    from geoshare_opt.specs import load_spec

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    args.load_start = load_average()
    opts = dict(PIPELINE_SPEC_DEFAULTS.get(args.spec, {}))
    if args.samples is not None and "n_calib" in opts:
        opts["n_calib"] = args.samples
    for item in args.spec_option:
        key, _, value = item.partition("=")
        opts[key] = int(value) if value.lstrip("-").isdigit() else value
    args.recovery = recovery_settings(args.recover, {"lr": args.recover_lr, "method": args.recover_method,
                                                     "rank": args.recover_rank, "batch_size": args.recover_batch}
                                      if args.recover is not None else None, args.seed)
    args.spec_options = opts
    log(f"loading spec {args.spec} {opts}")
    spec = load_spec(args.spec, **opts)
    original = evaluate_model(spec, spec.model)
    log(f"original: {original}")
    records = []
    ratios = [float(r) for r in args.ratios.split(",")]
    with tempfile.TemporaryDirectory(prefix="geoshare-bench-") as tmp:
        for mode in [m.strip() for m in args.modes.split(",")]:
            instances = instances_for(spec, mode, ratios, args, Path(tmp))
            for ratio in ratios:
                records += measure_ratio(spec, mode, ratio, *next(instances), args)
                write_outputs(args, argv, original, records, out, t_start)
    summary, table = write_outputs(args, argv, original, records, out, t_start)
    print(table)
    log(f"done in {summary['wall_s']}s")
    return 0


def load_average() -> list[float] | None:
    """The machine's 1/5/15-minute load averages (None where the platform has none): timings depend on it."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def load_note(summary: dict) -> str:
    start, end = summary.get("load_start"), summary.get("load_now")
    return f" (load average {start[0]:.2f} at the start, {end[0]:.2f} at the end)" if start and end else ""


def instances_for(spec, mode: str, ratios: list[float], args, tmp: Path):
    """``(instance, curvature, instance file, analyze seconds)`` for each ratio: tie mode analyses once and sets the
    budget per ratio (``Instance.with_budget``); basis mode analyses per ratio (its pair weights depend on the rank)."""
    from geoshare_opt.frontend import analyze, load_curvature
    if mode == "tie":
        t0 = time.perf_counter()
        log(f"analyze ({args.estimator}, tie)")
        base = analyze(spec, estimator=args.estimator, mode="tie", ratio=ratios[0], seed=args.seed,
                       samples=args.samples, out=tmp / "tie.json")
        curvature, t_an = load_curvature(tmp / "tie.json"), time.perf_counter() - t0
        for ratio in ratios:
            yield (base.with_budget(max_params=math.floor((1 - ratio) * int(base.params.sum()))), curvature,
                   tmp / "tie.json", t_an)
        return
    for ratio in ratios:
        t0 = time.perf_counter()
        log(f"analyze ({args.estimator}, basis, ratio {ratio})")
        path = tmp / f"basis-{ratio}.json"
        instance = analyze(spec, estimator=args.estimator, mode="basis", ratio=ratio, seed=args.seed,
                           samples=args.samples, out=path)
        yield instance, load_curvature(path), path, time.perf_counter() - t0


def measured_row(spec, instance, curvature, result, kinds, mode, ratio, args, progress):
    """The package's recommendation (``pipeline.recommend_colouring``; with ``--recover`` also the one chosen after
    recovery, row ``measured-rec`` when it is another colouring) and what its search did."""
    from geoshare_opt.pipeline import recommend_colouring, refine_settings
    t1 = time.perf_counter()
    opts = {k: v for k, v in (("max_passes", args.refine_passes), ("score", args.refine_score)) if v is not None}
    opts = opts or None
    extra, info = recommend_colouring(spec, instance, curvature, result, kinds, mode, ratio, args.seed,
                                      refine_settings(True, opts), progress, args.recovery)
    refined = {"refine_s": round(time.perf_counter() - t1, 2), "refine_start": info["start"],
               "refine_passes": info["forward_passes"], "refine_moves": len(info["accepted"]),
               "refine_search_loss": info["search_loss"], "refine_confirm_loss": info["confirm_loss"],
               "refine_stopped": info["stopped"]}
    after = info.get("after_recovery")
    if after:
        refined.update(rec_choice=after["choice"], rec_finalists=after["finalists"])
        log(f"{mode} {ratio}: confirm pieces before, after recovery ({after['objective']}): " + ", ".join(
            f"{f['colouring']} loss {f['confirm_loss']:.4g}, recovered {f['recovered_objective']:.4g}"
            for f in after["finalists"]) + f": {after['choice']}")
    log(f"{mode} {ratio}: measured from {info['start']}, {len(info['accepted'])} moves, "
        f"{info['forward_passes']} passes, {refined['refine_s']} s")
    return extra, refined


def measure_ratio(spec, mode: str, ratio: float, instance, curvature, inst_file: Path, t_an: float, args) -> list:
    """Solve, refine, and measure every colouring at one ratio: one record per colouring."""
    from geoshare_opt import solve
    from geoshare_opt.frontend.sidecar import sidecar_path
    from geoshare_opt.pipeline import compare_colourings
    t0 = time.perf_counter()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    progress = lambda info: info.get("message") and log(info["message"])
    # the true-class-cost search reads the weights and curvature from the instance's sidecar
    native = {"sidecar": str(sidecar_path(inst_file))} if args.solver == "classcost" else None
    result = solve(instance, args.solver, time_limit=args.time_limit, seed=args.seed, native=native)
    log(f"{mode} {ratio}: {args.solver} {result.termination}, objective {result.objective}, "
        f"classes {result.classes_per_type}")
    extra, refined = [], {}
    if not args.no_refine:
        extra, refined = measured_row(spec, instance, curvature, result, kinds, mode, ratio, args, progress)
    random_seeds = [int(x) for x in args.random_seeds.split(",")] if args.random_seeds else None
    rows, _ = compare_colourings(spec, instance, curvature, result, mode, ratio, kinds, seed=args.seed,
                                 ref=args.spec, progress=progress, recovery=args.recovery,
                                 random_seeds=random_seeds, extra=extra)
    records = []
    for r in rows:
        solved = r["colouring"] == "solved"
        records.append({"mode": mode, "ratio": ratio, "colouring": r["colouring"], "objective": r.get("objective"),
                        "classes": r.get("classes"), "stored_params": r.get("stored_params"),
                        "shareable_removed": r.get("shareable_removed"), "model_removed": r.get("model_removed"),
                        **(r.get("metrics") or {}), "solve_s": result.wall_time_s if solved else None,
                        "analyze_s": round(t_an, 2) if solved else None,
                        "solver_termination": result.termination if solved else None, "pattern": r.get("pattern"),
                        **recovered_columns(r), **(refined if r["colouring"] in PACKAGE_ROWS else {})})
    log(f"{mode} {ratio} done in {time.perf_counter() - t0:.0f}s")
    return records


def recovered_columns(row: dict) -> dict:
    rec = row.get("recovered") or {}
    after = {f"after_{k}": v for k, v in (rec.get("metrics") or {}).items()}
    if rec:
        after.update(recover_s=row.get("recover_s"), recover_train_s=rec.get("train_s"),
                     calib_loss_before=rec.get("loss_before"), calib_loss_after=rec.get("loss_after"),
                     heldout_loss_before=rec.get("heldout_before"), heldout_loss_after=rec.get("heldout_after"),
                     recover_params_added=rec.get("params_added"))
        log(f"  {row['colouring']}: {rec.get('metrics')} recover {row.get('recover_s')}s")
    return after


def write_outputs(args, argv, original, records, out: Path, t_start: float):
    """results.json/.csv/.md, the plot and README's results section, from the rows measured so far."""
    metric_names = list(original)
    summary = {"spec": args.spec, "solver": args.solver, "estimator": args.estimator, "samples": args.samples,
               "time_limit": args.time_limit, "seed": args.seed, "original": original, "rows": records,
               "spec_options": args.spec_options, "recovery": args.recovery,
               "wall_s": round(time.perf_counter() - t_start, 1), "load_start": args.load_start,
               "load_now": load_average(),
               "command": "python benchmarks/compression/run.py " + " ".join(argv or sys.argv[1:])}
    (out / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    table = render(summary, out, readme=not args.no_readme)
    return summary, table


def render(summary: dict, out: Path, readme: bool = True) -> str:
    """results.csv, results.md, compression.png and README's results section from a summary."""
    metric_names = list(summary["original"])
    records = summary["rows"]
    cols = ["mode", "ratio", "colouring", *metric_names, "objective", "classes", "stored_params",
            "shareable_removed", "model_removed", "analyze_s", "solve_s", "solver_termination", "pattern",
            "refine_s", "refine_start", "refine_passes", "refine_moves", "refine_search_loss", "refine_confirm_loss",
            "refine_stopped"]
    if summary.get("recovery"):
        cols += [f"after_{k}" for k in metric_names] + ["recover_s", "recover_train_s", "calib_loss_before",
                                                         "calib_loss_after", "heldout_loss_before",
                                                         "heldout_loss_after", "recover_params_added"]
    with open(out / "results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(records)
    table = markdown(summary, metric_names)
    (out / "results.md").write_text(table + "\n")
    plot(summary, metric_names[0], out / "compression.png")
    path = out / "README.md"
    if readme and path.exists():
        text = path.read_text()
        a, b = "<!-- results:start -->", "<!-- results:end -->"
        if a in text and b in text:
            text = text[:text.index(a) + len(a)] + "\n" + table + "\n" + text[text.index(b):]
            path.write_text(text)
    return table


def lower_is_better(name: str) -> bool:
    from geoshare_opt.specs.base import lower_is_better as lib
    return lib(name)


RANDOM_MEAN = "random (mean)"
# not heuristics at the same budget (all stores fewer; none = no sharing; solved and measured are the package's)
PACKAGE_ROWS = ("measured", "measured-rec")       # the recommendation before / chosen after recovery
EXCLUDED = ("solved", *PACKAGE_ROWS, "all", "none")


def with_random_mean(rows: list[dict], metrics: list[str]) -> list[dict]:
    """The rows plus, per mode and ratio, the mean of the ``random-<seed>`` rows (the random heuristic's expected
    value), over every metric before and after recovery and the recovery time."""
    out = list(rows)
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if str(r["colouring"]).startswith("random-"):
            groups.setdefault((r["mode"], r["ratio"]), []).append(r)
    for (mode, ratio), rs in groups.items():
        mean = {"mode": mode, "ratio": ratio, "colouring": RANDOM_MEAN, "seeds": len(rs)}
        for k in [*metrics, *(f"after_{m}" for m in metrics), "recover_s", "objective"]:
            vals = [r[k] for r in rs if r.get(k) is not None]
            if len(vals) == len(rs):
                mean[k] = sum(vals) / len(vals)
        out.append(mean)
    return out


def is_heuristic(name: str) -> bool:
    """Heuristics the solved colouring is judged against: single random seeds count through their mean."""
    return name not in EXCLUDED and not str(name).startswith("random-")


def markdown(summary: dict, metrics: list[str]) -> str:
    key = metrics[0]
    sign = -1 if lower_is_better(key) else 1
    recovered = bool(summary.get("recovery"))
    rows = with_random_mean(summary["rows"], metrics)
    lines = [f"Spec `{summary['spec']}`, solver `{summary['solver']}`, estimator `{summary['estimator']}`, "
             f"original: " + ", ".join(f"{k} {v:.4f}" for k, v in summary["original"].items()) +
             f". Wall time of the whole run: {summary['wall_s']} s{load_note(summary)}. "
             f"Command: `{summary['command'].strip()}`.", ""]
    if recovered:
        rc = summary["recovery"]
        lines += [f"Recovery of every colouring: method `{rc['method']}`, objective `{rc['objective']}`, "
                  f"{rc['steps']} steps of {rc['batch_size'] or 'the spec’s'} examples, AdamW lr {rc['lr']:g} "
                  f"(warm-up + cosine decay), seed {rc['seed']}. Cells: before → after recovery.", ""]
    for mode in dict.fromkeys(r["mode"] for r in rows):
        ratios = list(dict.fromkeys(r["ratio"] for r in rows if r["mode"] == mode))
        names = list(dict.fromkeys(r["colouring"] for r in rows if r["mode"] == mode))
        lines.append(f"**{mode}** — {key} ({'higher' if sign > 0 else 'lower'} is better)")
        lines.append("")
        lines.append("| colouring | " + " | ".join(f"{int(100 * r)} %" for r in ratios) + " |")
        lines.append("|---|" + "---|" * len(ratios))
        cell = {(r["colouring"], r["ratio"]): r for r in rows if r["mode"] == mode}

        def best_of(ratio, k):
            cands = [cell[(n, ratio)][k] for n in names if is_heuristic(n) and (n, ratio) in cell
                     and cell[(n, ratio)].get(k) is not None]
            return max((sign * v for v in cands), default=None)
        best = {(ratio, k): best_of(ratio, k) for ratio in ratios for k in (key, f"after_{key}")}

        def fmt(n, ratio, k):
            r = cell.get((n, ratio))
            if r is None or r.get(k) is None:
                return "–"
            v = f"{r[k]:.4f}"
            b = best[(ratio, k)]
            if n in ("solved", *PACKAGE_ROWS) and b is not None:
                v += " ✓" if sign * r[k] >= b else " ✗"
            return v
        for n in names:
            vals = [fmt(n, ratio, key) + (f" → {fmt(n, ratio, f'after_{key}')}" if recovered else "")
                    for ratio in ratios]
            lines.append(f"| {n} | " + " | ".join(vals) + " |")
        lines.append("")
        if recovered:
            lines += [recovery_time_line(cell, names, ratios), ""]
        rhos = []
        for ratio in ratios:
            for k, label in ((key, "before"), (f"after_{key}", "after")):
                same = [cell[(n, ratio)] for n in names if n not in ("all", "none", RANDOM_MEAN)
                        and (n, ratio) in cell and cell[(n, ratio)].get(k) is not None
                        and cell[(n, ratio)].get("objective") is not None]
                if len(same) >= 3 and (recovered or label == "before"):
                    from scipy.stats import spearmanr
                    rho = spearmanr([r["objective"] for r in same], [r[k] for r in same]).correlation
                    rhos.append(f"{int(100 * ratio)} % {label if recovered else ''} → {rho:+.2f}".replace("  ", " "))
        if recovered:
            from scipy.stats import spearmanr
            kept = []
            for ratio in ratios:
                both = [cell[(n, ratio)] for n in names if n != RANDOM_MEAN and (n, ratio) in cell
                        and cell[(n, ratio)].get(key) is not None and cell[(n, ratio)].get(f"after_{key}") is not None]
                if len(both) >= 3:
                    rho = spearmanr([r[key] for r in both], [r[f"after_{key}"] for r in both]).correlation
                    kept.append(f"{int(100 * ratio)} % → {rho:+.2f}")
            if kept:
                lines.append("Spearman correlation of the metric before and after recovery over the colourings at the "
                             "same budget (+1: recovery keeps their ranking): " + ", ".join(kept))
                lines.append("")
        if rhos:
            lines.append("Spearman correlation between the graph objective (predicted damage) and the metric over the "
                         "colourings at the same budget (a perfect criterion gives −1 for a higher-is-better metric): "
                         + ", ".join(rhos))
            lines.append("")
        lines.append("Stored parameters in the shareable layers removed (solved): " + ", ".join(
            f"{int(100 * ratio)} % → {100 * cell[('solved', ratio)]['shareable_removed']:.1f} %"
            for ratio in ratios if ('solved', ratio) in cell and cell[('solved', ratio)].get('shareable_removed') is not None))
        lines.append("")
    lines.append(LEGEND)
    return "\n".join(lines)


LEGEND = ("✓ = solved (surrogate only) / measured (the package's recommendation: measured refinement on calibration "
          "data, docs/measured.md) at least as good as the best heuristic at the same budget (excluding `all`, which "
          "stores fewer parameters, and `none`, the per-layer low-rank reference; the random heuristic counts "
          "through its mean over seeds when several were run); ✗ = worse. Every metric of every row, and each "
          "colouring's per-role layer pattern, is in results.csv / results.json.")


def recovery_time_line(cell: dict, names: list, ratios: list) -> str:
    return ("Recovery time per colouring (s, recovery steps plus the calibration/held-out losses before and after; "
            "the metric passes not included): " + "; ".join(
                f"{int(100 * ratio)} % → " + ", ".join(
                    f"{n} {cell[(n, ratio)]['recover_s']:.1f}" for n in names
                    if (n, ratio) in cell and cell[(n, ratio)].get("recover_s") is not None
                    and n != RANDOM_MEAN) for ratio in ratios))


def plot(summary: dict, key: str, path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing: no plot")
        return
    modes = list(dict.fromkeys(r["mode"] for r in summary["rows"]))
    stages = [(key, "before recovery" if summary.get("recovery") else "")]
    if summary.get("recovery"):
        stages.append((f"after_{key}", f"after {summary['recovery']['steps']} recovery steps"))
    rows_all = with_random_mean(summary["rows"], list(summary["original"]))
    fig, axes = plt.subplots(len(stages), len(modes), figsize=(6 * len(modes), 4.2 * len(stages)), squeeze=False)
    for j, mode in enumerate(modes):
        for i, (k, label) in enumerate(stages):
            ax = axes[i][j]
            rows = [r for r in rows_all if r["mode"] == mode and r.get(k) is not None]
            for name in dict.fromkeys(r["colouring"] for r in rows):
                if str(name).startswith("random-"):
                    continue                           # shown through their mean
                pts = sorted((r["ratio"], r[k]) for r in rows if r["colouring"] == name)
                style = dict(lw=2.5, color="crimson", marker="o") if name == "measured" else \
                    dict(lw=2.5, color="black", marker="o") if name == "solved" else \
                    dict(lw=1.5, ls="--", marker="s") if name == "none" else dict(lw=1, marker=".", alpha=0.8)
                ax.plot([100 * p[0] for p in pts], [p[1] for p in pts], label=name, **style)
            ax.axhline(summary["original"][key], color="grey", lw=0.8, ls=":")
            ax.set_title(f"{summary['spec']}: {mode} {label}".strip())
            ax.set_xlabel("stored parameters removed in the shareable layers (%)")
            ax.set_ylabel(key)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
