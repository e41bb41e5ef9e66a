"""One type's whole curve f_t(k), k = n..1, on one engine (as a sweep runs it), each k under its own time limit.

    python benchmarks/solvers/colgen/type_curve.py INSTANCE TYPES [--limit 60] [--native key=value ...]

TYPES: comma-separated type indices. Prints, per type, the wall time, how many points are proven, the seconds in
exact pricing and every k that took more than 3 s. Used to compare pricing variants side by side (the same command
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


def curve(instance: Instance, index: int, limit: float, settings: Settings) -> str:
    part = instance.part(instance.types[index])
    engine = TypeEngine(part.W, part.hard, settings=settings)
    started, proven, exact_s, slow, hint = time.monotonic(), 0, 0.0, [], None
    for k in range(engine.n, 0, -1):
        res = engine.solve(k, time.monotonic() + limit, hint)
        hint = res.labels
        proven += res.status == "optimal"
        exact_s += res.stats.get("exact_s", 0.0)
        if res.stats["wall_s"] > 3:
            slow.append(f"k{k}:{res.status[:3]}{res.stats['wall_s']:.0f}s")
    return (f"type {index}: total {time.monotonic() - started:.1f}s optimal {proven}/{engine.n} "
            f"exact_s {exact_s:.1f} {' '.join(slow)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("instance")
    parser.add_argument("types")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds per k")
    parser.add_argument("--native", nargs="*", default=[], help="engine settings, key=value")
    args = parser.parse_args()
    settings = Settings()
    for item in args.native:
        key, value = item.split("=", 1)
        setattr(settings, key, type(getattr(settings, key))(float(value)))
    instance = Instance.load(args.instance)
    warm_up()
    for index in map(int, args.types.split(",")):
        print(curve(instance, index, args.limit, settings), flush=True)


if __name__ == "__main__":
    main()
