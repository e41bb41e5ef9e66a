"""Where colgen beats CP-SAT as an exact solver (what ``auto``'s exact stage uses), and where it does not.

    python benchmarks/solvers/colgen/crossover.py            # writes crossover.json / crossover.md here

Every case is one ``geoshare_opt.solve(instance, solver, time_limit=T, threads=1)`` (T = ``--time-limit``, default
20 s) for colgen and cpsat, one after the other in this process:

* real: tiny-gpt (24 layers) cut to 6, 12 and 24 layers and the 48-layer tiny-gpt cut to 32 and 48, at 30 % fewer
  stored parameters (``Instance.with_ratio``), and minilm (6 layers) at 30 %;
* synthetic: one dense type of n nodes with signed N(0, 1) weights (70 % of the pairs), k = n / 4;
* colouring: DIMACS graphs with hard edges (``instances/reference``): a budget below the chromatic number
  (infeasible) and the same graph with unit soft weights.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE))
from make_instances import first_layers  # noqa: E402


def real_cases() -> list[tuple[str, object]]:
    from geoshare_opt import Instance
    real = ROOT / "benchmarks" / "solvers" / "real" / "instances"
    tiny, deep = Instance.load(real / "tiny-gpt-tie.json"), Instance.load(HERE / "instances" / "tiny-gpt-48-tie.json")
    out = [("minilm L=6", Instance.load(real / "minilm-tie.json"))]
    out += [(f"tiny-gpt L={L}", first_layers(tiny, L) if L < 24 else tiny) for L in (6, 12, 24)]
    out += [(f"tiny-gpt-48 L={L}", first_layers(deep, L) if L < 48 else deep) for L in (32, 48)]
    return [(name, inst.with_ratio(0.3)) for name, inst in out]


def synthetic(n: int, seed: int):
    from geoshare_opt import Instance
    rng = np.random.default_rng(seed)
    edges = [(f"v{i}", f"v{j}", float(np.round(rng.normal(), 3))) for i, j in itertools.combinations(range(n), 2)
             if rng.random() < 0.7]
    return Instance.build([{"id": f"v{i}", "type": "t"} for i in range(n)], edges, max(2, n // 4),
                          name=f"signed-{n}-{seed}")


def colouring_cases() -> list[tuple[str, object]]:
    from geoshare_opt.convert import read_dimacs
    from geoshare_opt.reference import references
    data = ROOT / "instances" / "reference"
    refs = references(data)
    out = []
    for name in ("myciel4", "queen5_5", "huck"):
        chi = refs[name].chi
        out.append((f"{name} hard K=chi-1", read_dimacs(data / refs[name].file, k=chi - 1, hard=True)))
        out.append((f"{name} unit K=chi-1", read_dimacs(data / refs[name].file, k=chi - 1, hard=False)))
    return out


def run(cases, time_limit: float) -> list[dict]:
    from geoshare_opt import solve
    rows = []
    for name, inst in cases:
        row = {"case": name, "nodes": len(inst.nodes),
               "largest_type": max(len(inst.type_members(t)) for t in inst.types)}
        for solver in ("colgen", "cpsat"):
            t0 = time.perf_counter()
            res = solve(inst, solver, time_limit=time_limit, threads=1)
            row[solver] = {"termination": res.termination, "objective": res.objective, "bound": res.bound,
                           "gap": res.gap, "wall_s": round(time.perf_counter() - t0, 2)}
        print(f"{name}: " + ", ".join(f"{s} {row[s]['termination']} {row[s]['wall_s']} s gap {row[s]['gap']}"
                                      for s in ("colgen", "cpsat")), file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def cell(r: dict) -> str:
    if r["termination"] in ("optimal", "infeasible"):
        return f"{r['termination']} in {r['wall_s']} s"
    gap = "—" if r["gap"] is None else f"{100 * r['gap']:.2f} %"
    return f"{r['termination']}, gap {gap}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--time-limit", type=float, default=20.0)
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cases = real_cases() + [(f"signed n={n} seed={s}", synthetic(n, s)) for n in (12, 16, 20, 24, 32)
                            for s in (0, 1)] + colouring_cases()
    load_start = os.getloadavg()[0]
    rows = run(cases, args.time_limit)
    lines = [f"time limit {args.time_limit} s per solve; load {load_start:.2f} at the start, "
             f"{os.getloadavg()[0]:.2f} at the end", "",
             "| case | nodes | largest type | colgen | cpsat |", "|---|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['nodes']} | {r['largest_type']} | {cell(r['colgen'])} | {cell(r['cpsat'])} |"
              for r in rows]
    (args.out / "crossover.json").write_text(json.dumps(rows, indent=1) + "\n")
    (args.out / "crossover.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
