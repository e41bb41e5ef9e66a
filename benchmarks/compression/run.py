"""Compression benchmark: the solved colouring against every heuristic colouring and against per-layer low rank
(no sharing), on a real network, at several compression ratios, in both sharing modes.

    python benchmarks/compression/run.py                      # minilm, ratios 0.2 0.3 0.4 0.5, tie and basis
    python benchmarks/compression/run.py --spec digits-mlp --ratios 0.25,0.5

For every ratio R (fraction of the shareable layers' stored parameters removed):
  tie   -- analyze once (diag curvature, tie pair weights); the budget max_params = ⌊(1−R)·Σ params⌋ is set per ratio
           (``Instance.with_budget``); solve; every heuristic at the solved number of classes per type (same stored
           parameters); each colouring materialised with the curvature-weighted merge.
  basis -- analyze per ratio (the basis pair weights depend on the rank R implies); solve; every heuristic at the
           solved classes per type; ``none`` = every layer alone = per-layer whitened low rank (SVD-LLM style) at
           the same ratio. Every class gets Basis Sharing's rank for ratio R.
Writes results.json, results.csv, compression.png and the results section of README.md (between markers), all
from this run. Uses the public API only.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = ("all", "sequence", "cycle", "cycle-rev", "adjacent", "sandwich", "random")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default="minilm")
    ap.add_argument("--ratios", default="0.2,0.3,0.4,0.5")
    ap.add_argument("--modes", default="tie,basis")
    ap.add_argument("--solver", default="cpsat")
    ap.add_argument("--estimator", default="diag")
    ap.add_argument("--samples", type=int, default=None, help="calibration sequences for analyze (spec default)")
    ap.add_argument("--time-limit", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--no-readme", action="store_true", help="do not rewrite README.md's results section")
    ap.add_argument("--render", metavar="RESULTS_JSON", default=None,
                    help="only re-render tables, plot and README from a results.json this script wrote")
    args = ap.parse_args(argv)
    if args.render:
        summary = json.loads(Path(args.render).read_text())
        table = render(summary, Path(args.out), readme=not args.no_readme)
        print(table)
        return 0

    import torch
    torch.set_num_threads(max(1, torch.get_num_threads()))
    from geoshare_opt import solve
    from geoshare_opt.frontend import analyze, load_curvature
    from geoshare_opt.pipeline import compare_colourings, evaluate_model
    from geoshare_opt.specs import load_spec

    ratios = [float(r) for r in args.ratios.split(",")]
    modes = [m.strip() for m in args.modes.split(",")]
    out = Path(args.out)
    t_start = time.perf_counter()
    from geoshare_opt.pipeline import PIPELINE_SPEC_DEFAULTS
    opts = dict(PIPELINE_SPEC_DEFAULTS.get(args.spec, {}))
    if args.samples is not None and "n_calib" in opts:
        opts["n_calib"] = args.samples
    log(f"loading spec {args.spec} {opts}")
    spec = load_spec(args.spec, **opts)
    original = evaluate_model(spec, spec.model)
    log(f"original: {original}")
    records = []
    with tempfile.TemporaryDirectory(prefix="geoshare-bench-") as tmp:
        for mode in modes:
            base = None
            for ratio in ratios:
                t0 = time.perf_counter()
                path = Path(tmp) / f"{mode}-{ratio}.json"
                if mode == "tie":
                    if base is None:
                        log(f"analyze ({args.estimator}, tie)")
                        base = analyze(spec, estimator=args.estimator, mode="tie", ratio=ratios[0], seed=args.seed,
                                       samples=args.samples, out=Path(tmp) / "tie.json")
                        curvature = load_curvature(Path(tmp) / "tie.json")
                    total = int(base.params.sum())
                    instance = base.with_budget(max_params=math.floor((1 - ratio) * total))
                else:
                    log(f"analyze ({args.estimator}, basis, ratio {ratio})")
                    instance = analyze(spec, estimator=args.estimator, mode="basis", ratio=ratio, seed=args.seed,
                                       samples=args.samples, out=path)
                    curvature = load_curvature(path)
                t_an = time.perf_counter() - t0
                result = solve(instance, args.solver, time_limit=args.time_limit, seed=args.seed)
                log(f"{mode} {ratio}: {args.solver} {result.termination}, objective {result.objective}, "
                    f"classes {result.classes_per_type}")
                rows, _ = compare_colourings(spec, instance, curvature, result, mode, ratio, KINDS, seed=args.seed,
                                             ref=args.spec, progress=lambda info: log(info.get("message", "")))
                for r in rows:
                    records.append({"mode": mode, "ratio": ratio, "colouring": r["colouring"],
                                    "objective": r.get("objective"), "classes": r.get("classes"),
                                    "stored_params": r.get("stored_params"),
                                    "shareable_removed": r.get("shareable_removed"),
                                    "model_removed": r.get("model_removed"), **(r.get("metrics") or {}),
                                    "solve_s": result.wall_time_s if r["colouring"] == "solved" else None,
                                    "analyze_s": round(t_an, 2) if r["colouring"] == "solved" else None,
                                    "solver_termination": result.termination if r["colouring"] == "solved" else None,
                                    "pattern": r.get("pattern")})
                log(f"{mode} {ratio} done in {time.perf_counter() - t0:.0f}s")
                write_outputs(args, argv, original, records, out, t_start)
    summary, table = write_outputs(args, argv, original, records, out, t_start)
    print(table)
    log(f"done in {summary['wall_s']}s")
    return 0


def write_outputs(args, argv, original, records, out: Path, t_start: float):
    """results.json/.csv/.md, the plot and README's results section, from the rows measured so far."""
    metric_names = list(original)
    summary = {"spec": args.spec, "solver": args.solver, "estimator": args.estimator, "samples": args.samples,
               "time_limit": args.time_limit, "seed": args.seed, "original": original, "rows": records,
               "wall_s": round(time.perf_counter() - t_start, 1),
               "command": "python benchmarks/compression/run.py " + " ".join(argv or sys.argv[1:])}
    (out / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    table = render(summary, out, readme=not args.no_readme)
    return summary, table


def render(summary: dict, out: Path, readme: bool = True) -> str:
    """results.csv, results.md, compression.png and README's results section from a summary."""
    metric_names = list(summary["original"])
    records = summary["rows"]
    cols = ["mode", "ratio", "colouring", *metric_names, "objective", "classes", "stored_params",
            "shareable_removed", "model_removed", "analyze_s", "solve_s", "solver_termination", "pattern"]
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


def markdown(summary: dict, metrics: list[str]) -> str:
    key = metrics[0]
    sign = -1 if lower_is_better(key) else 1
    lines = [f"Spec `{summary['spec']}`, solver `{summary['solver']}`, estimator `{summary['estimator']}`, "
             f"original: " + ", ".join(f"{k} {v:.4f}" for k, v in summary["original"].items()) +
             f". Wall time of the whole run: {summary['wall_s']} s. Command: `{summary['command'].strip()}`.", ""]
    for mode in dict.fromkeys(r["mode"] for r in summary["rows"]):
        ratios = list(dict.fromkeys(r["ratio"] for r in summary["rows"] if r["mode"] == mode))
        names = list(dict.fromkeys(r["colouring"] for r in summary["rows"] if r["mode"] == mode))
        lines.append(f"**{mode}** — {key} (higher is better)" if sign > 0 else f"**{mode}** — {key} (lower is better)")
        lines.append("")
        lines.append("| colouring | " + " | ".join(f"{int(100 * r)} %" for r in ratios) + " |")
        lines.append("|---|" + "---|" * len(ratios))
        cell = {(r["colouring"], r["ratio"]): r for r in summary["rows"] if r["mode"] == mode}
        best = {}
        for ratio in ratios:
            cands = [cell[(n, ratio)] for n in names if n not in ("solved", "all", "none") and (n, ratio) in cell
                     and key in cell[(n, ratio)]]
            best[ratio] = max((sign * c[key] for c in cands), default=None)
        for n in names:
            vals = []
            for ratio in ratios:
                r = cell.get((n, ratio))
                if r is None or key not in r:
                    vals.append("–")
                    continue
                v = f"{r[key]:.4f}"
                if n == "solved" and best[ratio] is not None:
                    v += " ✓" if sign * r[key] >= best[ratio] else " ✗"
                vals.append(v)
            lines.append(f"| {n} | " + " | ".join(vals) + " |")
        lines.append("")
        rhos = []
        for ratio in ratios:
            same = [cell[(n, ratio)] for n in names if n not in ("all", "none") and (n, ratio) in cell
                    and key in cell[(n, ratio)] and cell[(n, ratio)].get("objective") is not None]
            if len(same) >= 3:
                from scipy.stats import spearmanr
                rho = spearmanr([r["objective"] for r in same], [r[key] for r in same]).correlation
                rhos.append(f"{int(100 * ratio)} % → {rho:+.2f}")
        if rhos:
            lines.append("Spearman correlation between the graph objective (predicted damage) and the metric over the "
                         "colourings at the same budget (a perfect criterion gives −1 for a higher-is-better metric): "
                         + ", ".join(rhos))
            lines.append("")
        lines.append("Stored parameters in the shareable layers removed (solved): " + ", ".join(
            f"{int(100 * ratio)} % → {100 * cell[('solved', ratio)]['shareable_removed']:.1f} %"
            for ratio in ratios if ('solved', ratio) in cell and cell[('solved', ratio)].get('shareable_removed') is not None))
        lines.append("")
    lines.append("✓ = solved at least as good as the best heuristic at the same budget (excluding `all`, which "
                 "stores fewer parameters, and `none`, the per-layer low-rank reference); ✗ = worse. Every metric "
                 "of every row, and each colouring's per-role layer pattern, is in results.csv / results.json.")
    return "\n".join(lines)


def plot(summary: dict, key: str, path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing: no plot")
        return
    modes = list(dict.fromkeys(r["mode"] for r in summary["rows"]))
    fig, axes = plt.subplots(1, len(modes), figsize=(6 * len(modes), 4.2), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        rows = [r for r in summary["rows"] if r["mode"] == mode and key in r]
        for name in dict.fromkeys(r["colouring"] for r in rows):
            pts = sorted((r["ratio"], r[key]) for r in rows if r["colouring"] == name)
            style = dict(lw=2.5, color="black", marker="o") if name == "solved" else \
                dict(lw=1.5, ls="--", marker="s") if name == "none" else dict(lw=1, marker=".", alpha=0.8)
            ax.plot([100 * p[0] for p in pts], [p[1] for p in pts], label=name, **style)
        ax.axhline(summary["original"][key], color="grey", lw=0.8, ls=":")
        ax.set_title(f"{summary['spec']}: {mode}")
        ax.set_xlabel("stored parameters removed in the shareable layers (%)")
        ax.set_ylabel(key)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
