"""Markdown tables for README.md from the JSON files in results/ (``python benchmarks/frontend/tables.py``)."""
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


def cost_table() -> str:
    lines = ["| model | device | estimator | samples | floor s | analyze s | × floor | target | pair weights share "
             "| peak RSS MB |", "|---|---|---|---|---|---|---|---|---|---|"]
    for f in sorted(RESULTS.glob("cost-*.json")):
        for row in json.loads(f.read_text())["rows"]:
            if "error" in row:
                lines.append(f"| {row['model']} | | {row['estimator']} | error: {row['error'][:80]} |||||||")
                continue
            est = row["estimator"] + (f" (m={row['lanczos_steps']})" if row.get("lanczos_steps") else "")
            target = f"≤ {row['target']:g}×" if row.get("target") else "—"
            lines.append(f"| {row['model']} | {row['device']} | {est} | {row['samples']} | {fmt(row['floor_s'], 1)} | "
                         f"{fmt(row['analyze_s'], 1)} | {fmt(row['ratio_to_floor'])} | {target} | "
                         f"{100 * row['pairs_share']:.1f} % | {row['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def cli_table() -> str:
    lines = ["| command | wall s | user CPU s | analyze time_s | peak RSS MB | load average at end |",
             "|---|---|---|---|---|---|"]
    for f in sorted(RESULTS.glob("cli-time-*.json")):
        r = json.loads(f.read_text())
        lines.append(f"| `{r['command']}` | {r['wall_s']:.1f} | {r['user_cpu_s']:.1f} | {r['analyze_time_s']:.1f} | "
                     f"{r['peak_rss_mb']:.0f} | {', '.join(f'{x:.1f}' for x in r['load_average_at_end'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(predict_table(), cost_table(), cli_table(), sep="\n\n")
