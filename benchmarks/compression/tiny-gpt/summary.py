"""Summary of the tiny-gpt compression runs: solved colouring against the best heuristic at the same stored
parameters, per run and ratio, before and after recovery. Reads the JSON files the runs wrote (see README.md) and
rewrites README.md's summary section; prints the table.

    python benchmarks/compression/tiny-gpt/summary.py
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = (("tie, graph objective, diag, `auto` (`tie-auto/`)", "tie-auto/results.json"),
        ("tie, graph objective, diag, `auto`, recovery (`tie-auto-recover/`)", "tie-auto-recover/results.json"),
        ("tie, graph objective, diag, CP-SAT 20 s (`tie/`)", "tie/results.json"),
        ("tie, graph objective, K-FAC, CP-SAT 20 s (`tie-kfac/`)", "tie-kfac/results.json"),
        ("tie, true class cost, diag (`classcost.md`)", "classcost.json"),
        ("tie, true class cost, diag, recovery (`classcost-recover.md`)", "classcost-recover.json"),
        ("basis, graph objective, diag (`basis/`)", "basis/results.json"),
        ("basis, graph objective, diag (`basis-high/`)", "basis-high/results.json"),
        ("basis, graph objective, diag, recovery (`basis-high-recover/`)", "basis-high-recover/results.json"),
        ("basis, graph objective, diag, `auto`, recovery lr 1e-4 (`basis-recover/`)", "basis-recover/results.json"))
HEURISTICS = ("sequence", "cycle", "cycle-rev", "adjacent", "sandwich")
METRIC = "heldout_perplexity"


def best_heuristic(rows: list[dict], key: str) -> tuple[str, float] | None:
    values = {r["colouring"]: r[key] for r in rows if r["colouring"] in HEURISTICS and r.get(key) is not None}
    randoms = [r[key] for r in rows if r["colouring"].startswith("random") and r.get(key) is not None]
    if randoms:
        values["random (mean)"] = sum(randoms) / len(randoms)
    if not values:
        return None
    name = min(values, key=values.get)
    return name, values[name]


def lines() -> list[str]:
    out = ["| run | removed (target → solved) | solved | best heuristic | solved after recovery "
           "| best heuristic after recovery |", "|---|---|---|---|---|---|"]
    for label, rel in RUNS:
        path = HERE / rel
        if not path.exists():
            continue
        rows = json.loads(path.read_text())["rows"]
        for ratio in sorted({r["ratio"] for r in rows}):
            at = [r for r in rows if r["ratio"] == ratio]
            solved = next((r for r in at if r["colouring"] == "solved"), None)
            if solved is None or solved.get(METRIC) is None:
                continue
            cells = []
            for key in (METRIC, f"after_{METRIC}"):
                best = best_heuristic(at, key)
                mine = solved.get(key)
                if best is None or mine is None:
                    cells += ["–", "–"]
                    continue
                mark = "✓" if mine <= best[1] else "✗"
                cells += [f"{mine:.3f} {mark}", f"{best[1]:.3f} ({best[0]})"]
            removed = solved.get("shareable_removed")
            removed = f"{round(ratio * 100)} % → {100 * removed:.1f} %" if removed is not None else f"{ratio}"
            out.append(f"| {label} | {removed} | " + " | ".join(cells) + " |")
    return out


def main() -> int:
    table = "\n".join(lines())
    readme = HERE / "README.md"
    text = readme.read_text()
    a, b = "<!-- summary:start -->", "<!-- summary:end -->"
    readme.write_text(text[:text.index(a) + len(a)] + "\n" + table + "\n" + text[text.index(b):])
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
