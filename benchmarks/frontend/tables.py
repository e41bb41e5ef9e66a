"""Markdown tables for README.md from the JSON files in results/ (``python benchmarks/frontend/tables.py``; with
``--readme`` the tables between the ``<!-- RESULTS_* -->`` markers of README.md are replaced in place)."""
from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def fmt(x, nd=2):
    return "—" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))


def predict_table() -> str:
    lines = ["| model | pairs | damage on | diag | kfac | lanczos | ‖w_i − w_j‖² (baseline) | within-type mean (best) |",
             "|---|---|---|---|---|---|---|---|"]
    for f in sorted(RESULTS.glob("predict-*.json")):
        if "-methods" in f.stem:          # diag-method variant studies: variants_table
            continue
        r = json.loads(f.read_text())
        label = r["model"] + "".join(f" {k}={v}" for k, v in r.get("spec_options", {}).items() if k != "n_calib")
        for key, what in (("spearman", "held-out"), ("spearman_calibration_damage", "calibration")):
            if key not in r:
                continue
            s = r[key]
            base = s["distance (baseline, plain mean)"]["all"]
            ests = [e for e in ("diag", "kfac", "lanczos") if e in s]
            best = max(ests, key=lambda e: s[e]["all"])
            lines.append(f"| {label} | {r['pairs']} | {what} | "
                         + " | ".join(fmt(s[e]["all"]) if e in s else "—" for e in ("diag", "kfac", "lanczos"))
                         + f" | {fmt(base)} | {fmt(s[best]['within_type_mean'])} ({best}) |")
    return "\n".join(lines)


def variants_table() -> str:
    """Spearman of each diag method (``run_predict.py --diag-methods ...``), with and without the g·δ term."""
    lines = ["| model | pairs | first-order term | damage on | " + " | ".join(f"diag-{m}" for m in DIAG_METHODS) + " |",
             "|---|---|---|---|" + "---|" * len(DIAG_METHODS)]
    for f in sorted(RESULTS.glob("predict-*-methods*.json")):
        r = json.loads(f.read_text())
        label = r["model"] + "".join(f" {k}={v}" for k, v in r.get("spec_options", {}).items() if k != "n_calib")
        for key, what in (("spearman", "held-out"), ("spearman_calibration_damage", "calibration")):
            if key in r:
                s = r[key]
                lines.append(f"| {label} | {r['pairs']} | {'with' if r.get('first_order', True) else 'without'} | "
                             f"{what} | " + " | ".join(fmt(s[f'diag-{m}']['all']) if f"diag-{m}" in s else "—"
                                                       for m in DIAG_METHODS) + " |")
    return "\n".join(lines)


DIAG_METHODS = ("ggn", "empirical", "hutchinson")

SETTING_LABELS = {
    "old": "old: calibrate on the training set, cross-entropy, trained to ~zero loss (`fit`)",
    "split": "calibration split kept out of training",
    "regularised": "weight decay + early stopping (`recipe=regularised`)",
    "split+regularised": "split + regularised, cross-entropy",
    "new": "**new: split + regularised + distillation loss (KL to the original softmax)**",
}


def seeds_table() -> str:
    """``run_predict_seeds.py``: median [min–max] Spearman over training seeds, and seeds at >= 0.8."""
    lines = ["| depth (pairs) | setting | test accuracy | damage | diag | kfac | lanczos | ‖w_i − w_j‖² (baseline) | "
             "lanczos: seeds ≥ 0.8 |", "|---|---|---|---|---|---|---|---|---|"]
    for f in sorted(RESULTS.glob("seeds-digits-mlp-depth*.json")):
        r = json.loads(f.read_text())
        for name, st in r["settings"].items():
            for kind, what in (("heldout", f"held-out {st['spec_loss']}"), ("task", "held-out task cross-entropy")):
                if kind == "task" and st["spec_loss"] == "cross-entropy":
                    continue                                   # the same numbers as the spec loss
                cell = lambda e: (f"{st[kind][e]['median']:.2f} [{st[kind][e]['min']:.2f}–{st[kind][e]['max']:.2f}]"
                                  if e in st[kind] else "—")
                lan, base = st[kind].get("lanczos"), st[kind]["distance (baseline, plain mean)"]
                above = "—" if lan is None else \
                    f"{lan['seeds_at_target']}/{lan['seeds']}; above baseline in " \
                    f"{sum(a > b for a, b in zip(lan['per_seed'], base['per_seed']))}/{lan['seeds']}"
                acc = st.get("test_accuracy")
                acc = f"{acc['median']:.3f} [{acc['min']:.3f}–{acc['max']:.3f}]" if acc else "—"
                lines.append(f"| {r['depth']} ({r['pairs']}) | {SETTING_LABELS.get(name, name)} | {acc} | {what} | "
                             + " | ".join(cell(e) for e in ("diag", "kfac", "lanczos",
                                                            "distance (baseline, plain mean)"))
                             + f" | {above} |")
    return "\n".join(lines)


