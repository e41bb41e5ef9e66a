"""``geoshare-opt solve`` and ``geoshare-opt compare``: the solver commands (never import torch)."""
from __future__ import annotations

import os
import sys

import click

from . import exits, signals
from .app import cli, emit, err
from .common import (JobsProgress, ProgressLine, SLACK_NOTE, check_seed_option, check_writable, cluster_from,
                     cluster_options, emit_rows, format_table, parse_native, refuse_overwriting_inputs, rows_to_csv,
                     rows_to_json, solver_options, summary_line, write_output)


def exit_code(result) -> int:
    """0 with a feasible assignment; otherwise 1 after a backend error, 3 when none exists or none was found (a
    stop by Ctrl-C / SIGTERM with nothing found writes no result: ``signals.exit_stopped``)."""
    if result.feasible:
        return exits.OK
    if result.termination == "error":
        return exits.INTERNAL
    return exits.NO_SOLUTION


@cli.command("solve")
@click.argument("instance", type=click.Path(dir_okay=True, allow_dash=False))
@click.option("--solver", default="auto", show_default=True, help="Backend name (see `geoshare-opt solvers`).")
@solver_options
@click.option("--init", "init", type=click.Path(), default=None, metavar="RESULT",
              help="Warm start from a result file (its assignment, matched by node id).")
@click.option("-o", "--output", type=click.Path(allow_dash=True), default=None, metavar="RESULT",
              help="Write the result JSON here (atomically); stdout then stays empty. '-' means stdout.")
@click.option("--true-cost", "true_cost", is_flag=True,
              help="Add 'true_cost' (total and per type: the true class cost of the colouring, from the instance's "
                   "curvature sidecar) to the result JSON; the objective stays the graph objective.")
@click.option("--ratio", type=float, default=None, metavar="R",
              help="Set the budget here instead of re-running analyze: remove the fraction R (0<R<1) of the stored "
                   "parameters (max_params = floor((1-R) * total params)); other caps kept.")
@click.option("--max-classes", "max_classes", type=int, default=None, metavar="K",
              help="Set the budget's max_classes to K (other caps kept).")
def solve_cmd(instance, solver, time_limit, seed, threads, native, verbose, quiet, init, output, true_cost, ratio,
              max_classes):
    """Colour INSTANCE under its budget and print the result JSON.

    \b
    stdout: the result (geoshare-result v1) unless -o is given; stderr: progress and a one-line summary.
    Exit codes: 0 a feasible assignment is written (optimal or not, also after a time limit, Ctrl-C or SIGTERM:
    its termination says which); 3 no feasible assignment (infeasibility proven or none found); 2 bad input;
    130 (Ctrl-C) / 143 (SIGTERM) stopped with nothing found: no result is written; 1 internal or backend error.
    With --ratio / --max-classes the result answers INSTANCE under that budget; it records the budget
    (stats.budget_override), which apply and validate use to match it to INSTANCE.
    """
    from ..api import solve
    from ..instance import Instance

    check_writable(output)
    refuse_overwriting_inputs(output, [instance, init])
    inst, override = budget_at_solve(Instance.load(instance), ratio, max_classes)
    if inst.budget_is_slack and not quiet:
        err(f"note: {SLACK_NOTE} (solve --ratio R or --max-classes K)")
    native = parse_native(native)
    cc = None
    if true_cost:  # read (and check) the sidecar before the run: a missing one is bad input, found at once
        from ..classcost import load_class_cost
        cc = load_class_cost(inst, instance)
    if solver == "classcost" and "sidecar" not in native:
        from ..classcost import has_sidecar, sidecar_for
        if has_sidecar(inst):  # the true class cost needs the sidecar the instance names, beside the file
            native["sidecar"] = str(sidecar_for(inst, instance))
    progress = ProgressLine(f"{solver}:", enabled=not quiet)
    log = (lambda msg: err(f"[{solver}] {msg}")) if verbose and not quiet else None
    try:
        result = solve(inst, solver, time_limit=time_limit, seed=seed, threads=threads, warm_start=init,
                       verbose=verbose, native=native, log=log, progress=progress)
    finally:
        progress.close()
    if result.termination == "interrupted" and not result.feasible:
        signals.exit_stopped("no assignment was found before the stop; nothing written")
    signals.finishing()      # the answer is in hand: a second Ctrl-C must not cut its output short
    result.instance_path = os.path.abspath(instance)  # lets `validate` find the instance later
    if override:
        result.stats["budget_override"] = override
    if cc is not None:
        from ..classcost import annotate_true_cost
        annotate_true_cost(result, cc)
    payload = result.dumps()
    if output and output != "-":
        write_output(output, payload + "\n")
    else:
        emit(payload)
    if not quiet:
        err(summary_line(result))
        if result.true_cost is not None:
            err(f"true class cost {result.true_cost['total']:.8g}")
    sys.exit(exit_code(result))


