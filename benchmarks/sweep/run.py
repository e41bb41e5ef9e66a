"""The whole compression-vs-damage curve of a real network, and how far graph-optimal colourings are from the ones
that minimise the TRUE class cost.

    python benchmarks/sweep/run.py                                   # minilm: analyze (if needed), sweep, ratios
    python benchmarks/sweep/run.py --spec tiny-gpt --time-limit-per-solve 20 --time-limit 900
    python benchmarks/sweep/run.py --measure                         # also apply + evaluate each colouring (torch)

Steps (public API and CLI only):
1. the instance: ``--instance I.json`` or ``generated/<spec>.json``, written if missing by
   ``geoshare-opt analyze <spec> --samples N -o generated/<spec>.json`` (tie mode, diag curvature; the sidecar with
   weights lies beside it; ``generated/`` is git-ignored);
2. ``geoshare-opt sweep I.json --true-cost --plot OUT/sweep.png --csv OUT/sweep.csv`` (JSON kept as OUT/sweep.json);
3. at every ``--ratios`` R (stored parameters of the shareable tensors removed, the compression benchmark's ratios):
   the graph-best colouring (``solve --solver cpsat``; the sweep's colouring at that budget instead when better, as
   happens when the solve is cut by its time limit), the ``classcost`` local search started from it, the best
   heuristic at the same classes per type, and - when every type has at most ``--enum-max`` nodes - the exact
   true-cost optimum by enumerating every partition of every type (Bell(6) = 203 for MiniLM) and a DP over types;
   all scored by the graph objective and by the true class cost; with ``--measure`` also the spec's metrics after
   tying (materialize.apply + the spec's metrics);
4. OUT/ratios.csv, OUT/results.json, OUT/results.md (the README tables) and OUT/truecost.png (true cost along the
   whole frontier: the sweep's graph-optimal colourings vs the true-cost optimum).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
KINDS = ["sequence", "cycle", "cycle-rev", "adjacent", "sandwich", "random"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- exact true-cost optimum (small types)
def partitions(n: int):
    """Every partition of 0..n-1 as a restricted growth string."""
    def rec(prefix, top):
        if len(prefix) == n:
            yield tuple(prefix)
            return
        for c in range(top + 2):
            yield from rec(prefix + [c], max(top, c))
    yield from rec([0], 0) if n else iter([()])


def true_curves(inst, cc) -> list[dict]:
    """Per type: the exact true-cost optimum with k classes, k = 1..n_t, and its partition (global labels)."""
    out = []
    for t in inst.types:
        members = [int(i) for i in inst.type_members(t)]
        memo: dict[int, float] = {}
        best: dict[int, tuple[float, tuple]] = {}
        for rgs in partitions(len(members)):
            k = max(rgs) + 1
            cost = 0.0
            for c in range(k):
                mask = sum(1 << j for j, x in enumerate(rgs) if x == c)
                if mask not in memo:
                    memo[mask] = cc.class_cost([members[j] for j, x in enumerate(rgs) if x == c])
                cost += memo[mask]
            if k not in best or cost < best[k][0]:
                best[k] = (cost, rgs)
        for k in range(2, len(members) + 1):        # at most k classes: never worse than fewer
            if best[k - 1][0] < best[k][0]:
                best[k] = best[k - 1]
        out.append({"type": t, "members": members, "params": int(inst.params[members].max()), "best": best})
    return out


def true_optimum(curves: list[dict], max_params: int, n_nodes: int):
    """min Σ_t f_t(k_t) subject to Σ_t k_t p_t <= max_params (uniform parameters per type); labels or None."""
    states = {0: (0.0, ())}                         # params -> (cost, choice)
    for cv in curves:
        nxt: dict[int, tuple] = {}
        for par, (cost, ch) in states.items():
            for k, (c, _) in cv["best"].items():
                p = par + k * cv["params"]
                if p <= max_params and (p not in nxt or cost + c < nxt[p][0]):
                    nxt[p] = (cost + c, ch + (k,))
        states = nxt
    if not states:
        return None, None
    cost, choice = min(states.values())
    labels = np.zeros(n_nodes, dtype=np.int64)
    offset = 0
    for cv, k in zip(curves, choice):
        rgs = cv["best"][k][1]
        labels[cv["members"]] = np.asarray(rgs) + offset
        offset += max(rgs) + 1
    return cost, labels


# ---------------------------------------------------------------------- the run
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default="minilm")
    ap.add_argument("--samples", type=int, default=64, help="calibration sequences for analyze")
    ap.add_argument("--instance", default=None, help="an analysed tie-mode instance with its sidecar")
    ap.add_argument("--ratios", default="0.2,0.3,0.4,0.5")
    ap.add_argument("--solver", default="cpsat")
    ap.add_argument("--time-limit", type=float, default=None, help="seconds for the whole sweep")
    ap.add_argument("--time-limit-per-solve", type=float, default=60.0, help="seconds per sweep sub-solve")
    ap.add_argument("--solve-time-limit", type=float, default=120.0, help="seconds for each graph-best solve")
    ap.add_argument("--ls-time-limit", type=float, default=120.0, help="seconds for each classcost search")
    ap.add_argument("--enum-max", type=int, default=8, help="largest type enumerated for the exact true optimum")
    ap.add_argument("--measure", action="store_true", help="apply + evaluate every colouring (torch)")
    ap.add_argument("--out", default=None, help="output folder (default benchmarks/sweep/<spec>)")
    args = ap.parse_args(argv)

    from geoshare_opt import Instance, solve
    from geoshare_opt.baselines import baseline
    from geoshare_opt.classcost import load_class_cost, sidecar_for
    from geoshare_opt.budget_sweep import best_at

    out = Path(args.out) if args.out else HERE / args.spec
    out.mkdir(parents=True, exist_ok=True)
    path = Path(args.instance) if args.instance else HERE / "generated" / f"{args.spec}.json"
    cli = [sys.executable, "-m", "geoshare_opt.cli"]
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        cmd = cli + ["analyze", args.spec, "--samples", str(args.samples), "-o", str(path)]
        log("$ " + " ".join(cmd[2:]))
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    inst = Instance.load(path)
    cc = load_class_cost(inst, path)
    side = str(sidecar_for(inst, path))

    # 2. the sweep (CLI)
    cmd = cli + ["sweep", str(path), "--solver", args.solver, "--true-cost", "--plot", str(out / "sweep.png"),
                 "--csv", str(out / "sweep.csv"), "--time-limit-per-solve", str(args.time_limit_per_solve)]
    if args.time_limit is not None:
        cmd += ["--time-limit", str(args.time_limit)]
    log("$ geoshare-opt " + " ".join(cmd[3:]))
    t0 = time.perf_counter()
    with open(out / "sweep.json", "w") as fh:
        subprocess.run(cmd, check=True, stdout=fh)
    sweep_s = time.perf_counter() - t0
    sweep = json.loads((out / "sweep.json").read_text())

    # 3. the ratios
    total = int(inst.params.sum())
    small = all(len(inst.type_members(t)) <= args.enum_max for t in inst.types)
    curves = true_curves(inst, cc) if small else None
    spec = curvature = original = None
    if args.measure:
        from geoshare_opt.frontend import load_curvature
        from geoshare_opt.pipeline import PIPELINE_SPEC_DEFAULTS
        from geoshare_opt.specs import load_spec
        spec = load_spec(args.spec, **PIPELINE_SPEC_DEFAULTS.get(args.spec, {}))
        curvature = load_curvature(path)
        from geoshare_opt.pipeline import evaluate_model
        original = evaluate_model(spec, spec.model)
        log(f"original: {original}")
    rows = []
    for ratio in [float(r) for r in args.ratios.split(",")]:
        budget = math.floor((1 - ratio) * total)
        inst_r = inst.with_budget(len(inst.nodes), max_params=budget)
        graph = solve(inst_r, args.solver, time_limit=args.solve_time_limit)
        source, proven = args.solver, graph.termination == "optimal"
        front = best_at(sweep["frontier"], budget)
        if front is not None and front["damage"] < graph.objective - 1e-12 * max(1.0, abs(graph.objective)):
            # the sweep's colouring at this budget is better (a time-limited solve): use it, as a result
            graph = solve(inst_r, "classcost", warm_start=np.array(front["labels"]),
                          native={"sidecar": side, "max_rounds": 0})
            source, proven = "sweep", bool(front["proven"])
        ls = solve(inst_r, "classcost", warm_start=graph, native={"sidecar": side}, time_limit=args.ls_time_limit)
        ls_auto = solve(inst_r, "classcost", native={"sidecar": side}, time_limit=args.ls_time_limit)
        heur = []
        for kind in KINDS:
            b = baseline(inst_r, kind, classes=dict(graph.classes_per_type))
            if b.feasible:
                heur.append((cc(b.assignment), kind, b))
        h_cost, h_kind, h_res = min(heur, key=lambda x: x[0])
        row = {"ratio": ratio, "max_params": budget, "graph_source": source, "graph_proven": proven,
               "graph_objective": graph.objective,
               "graph_true_cost": cc(graph.assignment), "graph_classes": graph.classes_per_type,
               "ls_true_cost": cc(ls.assignment), "ls_objective": ls.objective, "ls_termination": ls.termination,
               "ls_moves": ls.stats.get("moves"), "ls_swaps": ls.stats.get("swaps"), "ls_s": ls.wall_time_s,
               "ls_classes": ls.classes_per_type,
               "ls_auto_true_cost": cc(ls_auto.assignment), "ls_auto_objective": ls_auto.objective,
               "best_heuristic": h_kind, "heuristic_true_cost": h_cost, "heuristic_objective": h_res.objective,
               "true_optimum": None}
        if curves is not None:
            opt, opt_labels = true_optimum(curves, budget, len(inst.nodes))
            row["true_optimum"] = opt
            row["true_optimum_objective"] = float(solve_eval(inst_r, opt_labels))
        if args.measure:
            row["metrics"] = {}
            colourings = {"graph-best": graph, "classcost": ls}
            if curves is not None:   # the enumerated optimum as a result (classcost with no search rounds)
                colourings["true-optimal"] = solve(inst_r, "classcost", warm_start=opt_labels,
                                                   native={"sidecar": side, "max_rounds": 0})
            for kind in KINDS:       # every heuristic at the graph-best colouring's classes per type
                for s in (range(3) if kind == "random" else [0]):
                    b = baseline(inst_r, kind, classes=dict(graph.classes_per_type), seed=s)
                    if b.feasible:
                        colourings[f"{kind}-{s}" if kind == "random" else kind] = b
            for name, res in colourings.items():
                row["metrics"][name] = measure(spec, inst_r, res, curvature)
                log(f"  {name}: {row['metrics'][name]}")
        rows.append(row)
        log(f"ratio {ratio}: graph-best ({source}) true cost {row['graph_true_cost']:.6g} (objective "
            f"{row['graph_objective']:.6g}), classcost {row['ls_true_cost']:.6g}, true optimum "
            f"{row['true_optimum'] if row['true_optimum'] is None else round(row['true_optimum'], 8)}, "
            f"best heuristic {h_kind} {h_cost:.6g}")

    # 4. outputs
    summary = {"spec": args.spec, "instance": str(path), "instance_sha256": inst.sha256, "solver": args.solver,
               "samples": inst.meta.get("samples"), "sweep_s": round(sweep_s, 2), "sweep_complete": sweep["complete"],
               "args": vars(args), "original": original, "rows": rows}
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    cols = ["ratio", "graph_objective", "graph_true_cost", "ls_true_cost", "ls_auto_true_cost", "true_optimum",
            "best_heuristic", "heuristic_true_cost", "ls_moves", "ls_swaps", "ls_s"]
    with open(out / "ratios.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    (out / "results.md").write_text(markdown(summary, sweep))
    truecost_plot(sweep, curves, inst, cc, side, out / "truecost.png", args)
    log((out / "results.md").read_text())
    return 0


def solve_eval(inst, labels) -> float:
    from geoshare_opt import evaluate
    return evaluate(inst, labels).objective


def measure(spec, inst, result, curvature) -> dict:
    from geoshare_opt.materialize import apply
    from geoshare_opt.pipeline import evaluate_model
    model, _ = apply(spec.model, inst, result, "tie", curvature)
    return evaluate_model(spec, model)


def best_heuristic(row: dict, key: str) -> str:
    from geoshare_opt.specs.base import lower_is_better
    sign = -1 if lower_is_better(key) else 1
    heur = {n: m[key] for n, m in row["metrics"].items() if n not in ("graph-best", "classcost", "true-optimal")}
    name = max(heur, key=lambda n: sign * heur[n])
    return f"{heur[name]:.4f} ({name})"


def pct(a, b) -> str:
    return "-" if a is None or b is None or b == 0 else f"{100 * (a - b) / b:+.1f} %"


def markdown(summary: dict, sweep: dict) -> str:
    rows = summary["rows"]
    lines = [f"Instance `{summary['instance_sha256'][:12]}` ({summary['spec']}, {summary['samples']} calibration "
             f"samples); sweep {summary['sweep_s']} s, every point proven: {summary['sweep_complete']}.", "",
             "| stored parameters removed | " + " | ".join(f"{int(round(100 * r['ratio']))} %" for r in rows) + " |",
             "|---|" + "---|" * len(rows)]

    def line(label, key, fmt="{:.4g}"):
        vals = [fmt.format(r[key]) if r.get(key) is not None else "-" for r in rows]
        lines.append(f"| {label} | " + " | ".join(vals) + " |")

    lines.append("| graph-best colouring from (proven optimal?) | " + " | ".join(
        f"{r['graph_source']} ({'yes' if r['graph_proven'] else 'no'})" for r in rows) + " |")
    line("graph objective of the graph-best colouring", "graph_objective")
    line("true class cost of the graph-best colouring", "graph_true_cost")
    line("true class cost after `classcost` from it", "ls_true_cost")
    line("true class cost, `classcost` from `auto`", "ls_auto_true_cost")
    line("exact true-cost optimum (enumeration)", "true_optimum")
    lines.append("| graph-best above the true optimum | " + " | ".join(
        pct(r["graph_true_cost"], r.get("true_optimum")) for r in rows) + " |")
    lines.append("| `classcost` above the true optimum | " + " | ".join(
        pct(r["ls_true_cost"], r.get("true_optimum")) for r in rows) + " |")
    lines.append("| best heuristic (true cost) | " + " | ".join(
        f"{r['heuristic_true_cost']:.4g} ({r['best_heuristic']})" for r in rows) + " |")
    line("graph objective of the `classcost` colouring", "ls_objective")
    if any("metrics" in r for r in rows):
        names = list(rows[0]["metrics"])
        key = next(iter(rows[0]["metrics"][names[0]]))
        orig = summary.get("original") or {}
        lines += ["", f"Measured `{key}` after tying (no fine-tuning; the original network: "
                      f"{orig.get(key, float('nan')):.4f}):", "",
                  "| colouring | " + " | ".join(f"{int(round(100 * r['ratio']))} %" for r in rows) + " |",
                  "|---|" + "---|" * len(rows)]
        for name in dict.fromkeys(n for r in rows for n in r["metrics"]):
            vals = [f"{r['metrics'][name][key]:.4f}" if name in r["metrics"] else "-" for r in rows]
            lines.append(f"| {name} | " + " | ".join(vals) + " |")
        lines.append("| **best heuristic** | " + " | ".join(best_heuristic(r, key) for r in rows) + " |")
    return "\n".join(lines) + "\n"


def truecost_plot(sweep, curves, inst, cc, side, path, args) -> None:
    """True class cost against stored parameters along the whole frontier."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    front = [r for r in sweep["frontier"] if r["damage"] is not None]
    scale = 1e6
    fig, ax = plt.subplots(figsize=(7, 5))
    xs, ys = [r["stored_params"] / scale for r in front], [r["true_cost"] for r in front]
    ax.step(xs, ys, where="post", color="black", label="graph-optimal colourings (sweep frontier)")
    ax.plot(xs, ys, ".", color="black")
    if curves is not None:
        xs, ys = [], []
        for P in sorted({r["stored_params"] for r in front}):
            opt, _ = true_optimum(curves, P, len(inst.nodes))
            xs.append(P / scale)
            ys.append(opt)
        ax.step(xs, ys, where="post", color="tab:green", label="true-cost optimum (enumeration)")
    pts = [h for h in sweep["heuristics"] if h["feasible"]]
    ax.scatter([h["stored_params"] / scale for h in pts], [h["true_cost"] for h in pts], s=12, color="tab:gray",
               alpha=0.6, label="heuristic colourings")
    ax.set_xlabel("stored parameters (Mparams)")
    ax.set_ylabel("true class cost (diagonal model)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{args.spec}: true class cost along the frontier")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