def cost_table() -> str:
    lines = ["| model | device | estimator | samples | floor s | analyze s | × floor | target | pair weights share "
             "| peak RSS MB |", "|---|---|---|---|---|---|---|---|---|---|"]
    for f in sorted(RESULTS.glob("cost-*.json")):
        for row in json.loads(f.read_text())["rows"]:
            if "error" in row:
                lines.append(f"| {row['model']} | | {row['estimator']} | error: {row['error'][:80]} |||||||")
                continue
            est = row["estimator"] + (f" (m={row['lanczos_steps']})" if row.get("lanczos_steps") else "") \
                + (f", mode {row['mode']}" if row.get("mode", "tie") != "tie" else "")
            target = f"≤ {row['target']:g}×" if row.get("target") and row.get("mode", "tie") == "tie" else "—"
            lines.append(f"| {row['model']} | {row['device']} | {est} | {row['samples']} | {fmt(row['floor_s'], 1)} | "
                         f"{fmt(row['analyze_s'], 1)} | {fmt(row['ratio_to_floor'])} | {target} | "
                         f"{100 * row['pairs_share']:.1f} % | {row['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def basis_table() -> str:
    """``run_basis_pairs.py``: time per type of the direct algebra and of the fast path, and their differences."""
    lines = ["| type | pairs | shared rank | direct s | float64 s | float32 s | max abs diff float64 vs direct | "
             "max abs diff float32 vs float64 (largest weight) | Spearman float32 vs float64 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for f in sorted(RESULTS.glob("basis-pairs-*.json")):
        r = json.loads(f.read_text())
        for row in r["rows"]:
            direct = row.get("direct_s")
            diff = row.get("max_abs_diff_f64_direct")
            lines.append(f"| {row['type']} | {row['pairs']} | {row['rank']} | {fmt(direct)} | {fmt(row['float64_s'])} | "
                         f"{fmt(row['float32_s'])} | {'—' if diff is None else f'{diff:.1e}'} | "
                         f"{row['max_abs_diff']:.1e} ({row['max_abs_weight']:.2f}) | {row['spearman_f32_f64']:.4f} |")
        lines.append(f"| **{r['model']}, all** | {sum(x['pairs'] for x in r['rows'])} | | **{fmt(r.get('total_direct_s'), 1)}** | "
                     f"**{fmt(r['total_float64_s'], 1)}** | **{fmt(r['total_float32_s'], 1)}** | | | |")
    return "\n".join(lines)


def cli_table() -> str:
    lines = ["| command | wall s | user CPU s | analyze time_s | peak RSS MB | load average at end |",
             "|---|---|---|---|---|---|"]
    for f in sorted(RESULTS.glob("cli-time-*.json")):
        r = json.loads(f.read_text())
        lines.append(f"| `{r['command']}` | {r['wall_s']:.1f} | {r['user_cpu_s']:.1f} | {r['analyze_time_s']:.1f} | "
                     f"{r['peak_rss_mb']:.0f} | {', '.join(f'{x:.1f}' for x in r['load_average_at_end'])} |")
    return "\n".join(lines)


def lanczos_graphs_table() -> str:
    """``run_lanczos_graphs.py``: Lanczos with kept gradient graphs against recomputing them, alternated."""
    lines = ["| model | samples | m | variant | × floor per run | mean × floor | target | graphs kept (MB) | "
             "load average | eigenvalues identical |", "|---|---|---|---|---|---|---|---|---|---|"]
    for f in sorted(RESULTS.glob("lanczos-graphs-*.json")):
        r = json.loads(f.read_text())
        for variant in ("recompute", "kept"):
            rows = [x for x in r["rows"] if x["variant"] == variant]
            lines.append(f"| {r['model']} ({r['device']}) | {r['samples']} | {r['lanczos_steps']} | {variant} | "
                         + ", ".join(f"{x['ratio_to_floor']:.2f}" for x in rows)
                         + f" | {r['mean_ratio'][variant]:.2f} | ≤ {r['target']:g}× | {rows[0]['graphs_kept']} "
                         f"({rows[0]['graphs_kept_mb']:.0f}) | "
                         + ", ".join(f"{x['load_average'][0]:.1f}" for x in rows)
                         + f" | {'yes' if r['eigenvalues_identical'] else 'NO'} |")
    return "\n".join(lines)


BLOCKS = {"RESULTS_PREDICT": predict_table, "RESULTS_SEEDS": seeds_table, "RESULTS_VARIANTS": variants_table,
          "RESULTS_COST": cost_table, "RESULTS_LANCZOS_GRAPHS": lanczos_graphs_table,
          "RESULTS_BASIS": basis_table, "RESULTS_CLI": cli_table}


def write_readme(path: Path) -> None:
    """Replace the text between ``<!-- NAME -->`` and ``<!-- /NAME -->`` with the current table."""
    text = path.read_text()
    for name, table in BLOCKS.items():
        start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
        if start in text and end in text:
            head, rest = text.split(start, 1)
            text = head + start + "\n" + table() + "\n" + end + rest.split(end, 1)[1]
    path.write_text(text)


if __name__ == "__main__":
    import sys

    if "--readme" in sys.argv:      # python benchmarks/frontend/tables.py --readme: refresh README.md in place
        write_readme(RESULTS.parent / "README.md")
    else:
        print(*(table() for table in BLOCKS.values()), sep="\n\n")
