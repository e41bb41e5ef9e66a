"""Every backend on instances from real networks: objective, bound, gap, time, proven or not; which backend proves
optimality at which size; how far the heuristics are from the proven optimum.

    python benchmarks/solvers/real/run.py                  # the README table (default settings, <= 20 min)
    python benchmarks/solvers/real/run.py --regenerate     # re-run the curvature front end first (needs torch)
    python benchmarks/solvers/real/run.py --time-limit 5 --ratios 0.3 --sizes 6   # a quick look

Instances (kept in ``instances/`` here, so the table is reproducible without torch; ``--regenerate`` rebuilds them
with the CLI, ``geoshare-opt analyze SPEC --estimator diag --mode tie --ratio 0.3 --samples N -o FILE``):
  * ``minilm``: the real pretrained all-MiniLM-L6-v2 (6 layers, 6 tensor types → 36 nodes);
  * ``tiny-gpt``: the package's deep 24-block GPT (``--deep synthetic`` or a missing tiny-gpt spec falls back to a
    seeded synthetic 24-layer instance, flagged as such in the table).
The deep instance is also cut to its first L layers (``--sizes``) to show how proving scales with the nodes per type.
Budgets: for each ratio R, ``max_params = ⌊(1 − R) · Σ params⌋`` (R of the stored parameters removed, exactly
how ``analyze --ratio`` sets it) and no limit on the number of classes, via ``Instance.with_budget``.

Every backend runs through ``geoshare_opt.solve`` with the same ``--time-limit``, ``seed=0``, ``threads=1``; the
heuristic sharing patterns of the literature (``geoshare_opt.baselines``: sequence, cycle, cycle-rev, adjacent,
sandwich, random) are placed at the largest uniform number of classes per type that fits the same budget.
"Proven" = termination ``optimal``; the optimum of a budget is the objective the exact backends proved (they
must agree; a disagreement is flagged). Distance of a heuristic = (objective − optimum) / |optimum| in %.
Writes results.csv, results.json, README.md (tables) and real.png here.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

import geoshare_opt  # noqa: E402
from geoshare_opt import Instance  # noqa: E402
from geoshare_opt.baselines import baseline  # noqa: E402

SOLVERS = ["cpsat", "highs", "pulp", "dsatur", "anneal", "auto"]
EXACT = ("cpsat", "highs", "pulp")
PATTERNS = ["sequence", "cycle", "cycle-rev", "adjacent", "sandwich"]
RANDOM_SEEDS = 5
INSTANCES = HERE / "instances"


# ---------------------------------------------------------------------- instances
def analyze(spec: str, path: Path, samples: int) -> bool:
    """Run the curvature front end through the CLI; False (with the reason on stderr) when it fails."""
    exe = shutil.which("geoshare-opt") or str(Path(sys.executable).with_name("geoshare-opt"))
    cmd = [exe, "analyze", spec, "--estimator", "diag", "--mode", "tie", "--ratio", "0.3", "--samples",
           str(samples), "-o", str(path), "-q"]
    print("$ " + " ".join(cmd[1:]), file=sys.stderr)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        print(f"  analyze {spec} failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}", file=sys.stderr)
        return False
    print(f"  {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    path.with_suffix(".curvature.safetensors").unlink(missing_ok=True)  # the solvers need only the instance
    return True


def synthetic_deep(n_layers: int = 24, seed: int = 0) -> Instance:
    """A stand-in deep instance with the structure of a curvature graph: 6 tensor types per block, sharing damage
    growing with the layer distance (plus noise, some negative pairs), tensors of two sizes."""
    rng = np.random.default_rng(seed)
    types = {"attn.q": 4096, "attn.k": 4096, "attn.v": 4096, "attn.o": 4096, "mlp.up": 16384, "mlp.down": 16384}
    nodes, edges = [], []
    for t, p in types.items():
        scale = rng.uniform(0.5, 2.0)
        drift = rng.normal(0, 1, size=(n_layers, 8)).cumsum(axis=0) * 0.3  # weights drift slowly with depth
        for i in range(n_layers):
            nodes.append({"id": f"h.{i}.{t}", "type": t, "params": p, "layer": i})
        for i in range(n_layers):
            for j in range(i + 1, n_layers):
                d = float(np.sum((drift[i] - drift[j]) ** 2))
                w = scale * (d + rng.normal(0, 0.3))
                edges.append((f"h.{i}.{t}", f"h.{j}.{t}", round(w, 6)))
    return Instance.build(nodes, edges, len(nodes), name=f"synthetic-deep-{n_layers}",
                          meta={"source": "benchmarks/solvers/real/run.py synthetic_deep", "seed": seed})


def first_layers(inst: Instance, n_layers: int) -> Instance:
    """The induced instance on the nodes of the first ``n_layers`` layers (by each type's layer order)."""
    keep = set()
    for t in inst.types:
        members = sorted(inst.type_members(t), key=lambda i: (inst.nodes[i].layer if inst.nodes[i].layer is not None
                                                              else i, i))
        keep.update(inst.nodes[i].id for i in members[:n_layers])
    nodes = [n for n in inst.nodes if n.id in keep]
    edges = [e for e in inst.edges if e.u in keep and e.v in keep]
    return Instance.build(nodes, edges, len(nodes), name=f"{inst.name}[:{n_layers}]", meta=dict(inst.meta))


def load_instances(args) -> list[tuple[str, Instance, str]]:
    """(label, instance, provenance) of the base instances."""
    INSTANCES.mkdir(exist_ok=True)
    out = []
    mini = INSTANCES / "minilm-tie.json"
    if args.regenerate or not mini.exists():
        analyze("minilm", mini, args.samples)
    if mini.exists():
        out.append(("minilm", Instance.load(mini), "geoshare-opt analyze minilm (diag, tie)"))
    deep = INSTANCES / "tiny-gpt-tie.json"
    if args.deep == "tiny-gpt" and (args.regenerate or not deep.exists()):
        analyze("tiny-gpt", deep, args.samples)
    if args.deep == "tiny-gpt" and deep.exists():
        out.append(("tiny-gpt", Instance.load(deep), "geoshare-opt analyze tiny-gpt (diag, tie)"))
    else:
        out.append(("synthetic-deep", synthetic_deep(), "seeded synthetic 24-layer stand-in (tiny-gpt unavailable)"))
    return out


def with_ratio(inst: Instance, ratio: float) -> Instance:
    return inst.with_budget(len(inst.nodes), max_params=math.floor((1.0 - ratio) * float(inst.params.sum())))


# ---------------------------------------------------------------------- runs
def run_backend(inst: Instance, solver: str, time_limit: float) -> dict:
    t0 = time.perf_counter()
    try:
        res = geoshare_opt.solve(inst, solver, time_limit=time_limit, seed=0, threads=1)
    except geoshare_opt.SolverUnavailableError as e:
        return {"termination": "unavailable", "message": str(e)}
    wall = time.perf_counter() - t0
    return {"termination": res.termination, "status": res.status, "objective": res.objective, "bound": res.bound,
            "gap": res.gap, "time_s": round(wall, 3), "proven": res.termination == "optimal",
            "n_classes": res.n_classes, "stored_params": res.stored_params, "message": res.message}


def run_patterns(inst: Instance) -> dict:
    """Objective of each literature pattern at the budget (None when the pattern breaks it)."""
    out = {}
    for kind in PATTERNS:
        r = baseline(inst, kind)
        out[kind] = r.objective if r.feasible else None
    vals = [baseline(inst, "random", seed=s) for s in range(RANDOM_SEEDS)]
    objs = [r.objective for r in vals if r.feasible]
    out["random (mean of 5)"] = float(np.mean(objs)) if objs else None
    return out


def distance(obj, opt):
    if obj is None or opt is None:
        return None
    if abs(opt) < 1e-12:
        return None if abs(obj) > 1e-12 else 0.0
    return 100.0 * (obj - opt) / abs(opt)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--time-limit", type=float, default=10.0, help="seconds per backend run (the same for all)")
    ap.add_argument("--ratios", default="0.2,0.3,0.4,0.5")
    ap.add_argument("--sizes", default="6,12,24", help="layers of the deep instance to keep (nodes per type)")
    ap.add_argument("--solvers", default=",".join(SOLVERS))
    ap.add_argument("--deep", choices=["tiny-gpt", "synthetic"], default="tiny-gpt")
    ap.add_argument("--regenerate", action="store_true", help="re-run geoshare-opt analyze for the instances")
    ap.add_argument("--samples", type=int, default=64, help="calibration samples for --regenerate")
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--render", action="store_true", help="only rewrite README/plot from --out's results.json")
    args = ap.parse_args(argv)
    if args.render:
        saved = json.loads((Path(args.out) / "results.json").read_text())
        write_outputs(Path(args.out), saved["runs"], saved["budgets"], saved["meta"],
                      list(dict.fromkeys(r["solver"] for r in saved["runs"])))
        return
    command = "python benchmarks/solvers/real/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    ratios = [float(r) for r in args.ratios.split(",") if r]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    solvers = [s for s in args.solvers.split(",") if s]
    load_start = round(os.getloadavg()[0], 2)
    t_start = time.perf_counter()

    cases = []   # (instance label, layers, provenance, instance)
    for label, inst, prov in load_instances(args):
        layers = max(len(inst.type_members(t)) for t in inst.types)
        if label == "minilm":
            cases.append((label, layers, prov, inst))
        else:
            for s in sizes:
                if s < layers:
                    cases.append((label, s, prov, first_layers(inst, s)))
            cases.append((label, layers, prov, inst))

    rows, summary_rows = [], []
    for label, layers, prov, base in cases:
        for ratio in ratios:
            inst = with_ratio(base, ratio)
            case = {"instance": label, "layers": layers, "nodes": len(inst.nodes), "types": len(inst.types),
                    "edges": len(inst.edges), "ratio": ratio, "max_params": inst.budget.max_params}
            runs = {}
            for solver in solvers:
                r = run_backend(inst, solver, args.time_limit)
                runs[solver] = r
                rows.append({**case, "solver": solver, **r})
                print(f"{label:>14} L={layers:<3} R={ratio:.1f} {solver:>7}: {r.get('termination'):>11} "
                      f"obj={r.get('objective')} bound={r.get('bound')} {r.get('time_s')} s", file=sys.stderr)
            proven = {s: r["objective"] for s, r in runs.items() if r.get("proven")}
            opt = min(proven.values()) if proven else None
            disagree = bool(proven) and max(proven.values()) - opt > 1e-6 * max(1.0, abs(opt))
            found = {s: r["objective"] for s, r in runs.items() if r.get("objective") is not None}
            best_found = min(found.values(), default=None)
            bounds = [r["bound"] for r in runs.values() if r.get("bound") is not None]
            # without a proof, distances are measured from the best objective any backend found (marked so)
            ref = opt if opt is not None else best_found
            pats = run_patterns(inst)
            best_pattern = min((v for v in pats.values() if v is not None), default=None)
            srow = {**case, "optimum": opt, "proven_by": [s for s in proven], "exact_disagree": disagree,
                    "best_found": best_found, "best_found_by": [s for s, v in found.items() if v == best_found],
                    "best_bound": max(bounds, default=None),
                    "reference": "optimum" if opt is not None else "best found",
                    "heuristic_pct": {s: distance(runs[s].get("objective"), ref) for s in ("dsatur", "anneal")
                                      if s in runs},
                    "pattern_objective": pats,
                    "pattern_pct": {k: distance(v, ref) for k, v in pats.items()},
                    "best_pattern_pct": distance(best_pattern, ref)}
            summary_rows.append(srow)
    meta = {"command": command.strip(), "time_limit_s": args.time_limit, "seed": 0, "threads": 1,
            "cpus": os.cpu_count(), "load_average_start_end": [load_start, round(os.getloadavg()[0], 2)],
            "total_wall_s": round(time.perf_counter() - t_start, 1), "geoshare_opt": geoshare_opt.__version__,
            "instances": sorted({(c[0], c[2]) for c in cases})}
    write_outputs(Path(args.out), rows, summary_rows, meta, solvers)


# ---------------------------------------------------------------------- outputs
def _fmt(x, nd=4):
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.{nd}g}"
    return str(x)


