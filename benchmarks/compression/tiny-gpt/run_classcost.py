"""tiny-gpt, tie mode: the colouring chosen on the TRUE class cost (``classcost`` backend, with the curvature sidecar)
against the graph-objective colouring (``cpsat``) and every heuristic, no recovery.

    python benchmarks/compression/tiny-gpt/run_classcost.py [--ratios 0.2,0.3,0.4,0.5] [--random-seeds 0,1,2]

``run.py`` solves on the graph objective only (it passes no sidecar), so this variant exists to test whether the
true class cost (curvature-weighted merge cost of each class, see formulations/sweep-and-classcost.md) picks better tie
colourings on the deep model. Same public API as run.py (``analyze``, ``solve``, ``compare_colourings``); every
heuristic gets the classes per type of the colouring it is compared with. Writes classcost.json and classcost.md here.
"""
from __future__ import annotations

import argparse
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ratios", default="0.2,0.3,0.4,0.5")
    ap.add_argument("--random-seeds", default="0,1,2")
    ap.add_argument("--time-limit", type=float, default=20.0)
    ap.add_argument("--estimator", default="diag")
    ap.add_argument("--recover", type=int, default=None, metavar="N", help="recovery steps for every colouring")
    ap.add_argument("--recover-lr", type=float, default=None)
    ap.add_argument("--recover-batch", type=int, default=None)
    ap.add_argument("--name", default="classcost", help="stem of the output files")
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args()

    from geoshare_opt import solve
    from geoshare_opt.frontend import analyze, load_curvature
    from geoshare_opt.pipeline import (PIPELINE_SPEC_DEFAULTS, compare_colourings, evaluate_model,
                                       recovery_settings)
    from geoshare_opt.specs import load_spec

    t_start = time.perf_counter()
    spec = load_spec("tiny-gpt", **PIPELINE_SPEC_DEFAULTS["tiny-gpt"])
    original = evaluate_model(spec, spec.model)
    seeds = [int(s) for s in args.random_seeds.split(",")]
    recovery = recovery_settings(args.recover, {"lr": args.recover_lr, "batch_size": args.recover_batch}
                                 if args.recover is not None else None, 0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="geoshare-tinygpt-") as tmp:
        path = Path(tmp) / "tie.json"
        base = analyze(spec, estimator=args.estimator, mode="tie", ratio=0.2, out=path)
        sidecar = str(path.with_name("tie.curvature.safetensors"))
        curvature = load_curvature(path)
        total = int(base.params.sum())
        for ratio in (float(r) for r in args.ratios.split(",")):
            instance = base.with_budget(max_params=math.floor((1 - ratio) * total))
            result = solve(instance, "classcost", time_limit=args.time_limit, seed=0, threads=1,
                           native={"sidecar": sidecar})
            log(f"{ratio}: classcost {result.termination}, classes {result.classes_per_type}, "
                f"true cost {result.stats.get('true_cost', result.stats.get('final'))}")
            found, _ = compare_colourings(spec, instance, curvature, result, "tie", ratio, KINDS, ref="tiny-gpt",
                                          random_seeds=seeds, recovery=recovery,
                                          progress=lambda info: log(info.get("message", "")))
            for r in found:
                after = ((r.get("recovered") or {}).get("metrics") or {})
                rows.append({"ratio": ratio, "colouring": r["colouring"], **(r.get("metrics") or {}),
                             **{f"after_{k}": v for k, v in after.items()}, "recover_s": r.get("recover_s"),
                             "shareable_removed": r.get("shareable_removed"), "classes_per_type":
                             r.get("classes_per_type"), "pattern": r.get("pattern")})
            log(f"{ratio}: " + ", ".join(f"{r['colouring']} {r.get('heldout_perplexity', float('nan')):.3f}"
                                         for r in rows if r["ratio"] == ratio))
            write(args, original, rows, t_start, recovery)
    return 0


def write(args, original: dict, rows: list[dict], t_start: float, recovery: dict | None) -> None:
    summary = {"spec": "tiny-gpt", "solver": "classcost (true class cost, sidecar)", "estimator": args.estimator,
               "original": original, "recovery": recovery, "rows": rows,
               "wall_s": round(time.perf_counter() - t_start, 1),
               "command": "python benchmarks/compression/tiny-gpt/run_classcost.py " + " ".join(sys.argv[1:])}
    (args.out / f"{args.name}.json").write_text(json.dumps(summary, indent=1) + "\n")
    ratios = sorted({r["ratio"] for r in rows})
    names = list(dict.fromkeys(r["colouring"] for r in rows))
    cell = {(r["colouring"], r["ratio"]): r for r in rows}
    lines = [f"Command: `{summary['command']}`; original held-out perplexity "
             f"{original['heldout_perplexity']:.4f}; wall {summary['wall_s']} s.", "",
             "| colouring | " + " | ".join(f"{round(r * 100)} %" for r in ratios) + " |",
             "|---|" + "---|" * len(ratios)]
    for n in names:
        vals = []
        for r in ratios:
            row = cell.get((n, r))
            if row is None or "heldout_perplexity" not in row:
                vals.append("–")
            elif "after_heldout_perplexity" in row:
                vals.append(f"{row['heldout_perplexity']:.4f} → {row['after_heldout_perplexity']:.4f}")
            else:
                vals.append(f"{row['heldout_perplexity']:.4f}")
        lines.append(f"| {n} | " + " | ".join(vals) + " |")
    for r in ratios:
        seeds = [cell[(n, r)]["heldout_perplexity"] for n in names if n.startswith("random-") and (n, r) in cell]
        after = [cell[(n, r)]["after_heldout_perplexity"] for n in names
                 if n.startswith("random-") and "after_heldout_perplexity" in cell.get((n, r), {})]
        if seeds:
            lines.append(f"\nrandom mean at {round(r * 100)} %: {sum(seeds) / len(seeds):.4f}"
                         + (f" → {sum(after) / len(after):.4f} after recovery" if after else ""))
    solved = {r: cell[("solved", r)] for r in ratios if ("solved", r) in cell}
    lines.append("\nShareable parameters removed by the classcost colouring: " + ", ".join(
        f"{round(r * 100)} % → {100 * (row.get('shareable_removed') or 0):.1f} %" for r, row in solved.items()))
    (args.out / f"{args.name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
