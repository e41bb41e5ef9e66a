"""``geoshare-opt sweep``: the optimal damage for every budget, as one table (and a plot) (never imports torch)."""
from __future__ import annotations

import os
import sys

import click

from . import exits
from .app import cli, emit, err
from .common import (ProgressBar, check_seed_option, check_writable, cluster_from, cluster_options, emit_rows,
                     format_table, parse_native, refuse_overwriting_inputs, rows_to_csv, write_output)

CSV_COLUMNS = ["frontier", "max_classes", "max_params", "n_classes", "stored_params", "compression", "damage",
               "bound", "gap", "proven", "infeasible", "time_s", "true_cost", "classes_per_type"]
HEURISTIC_COLUMNS = ["kind", "classes", "seed", "feasible", "n_classes", "stored_params", "compression", "damage",
                     "true_cost"]


@cli.command("sweep")
@click.argument("instance", type=click.Path(dir_okay=False))
@click.option("--solver", default="cpsat", show_default=True,
              help="Backend for the per-type sub-solves: colgen, cpsat, highs or pulp prove each point; any other "
                   "registered backend (anneal, auto, ...) gives unproven points.")
@click.option("--time-limit", "time_limit", type=float, default=None, metavar="S",
              help="Seconds for the whole sweep (default: none); unsolved points keep their best known value.")
@click.option("--time-limit-per-solve", "per_solve", type=float, default=None, metavar="S",
              help="Seconds per sub-solve (one type at one class count).")
@click.option("--seed", type=int, default=0, show_default=True, callback=check_seed_option,
              help="Random seed of the sub-solves (0 .. 2**31-1).")
@click.option("--threads", type=int, default=1, show_default=True, help="Worker threads per sub-solve.")
@click.option("--native", "native", multiple=True, metavar="KEY=VALUE", help="Native option of the solver.")
@click.option("--csv", "csv_out", type=click.Path(allow_dash=True), default=None, metavar="FILE",
              help="Write the rows as CSV ('-' = stdout, which then carries the CSV instead of JSON).")
@click.option("--json", "json_out", type=click.Path(allow_dash=True), default=None, metavar="FILE",
              help="Write the table as JSON to FILE ('-' = stdout, the default; on a terminal only with '-').")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False), default=None, metavar="FILE.png",
              help="Plot damage against stored parameters: the optimal frontier and the heuristics (needs "
                   "matplotlib, the 'plot' extra).")
@click.option("--heuristics", default=None, metavar="A,B,...",
              help="Heuristic colourings to place beside the frontier ('all' kinds of baselines.KINDS, or a list: "
                   "all,sequence,cycle,cycle-rev,adjacent,sandwich,random,none); default: every kind with --plot, "
                   "none otherwise.")
@click.option("--random-seeds", "random_seeds", type=int, default=3, show_default=True,
              help="Seeds of the random heuristic.")
@click.option("--true-cost", "true_cost", is_flag=True,
              help="Add the true class cost of every colouring (needs the instance's curvature sidecar with "
                   "weights).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no table on stderr.")
