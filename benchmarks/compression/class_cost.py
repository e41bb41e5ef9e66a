"""Is the graph objective the problem, or the curvature model? For every tie-mode colouring in results.json, the
diagonal quadratic model's *true* class cost (every class merged to its curvature-weighted mean,
``½ Σ_l Σ_p h_lp (w_lp − w̄_p)²``, which is what ``apply`` reports as ``predicted_cost``) beside the graph objective
(sum of pair weights) and the measured metric.

    python benchmarks/compression/class_cost.py                       # re-runs analyze (tie, diag) like run.py
    python benchmarks/compression/class_cost.py --instance I.json     # reuse an instance + sidecar from analyze

Writes class_cost.csv and class_cost.md and prints a table with the Spearman correlation of each predictor with the metric.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default=str(HERE / "results.json"))
    ap.add_argument("--instance", default=None)
    ap.add_argument("--out", default=str(HERE / "class_cost.csv"))
    args = ap.parse_args(argv)

    from scipy.stats import spearmanr

    from geoshare_opt.baselines import layer_order
    from geoshare_opt.frontend import analyze, load_curvature
    from geoshare_opt.instance import Instance
    from geoshare_opt.materialize.tie import class_cost, merge
    from geoshare_opt.pipeline import PIPELINE_SPEC_DEFAULTS
    from geoshare_opt.specs import load_spec

    summary = json.loads(Path(args.results).read_text())
    spec = load_spec(summary["spec"], **PIPELINE_SPEC_DEFAULTS.get(summary["spec"], {}))
    with tempfile.TemporaryDirectory() as tmp:
        path = args.instance
        if path is None:
            path = Path(tmp) / "tie.json"
            ratio = min(r["ratio"] for r in summary["rows"])
            analyze(spec, estimator=summary["estimator"], mode="tie", ratio=ratio, seed=summary["seed"],
                    samples=summary.get("samples"), out=path)
        inst = Instance.load(path)
        curv = load_curvature(path)
    params = dict(spec.model.named_parameters())
    key = next(iter(summary["original"]))

    def true_cost(pattern: dict) -> float:
        total = 0.0
        for t, pat in pattern.items():
            groups: dict[str, list[str]] = {}
            for i, c in zip(layer_order(inst, t), pat.split()):
                groups.setdefault(c, []).append(inst.nodes[i].id)
            for members in groups.values():
                if len(members) > 1:
                    w = [params[m] for m in members]
                    h = [curv[f"diag/{m}"] for m in members]
                    total += class_cost(w, h, merge(w, h))
        return total

    rows = [{"ratio": r["ratio"], "colouring": r["colouring"], key: r[key], "graph_objective": r["objective"],
             "true_class_cost": true_cost(r["pattern"])}
            for r in summary["rows"] if r["mode"] == "tie" and r["colouring"] != "all" and r.get("pattern")]
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [f"| ratio | colouring | {key} | graph objective | true class cost |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {int(100 * r['ratio'])} % | {r['colouring']} | {r[key]:.4f} | {r['graph_objective']:.4f} | "
                     f"{r['true_class_cost']:.4f} |")
    lines.append("")
    for ratio in dict.fromkeys(r["ratio"] for r in rows):
        sel = [r for r in rows if r["ratio"] == ratio]
        a = spearmanr([r["graph_objective"] for r in sel], [r[key] for r in sel]).correlation
        b = spearmanr([r["true_class_cost"] for r in sel], [r[key] for r in sel]).correlation
        lines.append(f"ratio {ratio}: Spearman with {key}: graph objective {a:+.2f}, true class cost {b:+.2f}")
    text = "\n".join(lines) + "\n"
    Path(args.out).with_suffix(".md").write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