def _pct(x):
    return "—" if x is None else f"{x:+.2f} %"


def write_outputs(out: Path, rows, summary_rows, meta, solvers) -> None:
    out.mkdir(parents=True, exist_ok=True)
    fields = ["instance", "layers", "nodes", "types", "edges", "ratio", "max_params", "solver", "termination",
              "status", "objective", "bound", "gap", "time_s", "proven", "n_classes", "stored_params", "message"]
    with open(out / "results.csv", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        wr.writeheader()
        wr.writerows(rows)
    (out / "results.json").write_text(json.dumps({"meta": meta, "runs": rows, "budgets": summary_rows},
                                                 indent=1, default=str) + "\n")

    # 1. which backend proves optimality at which size: proven budgets / budgets, median time of the proofs
    exact = [s for s in solvers if s in EXACT or s == "auto"]
    groups = sorted({(r["instance"], r["layers"], r["nodes"]) for r in rows}, key=lambda g: (g[0] != "minilm", g[1]))
    t1 = ["| instance | layers (nodes per type) | nodes | " + " | ".join(exact) + " |",
          "|---|---|---|" + "---|" * len(exact)]
    for g in groups:
        cells = []
        for s in exact:
            rs = [r for r in rows if (r["instance"], r["layers"], r["nodes"]) == g and r["solver"] == s]
            pr = [r for r in rs if r.get("proven")]
            med = f", median {np.median([r['time_s'] for r in pr]):.2g} s" if pr else ""
            cells.append(f"{len(pr)}/{len(rs)}{med}")
        t1.append(f"| {g[0]} | {g[1]} | {g[2]} | " + " | ".join(cells) + " |")

    # 2. how far the heuristics are from the proven optimum
    kinds = list(summary_rows[0]["pattern_pct"]) if summary_rows else []
    t2 = ["| instance | layers | ratio | optimum (or best found / best bound) | dsatur | anneal | best pattern | "
          + " | ".join(kinds) + " |",
          "|---|---|---|---|---|---|---|" + "---|" * len(kinds)]
    for s in summary_rows:
        if s["optimum"] is not None:
            opt = _fmt(s["optimum"], 5)
        else:
            opt = (f"not proven: best found {_fmt(s['best_found'], 5)} ({', '.join(s['best_found_by'])}), "
                   f"bound {_fmt(s['best_bound'], 4)}")
        if s["exact_disagree"]:
            opt += " (exact backends DISAGREE)"
        h = s["heuristic_pct"]
        t2.append(f"| {s['instance']} | {s['layers']} | {s['ratio']:.1f} | {opt} | {_pct(h.get('dsatur'))} | "
                  f"{_pct(h.get('anneal'))} | {_pct(s['best_pattern_pct'])} | "
                  + " | ".join(_pct(s["pattern_pct"][k]) for k in kinds) + " |")

    # 3. every run
    t3 = ["| instance | layers | ratio | solver | termination | objective | bound | gap | time s |",
          "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t3.append(f"| {r['instance']} | {r['layers']} | {r['ratio']:.1f} | {r['solver']} | {r['termination']}"
                  f"{' ✓' if r.get('proven') else ''} | {_fmt(r.get('objective'), 6)} | {_fmt(r.get('bound'), 6)} | "
                  f"{_fmt(r.get('gap'), 3)} | {_fmt(r.get('time_s'), 3)} |")
    srcs = "\n".join(f"- `{lab}`: {prov}" for lab, prov in meta["instances"])
    readme = f"""# Solvers on instances from real networks

Generated by `{meta['command']}` (numbers below are that command's output: results.csv, results.json, real.png).
Machine: {meta['cpus']} CPUs shared with other jobs, 1-minute load average {meta['load_average_start_end'][0]} at the
start and {meta['load_average_start_end'][1]} at the end; total {meta['total_wall_s']} s. Every backend through
`geoshare_opt.solve(instance, solver, time_limit={meta['time_limit_s']:g}, seed=0, threads=1)`.

Instances:
{srcs}

The deep instance is also cut to its first L layers (L nodes per type). Budgets: ratio R of the stored parameters
removed, `max_params = ⌊(1 − R) Σ params⌋`, no cap on the number of classes. Objective = predicted damage (sum of
the pair weights inside classes; lower is better). "Proven" = termination `optimal`.

## Which backend proves optimality at which size

Proven budgets / budgets run (median wall time of the proven runs); `auto` proves through its CP-SAT stage when
every type has at most 40 nodes.

{chr(10).join(t1)}

## How far the heuristics are from the proven optimum

(objective − optimum) / |optimum|; where no backend proved the optimum, from the best objective found instead (the
row says so, with the best proven bound); "—" where a pattern does not fit the budget. The
patterns use the largest uniform number of classes per type that fits `max_params`; the solvers may spend the
budget unevenly across types.

{chr(10).join(t2)}

![real](real.png)

Longer proofs (same tables, about 6x the run time): `python benchmarks/solvers/real/run.py --time-limit 60 --out DIR`.
Instances again from the networks (needs torch and the cached models): add `--regenerate`.

## Every run

{chr(10).join(t3)}
"""
    (out / "README.md").write_text(readme)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
        deep = [r for r in rows if r["instance"] != "minilm"]
        for k, s in enumerate(exact):
            # every run: filled = proven optimal, cross = stopped by the time limit (or error) without a proof
            for proven, marker in ((True, "o"), (False, "x")):
                pts = [(r["layers"] + 0.3 * (k - len(exact) / 2), r["time_s"]) for r in deep
                       if r["solver"] == s and r.get("time_s") is not None and bool(r.get("proven")) == proven]
                if pts:
                    a1.plot(*zip(*pts), marker, color=f"C{k}", label=s if proven else None, alpha=0.8)
        a1.axhline(meta["time_limit_s"], color="k", lw=0.8, ls="--", label="time limit")
        a1.set_xlabel("nodes per type (layers kept)")
        a1.set_ylabel("wall time (s); o proven, x not proven")
        a1.set_yscale("log")
        a1.set_title(f"exact backends on the deep instance ({deep[0]['instance'] if deep else ''})")
        a1.legend(fontsize=8)
        for k, key in enumerate(("dsatur", "anneal")):
            for ref, marker in (("optimum", "o"), ("best found", "^")):
                xs = [i for i, s in enumerate(summary_rows)
                      if s["heuristic_pct"].get(key) is not None and s["reference"] == ref]
                a2.plot(xs, [summary_rows[i]["heuristic_pct"][key] for i in xs], marker, color=f"C{k}",
                        label=key if ref == "optimum" else None)
        for ref, marker in (("optimum", "s"), ("best found", "^")):
            xs = [i for i, s in enumerate(summary_rows) if s["best_pattern_pct"] is not None and s["reference"] == ref]
            a2.plot(xs, [summary_rows[i]["best_pattern_pct"] for i in xs], marker, color="C2",
                    label="best literature pattern" if ref == "optimum" else None)
        a2.set_xticks(range(len(summary_rows)), [f"{s['instance'][:8]} L{s['layers']} R{s['ratio']:.1f}"
                                                 for s in summary_rows], rotation=90, fontsize=6)
        a2.set_ylabel("% above optimum (triangles: best found)")
        a2.set_yscale("symlog", linthresh=1.0)
        a2.set_ylim(bottom=-0.5)
        a2.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "real.png", dpi=120)
    except ImportError:
        pass


if __name__ == "__main__":
    main()