@cluster_options
def sweep_cmd(instance, solver, time_limit, per_solve, seed, threads, native, csv_out, json_out, plot_out,
              heuristics, random_seeds, true_cost, quiet, workers, scheduler):
    """The optimal predicted damage of INSTANCE for every budget, from one class per type to no sharing.

    \b
    Per type the optimum for every class count (warm-started from the neighbouring count), combined by the exact
    DP over types into two frontiers: best damage per total class count ("rows") and the Pareto front of stored
    parameters against damage ("frontier"). The instance's max_classes / max_params are what is swept (ignored);
    hard edges and per-type caps are honoured (a budget they make infeasible is a row marked infeasible).
    stdout: the table as JSON (geoshare-sweep v1), or CSV with --csv -, except on a terminal, where the table on
    stderr is enough (--json - prints the JSON there too); stderr: a progress bar and the table.
    Exit codes: 0 done (also when stopped by the time limit or Ctrl-C: unproven rows say so), 2 bad input.
    --workers N / --scheduler ADDRESS: every sub-solve a Dask task after its neighbour's (the types side by side,
    the same answers as the serial sweep; see docs/distributed.md).
    """
    from ..errors import InputError
    from ..instance import Instance
    from ..options import MAX_SEED

    _check_outputs(instance, csv_out, json_out, plot_out)
    if not 1 <= random_seeds <= MAX_SEED + 1:
        raise InputError(f"--random-seeds must lie in 1..{MAX_SEED + 1} (seeds 0..2**31-1), got {random_seeds}")
    kinds = _heuristic_kinds(heuristics, plot_out)
    inst = Instance.load(instance)
    cluster = cluster_from(workers, scheduler, quiet)
    cc = None
    if true_cost:
        from ..classcost import load_class_cost
        cc = load_class_cost(inst, instance)

    from ..budget_sweep import heuristic_points, sweep
    bar = ProgressBar(not quiet, "sweep", "point", _show_point)
    try:
        result = sweep(inst, solver, time_limit=time_limit, time_limit_per_solve=per_solve, seed=seed,
                       threads=threads, native=parse_native(native), class_cost=cc, progress=bar, cluster=cluster)
    finally:
        bar.close()
    result.heuristics = heuristic_points(inst, kinds, seeds=range(random_seeds), class_cost=cc)
    payload = result.to_dict()
    if not quiet:
        err(_table(payload, cc is not None))
    _write_outputs(payload, csv_out, json_out, plot_out, quiet)
    sys.exit(exits.OK)


def _check_outputs(instance: str, csv_out, json_out, plot_out) -> None:
    """Every output can be written, none overwrites an input or another output, one at most goes to stdout."""
    from ..errors import InputError
    if csv_out == "-" and json_out == "-":
        raise InputError("--csv - and --json - both ask for stdout; send one of them to a file")
    for flag, path in (("--csv", csv_out), ("--json", json_out)):
        check_writable(path)
        refuse_overwriting_inputs(path, [instance], flag)
    refuse_overwriting_inputs(json_out, [csv_out], "--json")
    refuse_overwriting_inputs(plot_out, [instance, csv_out, json_out], "--plot")
    if plot_out:
        check_writable(plot_out)
        _require_matplotlib()
        if os.path.splitext(plot_out)[1].lower() not in (".png", ".pdf", ".svg"):
            raise InputError(f"--plot {plot_out}: use a .png, .pdf or .svg file name")