def budget_at_solve(inst, ratio: float | None, max_classes: int | None):
    """``inst`` under the budget ``solve --ratio/--max-classes`` sets, and that budget (None when neither)."""
    if ratio is None and max_classes is None:
        return inst, None
    if (inst.meta.get("mode") if isinstance(inst.meta, dict) else None) == "basis" and ratio is not None:
        from ..errors import InputError
        raise InputError("--ratio: this instance was analysed for basis mode, where the ratio sets the shared "
                         "ranks and so the edge weights: re-run analyze with the new --ratio")
    inst = inst.with_ratio(ratio, max_classes) if ratio is not None else inst.with_budget(max_classes,
                                                                                         keep_caps=True)
    return inst, inst.budget.to_dict()


@cli.command("compare")
@click.argument("instances", nargs=-1, required=True, type=click.Path())
@click.option("--solvers", "solvers", required=True, metavar="A,B,C", help="Comma-separated backend names.")
@click.option("--repeats", type=int, default=1, show_default=True, help="Runs per (instance, solver); seed+r.")
@click.option("--time-limit", "time_limit", type=float, default=None, metavar="S", help="Seconds per run.")
@click.option("--seed", type=int, default=0, show_default=True, callback=check_seed_option,
              help="Seed of the first repeat (0 .. 2**31-1).")
@click.option("--threads", type=int, default=1, show_default=True, help="Worker threads per run.")
@click.option("--native", "native", multiple=True, metavar="SOLVER:KEY=VALUE",
              help="A native option for one solver (e.g. cpsat:num_search_workers=1). Repeatable.")
@click.option("--csv", "csv_out", type=click.Path(allow_dash=True), default=None, metavar="FILE",
              help="Write the rows as CSV ('-' = stdout, which then carries the CSV instead of JSON).")
@click.option("--json", "json_out", type=click.Path(allow_dash=True), default=None, metavar="FILE",
              help="Write the rows as JSON to FILE ('-' = stdout, the default; on a terminal only with '-').")
@click.option("-q", "--quiet", is_flag=True, help="No table and no progress on stderr.")
@click.option("--true-cost", "true_cost", is_flag=True,
              help="Add a true_cost column (the true class cost of each colouring, from each instance's sidecar).")
