"""The SDP bound alone at the points a sweep left open: how close it comes, and what it costs.

    python benchmarks/solvers/colgen/sdp_gaps.py [--results benchmarks/solvers/colgen/results.json] [--layers 48]

For every per-type point that colgen left unproven in ``run.py``'s results (its incumbent and reported bound), the
SDP bound of that type and k is computed afresh without a deadline (``sdp_bound.sdp_bound``, one thread) and
compared: per k, the median and worst relative gap (incumbent minus bound, over the incumbent) of the reported
bound and of the SDP bound alone, and the mean seconds of one SDP bound. Every SDP bound is checked to lie below
the incumbent.
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
sys.path.insert(0, str(HERE))


def gap(objective: float, bound: float | None) -> float:
    return float("inf") if bound is None else (objective - bound) / abs(objective)


def main(argv=None) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from geoshare_opt import Instance
    from geoshare_opt.solvers.colgen.sdp_bound import sdp_bound
    from run import INSTANCES

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=HERE / "results.json")
    ap.add_argument("--layers", default="48")
    args = ap.parse_args(argv)
    colgen = next(r for r in json.loads(args.results.read_text())["runs"][args.layers] if r["solver"] == "colgen")
    instance = Instance.load(INSTANCES[args.layers])
    parts = {t: instance.part(t) for t in instance.types}
    by_k: dict[int, list[tuple[float, float, float]]] = {}
    for point in colgen["unproven"]:
        part = parts[point["type"]]
        started = time.perf_counter()
        bound = sdp_bound(part.W, part.hard, point["k"])
        seconds = time.perf_counter() - started
        if bound > point["objective"] + 1e-12 * abs(point["objective"]):
            raise SystemExit(f"SDP bound {bound} above the incumbent {point['objective']} at {point}")
        by_k.setdefault(point["k"], []).append((gap(point["objective"], point["bound"]),
                                                gap(point["objective"], bound), seconds))
    print("| k | open points | reported bound: median / max gap | SDP bound alone: median / max gap | s per SDP |")
    print("|---|---|---|---|---|")
    for k, rows in sorted(by_k.items()):
        reported, alone, seconds = zip(*rows)
        print(f"| {k} | {len(rows)} | {100 * statistics.median(reported):.2f} / {100 * max(reported):.2f} % | "
              f"{100 * statistics.median(alone):.2f} / {100 * max(alone):.2f} % | {statistics.mean(seconds):.2f} |")


if __name__ == "__main__":
    main()
