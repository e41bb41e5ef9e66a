"""One type's whole curve f_t(k), k = n..1, on one engine (as a sweep runs it), each k under its own time limit.

    python benchmarks/solvers/colgen/type_curve.py INSTANCE TYPES [--limit 60] [--from-k K] [--details]
                                                   [--native key=value ...]

TYPES: comma-separated type indices; ``--from-k``: start the descent at K instead of n (a cold pool there). Prints,
per type, the wall time, how many points are proven, the seconds in exact pricing and every k that took more than
3 s; ``--details`` adds one line per such k: gap, root-LP gap, branch-and-price nodes and where the time went (SDP
bound, probing and the contracted problem where they ran). Used to compare pricing variants side by side (the same command
at two commits, or with two ``--native`` settings of ``engine.Settings``).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from geoshare_opt import Instance
from geoshare_opt.solvers.colgen import TypeEngine
from geoshare_opt.solvers.colgen.engine import Settings


def warm_up() -> None:
    """Compile the numba kernels outside the timed runs."""
    engine = TypeEngine(np.array([[0, 1.0, 2], [1, 0, 3], [2, 3, 0]]), np.zeros((3, 3), dtype=bool))
    for k in (3, 2, 1):
        engine.solve(k, time.monotonic() + 30)


def details(k: int, res) -> str:
    """Where one point's time went."""
    s = res.stats
    scale = max(abs(res.value), 1e-12)
    root = s.get("root_bound")
    root_gap = "-" if root is None else f"{(res.value - root) / scale:.2e}"
    line = (f"  k={k} {res.status} {s['wall_s']:.1f}s gap={(res.value - res.bound) / scale:.2e} "
            f"root_gap={root_gap} nodes={s['nodes']} exact_pricing={s['exact_pricings']}/{s['exact_s']:.1f}s "
            f"lp={s['lp_solves']}/{s['lp_s']:.1f}s mip={s['mip_s']:.1f}s pool={s['pool']}")
    if "sdp_s" in s:
        line += f" sdp={s['sdp_s']:.1f}s/{s['sdp_cuts']}cuts"
    if "probes" in s:
        contracted = s.get("contracted")
        line += f" probes={s['probe_fixed']}/{s['probes']} fixed/{s['probe_s']:.1f}s"
        if contracted:
            line += f" contracted={contracted['nodes']}:{contracted['status']}"
    return line


def curve(instance: Instance, index: int, limit: float, settings: Settings, from_k: int | None = None,
          verbose: bool = False) -> str:
    part = instance.part(instance.types[index])
    engine = TypeEngine(part.W, part.hard, settings=settings)
    started, proven, exact_s, slow, hint = time.monotonic(), 0, 0.0, [], None
    ks = range(min(from_k or engine.n, engine.n), 0, -1)
    for k in ks:
        res = engine.solve(k, time.monotonic() + limit, hint)
        hint = res.labels
        proven += res.status == "optimal"
        exact_s += res.stats.get("exact_s", 0.0)
        if res.stats["wall_s"] > 3:
            slow.append(f"k{k}:{res.status[:3]}{res.stats['wall_s']:.0f}s")
            if verbose:
                print(details(k, res), flush=True)
    return (f"type {index}: total {time.monotonic() - started:.1f}s optimal {proven}/{len(ks)} "
            f"exact_s {exact_s:.1f} {' '.join(slow)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("instance")
    parser.add_argument("types")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds per k")
    parser.add_argument("--from-k", type=int, default=None, help="start the descent at this k")
    parser.add_argument("--details", action="store_true", help="one line per point that took more than 3 s")
    parser.add_argument("--native", nargs="*", default=[], help="engine settings, key=value")
    args = parser.parse_args()
    settings = Settings()
    for item in args.native:
        key, value = item.split("=", 1)
        setattr(settings, key, type(getattr(settings, key))(float(value)))
    instance = Instance.load(args.instance)
    warm_up()
    for index in map(int, args.types.split(",")):
        print(curve(instance, index, args.limit, settings, args.from_k, args.details), flush=True)


if __name__ == "__main__":
    main()
