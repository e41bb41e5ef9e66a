"""Side-by-side comparison of ``anneal`` variants (native options) on Gset graphs over several seeds.

    python benchmarks/solvers/gset/variants.py --graphs G64 --seeds 5-12 --time-limit 10 \
        --variant 'before={"population": 1, "hub_temperature": false, "schedule": "geometric"}' \
        --variant 'hubs={"population": 1, "schedule": "geometric"}' --variant 'default={}' --out FILE.md

Every (graph, variant, seed) run is one ``geoshare_opt.solve(..., "anneal", threads=1)`` in its own process, ``--jobs``
at a time (one per core: timed runs need an otherwise idle core each). ``--sweeps N`` instead of a time limit gives
load-independent, reproducible runs. Cut = total weight - objective; the table gives mean, standard deviation, min,
and how many runs fall below 0.995 of the best published cut. The markdown table goes to ``--out`` (and stderr).
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from geoshare_opt.reference import gset, shared_data_dir  # noqa: E402
from geoshare_opt.solvers.warmup import compile_kernels  # noqa: E402


def _one(path: str, seed: int, native: dict, time_limit, total_weight: float) -> float:
    import geoshare_opt
    from geoshare_opt.convert import read_gset
    res = geoshare_opt.solve(read_gset(path), "anneal", seed=seed, threads=1, time_limit=time_limit, native=native)
    return total_weight - res.objective


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graphs", required=True, help="comma-separated Gset names")
    ap.add_argument("--seeds", default="1-4", help="a range 5-12 or a list 1,2,3")
    ap.add_argument("--variant", action="append", required=True, metavar="NAME=JSON",
                    help="native options of one variant, e.g. 'single={\"population\": 1}' (repeatable)")
    ap.add_argument("--time-limit", type=float, default=None)
    ap.add_argument("--sweeps", type=int, default=None, help="fixed sweeps instead of a time limit")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if (args.time_limit is None) == (args.sweeps is None):
        sys.exit("give exactly one of --time-limit and --sweeps")
    variants = []
    for v in args.variant:
        name, _, js = v.partition("=")
        native = json.loads(js)
        if args.sweeps is not None:
            native["sweeps"] = args.sweeps
        variants.append((name, native))
    refs = {r.instance: r for r in gset(shared_data_dir())}
    seeds = _seeds(args.seeds)
    jobs = [(g, name, s) for g in args.graphs.split(",") for name, _ in variants for s in seeds]
    natives = dict(variants)
    # each worker loads the kernels once, outside the timed solves
    with ProcessPoolExecutor(args.jobs, initializer=compile_kernels) as pool:
        futs = {j: pool.submit(_one, str(shared_data_dir() / refs[j[0]].file), j[2], natives[j[1]], args.time_limit,
                               refs[j[0]].total_weight) for j in jobs}
        cuts = {j: f.result() for j, f in futs.items()}
    budget = f"{args.time_limit:g} s each" if args.time_limit else f"{args.sweeps} sweeps each"
    lines = [f"`{' '.join(['python benchmarks/solvers/gset/variants.py'] + (sys.argv[1:] if argv is None else argv))}`",
             "", f"seeds {args.seeds}, {budget}, {args.jobs} runs at a time", "",
             "| graph | need (0.995) | variant | mean cut | std | min | runs below |", "|---|---|---|---|---|---|---|"]
    for g in args.graphs.split(","):
        need = int(np.ceil(0.995 * refs[g].best_cut))
        for name, _ in variants:
            c = np.array([cuts[(g, name, s)] for s in seeds])
            lines.append(f"| {g} | {need} | {name} | {c.mean():.1f} | {c.std():.1f} | {c.min():g} | "
                         f"{int((c < need).sum())} of {len(c)} |")
    text = "\n".join(lines) + "\n"
    print(text, file=sys.stderr)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
