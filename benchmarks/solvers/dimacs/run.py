"""DIMACS graph colouring at K = chi (hard edges): who finds a proper colouring?

    python benchmarks/solvers/dimacs/run.py                  # all 60 graphs, anneal 10 s each
    python benchmarks/solvers/dimacs/run.py --graphs queen6_6,le450_5a --time-limit 5

K is the chromatic number from shared/data/best_known_values.csv, or the best known upper bound where only bounds
are known (DSJC250.5: 28, ...). Side by side in one run: geoshare-opt ``anneal`` (TabuCol phase, ``time_limit``
seconds), geoshare-opt ``dsatur`` under the budget K, and networkx ``greedy_color(strategy="saturation_largest_first")``
(plain DSatur: number of colours it uses, success when ≤ K). Writes results.csv, results.json and README.md here.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

import geoshare_opt  # noqa: E402
from benchmarks.solvers.outputs import provenance, write_results  # noqa: E402
from geoshare_opt.convert import read_dimacs  # noqa: E402
from geoshare_opt.reference import dimacs, shared_data_dir  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graphs", default="", help="comma-separated names (default: all)")
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args(argv)
    data = shared_data_dir()
    if data is None:
        sys.exit("shared/data not found (expected ../shared/data next to the repository)")
    import networkx as nx
    refs = {r.instance: r for r in dimacs(data)}
    names = [g for g in args.graphs.split(",") if g] or list(refs)
    rows = []
    args.load_start = round(os.getloadavg()[0], 2)
    args.cpus = os.cpu_count()
    for name in names:
        ref = refs[name]
        k = ref.chi_high
        inst = read_dimacs(data / ref.file, k=k, hard=True)
        res = geoshare_opt.solve(inst, "anneal", time_limit=args.time_limit, seed=args.seed)
        ds = geoshare_opt.solve(inst, "dsatur")
        G = nx.Graph()
        G.add_nodes_from(n.id for n in inst.nodes)
        G.add_edges_from((e.u, e.v) for e in inst.edges)
        t0 = time.perf_counter()
        nx_colours = max(nx.greedy_color(G, strategy="saturation_largest_first").values()) + 1
        nx_s = time.perf_counter() - t0
        row = {"graph": name, "n": ref.n, "m": ref.m,
               "chi": f"{ref.chi_low}" if ref.chi_low == ref.chi_high else f"{ref.chi_low}..{ref.chi_high}", "K": k,
               "anneal_proper": res.feasible, "anneal_s": res.wall_time_s,
               "anneal_conflicts_left": res.stats.get("conflicts_left", 0),
               "dsatur_proper": ds.feasible, "dsatur_s": ds.wall_time_s,
               "nx_dsatur_colours": nx_colours, "nx_dsatur_proper": nx_colours <= k, "nx_s": round(nx_s, 3)}
        rows.append(row)
        print(f"{name:>12} K={k:<4} anneal {'ok ' if res.feasible else 'NO '} ({res.wall_time_s:6.2f} s)  "
              f"dsatur {'ok ' if ds.feasible else 'NO '}  networkx {nx_colours} colours", file=sys.stderr)
    args.load_end = round(os.getloadavg()[0], 2)
    write_outputs(Path(args.out), rows, args)


def write_outputs(out: Path, rows, args) -> None:
    summary = {"graphs": len(rows), "time_limit_s": args.time_limit, "seed": args.seed,
               "load_average_start_end": [args.load_start, args.load_end], "cpus": args.cpus,
               "anneal_proper": sum(r["anneal_proper"] for r in rows),
               "dsatur_proper": sum(r["dsatur_proper"] for r in rows),
               "nx_dsatur_proper": sum(r["nx_dsatur_proper"] for r in rows),
               "anneal_failed": [r["graph"] for r in rows if not r["anneal_proper"]]}
    write_results(out, rows, summary)
    lines = ["| graph | n | m | χ | K | anneal | anneal s | our dsatur | networkx DSatur colours |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ann = "proper" if r["anneal_proper"] else f"no ({r['anneal_conflicts_left']} conflicts left)"
        lines.append(f"| {r['graph']} | {r['n']} | {r['m']} | {r['chi']} | {r['K']} | {ann} | "
                     f"{r['anneal_s']:.2f} | {'proper' if r['dsatur_proper'] else 'no'} | "
                     f"{r['nx_dsatur_colours']}{'' if r['nx_dsatur_proper'] else ' (> K)'} |")
    table = "\n".join(lines)
    cmd = "python benchmarks/solvers/dimacs/run.py " + " ".join(sys.argv[1:])
    (out / "README.md").write_text(f"""# DIMACS colouring at K = χ (hard edges)

{provenance(cmd, summary)}
K = the chromatic number, or the best known upper bound where the CSV gives bounds.

**Proper colourings with ≤ K colours**: anneal {summary['anneal_proper']}/{summary['graphs']} (≤ {args.time_limit:g} s each),
our budgeted dsatur {summary['dsatur_proper']}/{summary['graphs']}, networkx DSatur {summary['nx_dsatur_proper']}/{summary['graphs']}.
Not coloured by anneal: {', '.join(summary['anneal_failed']) or 'none'}.

{table}

Full run: `python benchmarks/solvers/dimacs/run.py` (all 60 graphs, 10 s each at most).
""")


if __name__ == "__main__":
    main()
