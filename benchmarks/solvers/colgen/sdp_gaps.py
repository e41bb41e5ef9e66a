"""The SDP bound alone, plain and with its cutting planes, at the points a sweep left open: how close it comes,
and what it costs.

    python benchmarks/solvers/colgen/sdp_gaps.py [--results benchmarks/solvers/colgen/results.json] [--layers 48]

For every per-type point that colgen left unproven in ``run.py``'s results (its incumbent and reported bound), the
SDP bound of that type and k is computed afresh without a deadline (``sdp_bound.SdpBound``, one thread), without
and with the triangle and clique cuts, and compared: per k, the median and worst relative gap (incumbent minus
bound, over the incumbent) of the reported bound and of each SDP bound, the mean seconds of each, and the mean
number of cut rounds and of cuts held at the end. Every SDP bound is checked to lie below the incumbent.
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
    from geoshare_opt.solvers.colgen.sdp_bound import MAX_ROUNDS, SdpBound
    from run import INSTANCES

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=HERE / "results.json")
    ap.add_argument("--layers", default="48")
    args = ap.parse_args(argv)
    colgen = next(r for r in json.loads(args.results.read_text())["runs"][args.layers] if r["solver"] == "colgen")
    instance = Instance.load(INSTANCES[args.layers])
    parts = {t: instance.part(t) for t in instance.types}
    by_k: dict[int, list[tuple]] = {}
    for point in colgen["unproven"]:
        part = parts[point["type"]]
        row = [gap(point["objective"], point["bound"])]
        for max_rounds in (0, MAX_ROUNDS):
            started = time.perf_counter()
            ascent = SdpBound(part.W, part.hard, point["k"], max_rounds=max_rounds)
            bound = ascent.improve()
            seconds = time.perf_counter() - started
            if bound > point["objective"] + 1e-12 * abs(point["objective"]):
                raise SystemExit(f"SDP bound {bound} above the incumbent {point['objective']} at {point}")
            row += [gap(point["objective"], bound), seconds]
        row += [ascent.rounds, ascent.cut_count]
        by_k.setdefault(point["k"], []).append(tuple(row))
    print("| k | open points | reported bound: median / max gap | plain SDP: median / max gap | s | "
          "SDP with cuts: median / max gap | s | rounds | cuts |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k, rows in sorted(by_k.items()):
        reported, plain, plain_s, cut, cut_s, rounds, cuts = zip(*rows)
        print(f"| {k} | {len(rows)} | {_gaps(reported)} | {_gaps(plain)} | {statistics.mean(plain_s):.2f} | "
              f"{_gaps(cut)} | {statistics.mean(cut_s):.2f} | {statistics.mean(rounds):.1f} | "
              f"{statistics.mean(cuts):.0f} |")


def _gaps(values) -> str:
    return f"{100 * statistics.median(values):.3f} / {100 * max(values):.3f} %"


if __name__ == "__main__":
    main()