@cluster_options
def compare_cmd(instances, solvers, repeats, time_limit, seed, threads, native, csv_out, json_out, quiet,
                true_cost, workers, scheduler):
    """Run several solvers on several instances and tabulate objective, bound, gap, time and termination.

    \b
    stdout: the rows as JSON (or CSV with --csv -), except on a terminal, where the table is enough (--json -
    prints them there too); stderr: a progress line per run and the table, where '*' marks the best objective on
    each instance. Files are written atomically. Exit 0 when the rows were written
    (whatever each run found; Ctrl-C or SIGTERM ends the comparison after the run it stopped, whose row says
    "interrupted"), 2 on bad input (also an unreachable --scheduler).

    \b
    --workers N / --scheduler ADDRESS run each (instance, solver, repeat) as a Dask task: the rows are those of
    the serial run (seeded single-thread backends), a progress bar counts the runs as they finish, a worker that
    dies costs only its task's rerun, and Ctrl-C / SIGTERM cancels the runs left, closes the local cluster and
    writes the finished rows (the cancelled ones say "interrupted").
    """
    from ..compare import COLUMNS, compare
    from ..errors import InputError

    names = [s.strip() for s in solvers.split(",") if s.strip()]
    if not names:
        raise InputError("--solvers needs at least one solver name")
    per_solver = _native_per_solver(native, names)
    _check_row_outputs(csv_out, json_out, instances)

    costs = _class_costs(instances) if true_cost else {}   # every sidecar checked before anything runs

    bar = JobsProgress("run", enabled=not quiet)
    cluster = cluster_from(workers, scheduler, quiet, bar.start)

    def report(row, res):
        if true_cost:
            row["true_cost"] = costs[row["instance"]](res.assignment) if res.feasible else None
        line = f"{row['instance']}  {row['solver']}  repeat {row['repeat']}: {summary_line(res)}"
        if cluster is not None:
            bar.done(line)
        elif not quiet:
            err(line)

    try:
        rows = compare(list(instances), names, repeats=repeats, time_limit=time_limit, seed=seed, threads=threads,
                       native=per_solver, on_result=report, cluster=cluster)
    finally:
        bar.close()
    signals.finishing()
    stopped = sum(r["termination"] == "interrupted" for r in rows)
    if stopped:
        err(f"{signals.stop_message()}: the comparison stopped ({len(rows) - stopped} run(s) finished, {stopped} "
            "interrupted); writing those rows")
    if not quiet:
        err(_compare_table(rows, true_cost))
    _write_rows(rows, list(COLUMNS) + (["true_cost"] if true_cost else []), csv_out, json_out, quiet)


def _check_row_outputs(csv_out: str | None, json_out: str | None, instances) -> None:
    """Refuse, before any run, outputs that clash or cannot be written."""
    from ..errors import InputError

    if csv_out == "-" and json_out == "-":
        raise InputError("--csv - and --json - both ask for stdout; send one of them to a file")
    refuse_overwriting_inputs(csv_out, instances, "--csv")
    refuse_overwriting_inputs(json_out, instances, "--json")
    refuse_overwriting_inputs(json_out, [csv_out], "--json")
    check_writable(csv_out)
    check_writable(json_out)


def _write_rows(rows: list[dict], columns: list[str], csv_out: str | None, json_out: str | None, quiet: bool) -> None:
    if csv_out and csv_out != "-":
        write_output(csv_out, rows_to_csv(rows, columns))
    if json_out and json_out != "-":
        write_output(json_out, rows_to_json(rows))
    if csv_out == "-":
        emit(rows_to_csv(rows, columns))
    elif json_out in (None, "-"):
        emit_rows(rows_to_json(rows), json_out == "-", not quiet, "or write them with --json FILE")


def _native_per_solver(native, names: list[str]) -> dict[str, dict]:
    """``--native SOLVER:KEY=VALUE`` options grouped by solver (each SOLVER must be among ``names``)."""
    from ..errors import InputError
    per_solver: dict[str, dict] = {}
    for item in native:
        name, sep, pair = item.partition(":")
        if not sep or name not in names:
            raise InputError(f"--native for compare expects SOLVER:KEY=VALUE with SOLVER among --solvers, got {item!r}")
        per_solver.setdefault(name, {}).update(parse_native([pair]))
    return per_solver


def _class_costs(instances) -> dict:
    """The true class cost of every instance, by file name (the rows name instances by it)."""
    from ..classcost import load_class_cost
    from ..errors import InputError
    from ..instance import Instance
    costs = {os.path.basename(path): load_class_cost(Instance.load(path), path) for path in instances}
    if len(costs) < len(set(instances)):
        raise InputError("--true-cost: two instances share a file name; rename one")
    return costs


def _compare_table(rows: list[dict], true_cost: bool) -> str:
    cols = ["instance", "solver", "repeat", "objective", "bound", "gap", "wall_time_s", "termination", "best"]
    heads = ["instance", "solver", "rep", "objective", "bound", "gap", "time_s", "termination", "best"]
    if true_cost:
        cols.append("true_cost")
        heads.append("true cost")
    shown = [dict(r, gap=None if r["gap"] is None else round(r["gap"], 6), wall_time_s=round(r["wall_time_s"], 3))
             for r in rows]
    return format_table(shown, cols, heads)