def _heuristic_kinds(heuristics: str | None, plot_out) -> list[str]:
    """``--heuristics`` as a list of kinds (default: every kind with --plot, none otherwise)."""
    from ..baselines import KINDS
    from ..errors import InputError
    if heuristics is None:
        return list(KINDS) if plot_out else []
    kinds = [k.strip() for k in heuristics.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InputError(f"--heuristics: unknown kind {unknown[0]!r}; choose among: {', '.join(KINDS)}")
    return kinds


def _write_outputs(payload: dict, csv_out, json_out, plot_out, quiet: bool) -> None:
    """The CSV, the plot and the JSON files; stdout gets the CSV with --csv -, else the JSON."""
    import json
    if csv_out and csv_out != "-":
        write_output(csv_out, rows_to_csv(csv_rows(payload), CSV_COLUMNS))
    if plot_out:
        plot(payload, plot_out)
    text = json.dumps(payload, indent=1, allow_nan=False) + "\n"
    if json_out and json_out != "-":
        write_output(json_out, text)
    if csv_out == "-":
        emit(rows_to_csv(csv_rows(payload), CSV_COLUMNS))
    elif json_out in (None, "-"):
        emit_rows(text, json_out == "-", not quiet, "or write it with --json FILE")


def _require_matplotlib() -> None:
    from ..errors import InputError
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'geoshare-opt[plot]'") from None


def _show_point(bar, info: dict) -> None:
    """Sweep progress: one more per-type sub-solve, and how it ended (the second pass over unproven points, under a
    time limit, only changes the text)."""
    if info.get("event") == "refine":
        bar.set_postfix_str(f"again {info['done']}/{info['total']}: {info['type']} k={info['k']}: {info['status']}")
        return
    bar.set_postfix_str(f"{info['type']} k={info['k']}: {info['status']}", refresh=False)
    bar.update(1)


def csv_rows(payload: dict) -> list[dict]:
    out = []
    for frontier, rows in (("classes", payload["rows"]), ("params", payload["frontier"])):
        for r in rows:
            cpt = r.get("classes_per_type")
            out.append(dict(r, frontier=frontier, max_classes=r["budget"].get("max_classes"),
                            max_params=r["budget"].get("max_params"),
                            classes_per_type=";".join(f"{t}={k}" for t, k in cpt.items()) if cpt else None))
    return out


def _table(payload: dict, with_true: bool) -> str:
    cols = ["budget_k", "n_classes", "stored_params", "compression", "damage", "bound", "proven", "time_s"]
    heads = ["K", "classes", "stored", "compr.", "damage", "bound", "proven", "time_s"]
    if with_true:
        cols.append("true_cost")
        heads.append("true cost")
    rows = [dict(r, budget_k=r["budget"]["max_classes"],
                 compression=None if r["compression"] is None else round(r["compression"], 4),
                 proven="yes" if r["proven"] else ("infeasible" if r["infeasible"] else "no"))
            for r in payload["rows"]]
    n_proven = sum(r["proven"] for r in payload["frontier"])
    tail = (f"\n{len(payload['frontier'])} points on the stored-parameter frontier ({n_proven} proven); "
            f"{'every point proven' if payload['complete'] else 'NOT every point proven'}; "
            f"{payload['wall_time_s']:.1f}s" + (" (interrupted)" if payload["interrupted"] else ""))
    return format_table(rows, cols, heads) + tail


def plot(payload: dict, path: str) -> None:
    """Damage (and, with true costs, the true class cost) against stored parameters: the optimal frontier as a step
    line, every heuristic colouring as a marker. Written atomically."""
    import tempfile

    import matplotlib

    from ..atomic import place, temp_dir_for
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_true = any(r.get("true_cost") is not None for r in payload["frontier"])
    panels = [("damage", "predicted damage (graph objective)")]
    if with_true:
        panels.append(("true_cost", "true class cost"))
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 5), squeeze=False)
    front = [r for r in payload["frontier"] if r["damage"] is not None]
    scale = 1e6 if payload["original_params"] >= 1e6 else 1.0
    unit = "M" if scale > 1 else ""
    markers = dict(zip(["all", "sequence", "cycle", "cycle-rev", "adjacent", "sandwich", "random", "none"],
                       "o^vs<>xD"))
    for ax, (key, label) in zip(axes[0], panels):
        xs = [r["stored_params"] / scale for r in front]
        ys = [r[key] for r in front]
        n_proven = sum(bool(r["proven"]) for r in front)
        if key == "damage":
            ax.step(xs, ys, where="post", color="black", lw=1.5,
                    label="optimal frontier (every point proven)" if n_proven == len(front)
                    else f"best frontier found ({n_proven} of {len(front)} points proven)")
        else:   # the frontier's colourings are optimal for the graph objective, not for this cost
            ax.step(xs, ys, where="post", color="black", lw=1, label="the frontier's colourings")
            ax.plot(xs, ys, ".", color="black", ms=4)
        for kind in dict.fromkeys(h["kind"] for h in payload["heuristics"]):
            pts = [h for h in payload["heuristics"] if h["kind"] == kind and h["feasible"]]
            if pts:
                ax.scatter([h["stored_params"] / scale for h in pts], [h[key] for h in pts], s=28,
                           marker=markers.get(kind, "o"), label=kind, alpha=0.8)
        ax.set_xlabel(f"stored parameters ({unit}params)" if unit else "stored parameters")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{payload['instance_name']}: damage for every budget ({payload['solver']})")
    fig.tight_layout()
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".sweep-plot.", suffix=suffix, dir=temp_dir_for(path))
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120)
        place(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        plt.close(fig)
