"""The whole trade-off curve of deep models, proven: ``sweep`` with colgen, cpsat and highs side by side.

    python benchmarks/solvers/colgen/run.py                       # all three instances, writes results.json/.md
    python benchmarks/solvers/colgen/run.py --instances 24 --baseline-limit 60

Instances: tiny-gpt (24 layers per type, ``benchmarks/solvers/real/instances/tiny-gpt-tie.json``) and the 48-layer
tiny-gpt with its 32-layer cut (``instances/``, made by ``make_instances.py``). Every run is
``geoshare_opt.sweep(instance, solver, time_limit=T, threads=1)`` in this one process, one after the other, with
``OMP_NUM_THREADS=1``: colgen gets ``--colgen-limit`` seconds (default 600), cpsat and highs ``--baseline-limit``
(default 120). The machine load (1-minute average) is recorded before and after every run.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
INSTANCES = {"24": HERE.parents[0] / "real" / "instances" / "tiny-gpt-tie.json",
             "32": HERE / "instances" / "tiny-gpt-32-tie.json",
             "48": HERE / "instances" / "tiny-gpt-48-tie.json"}


def load() -> float:
    return os.getloadavg()[0]


def summarise(res) -> dict:
    """Proven counts and gaps of one ``SweepResult``."""
    points = [p for t in res.types for p in t["points"]]
    gaps = [r["gap"] for r in res.frontier if r["gap"] is not None]
    return {"points_proven": sum(p["proven"] for p in points), "points": len(points),
            "rows_proven": sum(r["proven"] for r in res.rows), "rows": len(res.rows),
            "frontier_proven": sum(r["proven"] for r in res.frontier), "frontier": len(res.frontier),
            "frontier_median_gap": statistics.median(gaps) if gaps else None,
            "frontier_max_gap": max(gaps) if gaps else None, "complete": res.complete,
            "sweep_wall_s": res.wall_time_s,
            "damage": {r["budget"]["max_classes"]: r["damage"] for r in res.rows},
            "unproven": [{"type": t["type"], "k": p["k"], "objective": p["objective"], "bound": p["bound"],
                          "time_s": p["time_s"]} for t in res.types for p in t["points"] if not p["proven"]]}


def run_one(path: Path, solver: str, limit: float) -> dict:
    from geoshare_opt import Instance, sweep
    inst = Instance.load(path)
    before = load()
    t0 = time.perf_counter()
    res = sweep(inst, solver, time_limit=limit, threads=1)
    wall = time.perf_counter() - t0
    row = {"solver": solver, "time_limit": limit, "wall_s": round(wall, 2), "load_before": before,
           "load_after": load(), **summarise(res)}
    print(f"{path.name} {solver}: {row['points_proven']}/{row['points']} points, rows "
          f"{row['rows_proven']}/{row['rows']}, frontier {row['frontier_proven']}/{row['frontier']}, "
          f"{wall:.1f} s (load {before:.1f} -> {row['load_after']:.1f})", file=sys.stderr, flush=True)
    return row


def agreement(rows: list[dict]) -> str:
    """Where two solvers both prove a row, their damages must agree (an independent check of the proofs)."""
    ref = {r["solver"]: r for r in rows}
    colgen = ref.get("colgen")
    worst = 0.0
    for other in rows:
        if other is colgen or colgen is None:
            continue
        for K, dmg in other["damage"].items():
            mine = colgen["damage"].get(K)
            if mine is not None and dmg is not None:
                worst = max(worst, (mine - dmg) / max(abs(dmg), 1e-300))
    return f"{worst:.2e}"


def open_points(results: dict) -> list[str]:
    """colgen's unproven per-type points by class budget k: how many, and their relative gaps (objective minus
    bound over objective), the worst and the median."""
    lines = ["colgen's unproven per-type points by k: count, median / max relative gap"]
    for layers, rows in results["runs"].items():
        for r in rows:
            if r["solver"] != "colgen" or not r["unproven"]:
                continue
            by_k: dict[int, list[float]] = {}
            for p in r["unproven"]:
                gap = (p["objective"] - p["bound"]) / abs(p["objective"]) if p["bound"] is not None else float("inf")
                by_k.setdefault(p["k"], []).append(gap)
            cells = [f"k={k}: {len(g)}, {100 * statistics.median(g):.2f} / {100 * max(g):.2f} %"
                     for k, g in sorted(by_k.items())]
            lines.append(f"{layers} layers: " + "; ".join(cells))
    return lines if len(lines) > 1 else []


def write_md(results: dict, path: Path) -> None:
    lines = ["| layers per type | points | solver | time limit s | wall s | points proven | class budgets proven | "
             "frontier proven | frontier median gap | frontier max gap | load before → after |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for layers, rows in results["runs"].items():
        for r in rows:
            med = "—" if r["frontier_median_gap"] is None else f"{100 * r['frontier_median_gap']:.2f} %"
            mx = "—" if r["frontier_max_gap"] is None else f"{100 * r['frontier_max_gap']:.2f} %"
            lines.append(f"| {layers} | {r['points']} | {r['solver']} | {r['time_limit']} | {r['wall_s']} | "
                         f"{r['points_proven']}/{r['points']} | {r['rows_proven']}/{r['rows']} | "
                         f"{r['frontier_proven']}/{r['frontier']} | {med} | {mx} | "
                         f"{r['load_before']:.2f} → {r['load_after']:.2f} |")
    lines += ["", *open_points(results), ""]
    lines.append("colgen's damage minus the other solver's, relative, worst over every class budget "
                 "(negative: colgen better): " + ", ".join(f"{k} layers: {v}" for k, v in results["agreement"].items()))
    path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--instances", default="24,32,48")
    ap.add_argument("--solvers", default="colgen,cpsat,highs")
    ap.add_argument("--colgen-limit", type=float, default=600.0)
    ap.add_argument("--baseline-limit", type=float, default=120.0)
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    results = {"command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
               "cpus": os.cpu_count(), "load_start": load(), "runs": {}, "agreement": {}}
    started = time.perf_counter()
    for layers in args.instances.split(","):
        rows = []
        for solver in args.solvers.split(","):
            limit = args.colgen_limit if solver == "colgen" else args.baseline_limit
            rows.append(run_one(INSTANCES[layers], solver, limit))
        results["runs"][layers] = rows
        results["agreement"][layers] = agreement(rows)
    results["load_end"] = load()
    results["total_s"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    write_md(results, args.out / "results.md")
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
