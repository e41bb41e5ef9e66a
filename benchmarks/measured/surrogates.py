"""Which surrogate should order the measured refinement's candidates, and what measured class costs buy: the
recommendation (``geoshare_opt.measured.recommend``) at the same forward-pass budget with and without measured class
costs, side by side at every ratio, against every heuristic at the same stored parameters (held-out metric).

* ``diag``: the default. Candidates ordered by the diagonal model's true class cost (no measuring before the search).
* ``measured``: every class of every type measured first (MiniLM: 342 classes on one calibration piece each); the
  summed measured class costs give one more start (their exact optimum under the budget) and order the candidates.

    python benchmarks/measured/surrogates.py                    # minilm at the pipeline's sizes, tie, 4 ratios
    python benchmarks/measured/surrogates.py --passes 840 --ratios 0.2,0.5

Writes ``surrogates.json`` and ``surrogates.md`` beside this file (or ``--out``). Class costs are measured from a
fresh cache (a temporary ``GEOSHARE_OPT_CACHE``), so their seconds are what a first run pays. CPU seconds are
``time.process_time`` of the recommendation (one thread); the load average is recorded before every ratio.
"""
from __future__ import annotations

import argparse
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
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", default="minilm")
    ap.add_argument("--ratios", default="0.2,0.3,0.4,0.5")
    ap.add_argument("--passes", type=int, default=None, help="forward-pass budget (default: the package's)")
    ap.add_argument("--out", default=str(HERE))
    return ap.parse_args(argv)


def one_ratio(spec, base, curvature, ratio: float, passes: int | None) -> dict:
    """The heuristics and both recommendations at one ratio, each with its held-out metrics."""
    from geoshare_opt import solve
    from geoshare_opt.pipeline import evaluate_model, heuristic_colourings, primary_metric
    from geoshare_opt.measured import ColouringEvaluator, recommend
    from geoshare_opt.measured.network import as_labels
    instance = base.with_budget(max_params=math.floor((1 - ratio) * int(base.params.sum())))
    result = solve(instance, "auto", seed=0)
    starts = {"solved": result, **dict(heuristic_colourings(instance, result, KINDS, "tie", 0))}
    out = {"ratio": ratio, "load": os.getloadavg()[0], "colourings": {}}
    with ColouringEvaluator(spec, instance, curvature, batches=spec.heldout()) as held:
        for name, colouring in starts.items():
            out["colourings"][name] = held.metrics(as_labels(instance, colouring))
        for surrogate, class_costs in (("diag", False), ("measured", True)):
            opts = {"class_costs": class_costs, **({} if passes is None else {"max_passes": passes})}
            cpu = time.process_time()
            found, record = recommend(spec, instance, curvature, starts, options=opts)
            out[surrogate] = {"cpu_s": round(time.process_time() - cpu, 1), "start": record["start"],
                              "forward_passes": record["forward_passes"],
                              "class_cost_passes": record.get("class_cost_passes", 0),
                              "search_loss": record["search_loss"], "stopped": record["stopped"],
                              "metrics": held.metrics(as_labels(instance, found))}
            log(f"{ratio}: {surrogate} {out[surrogate]['metrics']} cpu {out[surrogate]['cpu_s']} s")
    metric = primary_metric(out["colourings"]["solved"])
    out["metric"] = metric
    return out


def markdown(summary: dict) -> str:
    from geoshare_opt.specs.base import lower_is_better
    rows = summary["ratios"]
    metric = rows[0]["metric"]
    pick = min if lower_is_better(metric) else max
    lines = [f"Spec `{summary['spec']}`, tie mode, held-out `{metric}`; pass budget {summary['passes']}. "
             f"Command: `{summary['command']}`; wall {summary['wall_s']} s.", "",
             "| ratio | best heuristic | diag surrogate (cpu s) | measured class costs (cpu s, class-cost passes) "
             "| load |", "|---|---|---|---|---|"]
    for r in rows:
        heur = {k: v[metric] for k, v in r["colourings"].items() if k not in ("solved", "all")}
        best = pick(heur, key=heur.get)
        d, m = r["diag"], r["measured"]
        lines.append(f"| {round(r['ratio'] * 100)} % | {heur[best]:.4f} ({best}) | {d['metrics'][metric]:.4f} "
                     f"({d['cpu_s']}) | {m['metrics'][metric]:.4f} ({m['cpu_s']}, {m['class_cost_passes']}) "
                     f"| {r['load']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    torch.set_num_threads(1)
    from geoshare_opt.frontend import analyze, load_curvature
    from geoshare_opt.pipeline import load_pipeline_spec
    t0 = time.perf_counter()
    spec = load_pipeline_spec(args.spec)
    ratios = [float(r) for r in args.ratios.split(",")]
    with tempfile.TemporaryDirectory(prefix="geoshare-surrogates-") as tmp:
        os.environ["GEOSHARE_OPT_CACHE"] = tmp
        log("analyze (diag, tie)")
        base = analyze(spec, estimator="diag", mode="tie", ratio=ratios[0], seed=0, out=Path(tmp) / "tie.json")
        curvature = load_curvature(Path(tmp) / "tie.json")
        rows = [one_ratio(spec, base, curvature, ratio, args.passes) for ratio in ratios]
    summary = {"spec": args.spec, "passes": args.passes or "default (work rule)", "ratios": rows,
               "command": "python benchmarks/measured/surrogates.py " + " ".join(sys.argv[1:] if argv is None
                                                                                 else argv),
               "wall_s": round(time.perf_counter() - t0, 1)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "surrogates.json").write_text(json.dumps(summary, indent=1) + "\n")
    table = markdown(summary)
    (out / "surrogates.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
