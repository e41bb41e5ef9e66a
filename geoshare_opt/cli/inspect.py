"""``geoshare-opt validate``, ``solvers``, ``convert`` and ``export``: commands around the formats (no torch)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .app import cli, emit, err
from .common import check_writable, emit_rows, format_table, refuse_overwriting_inputs, write_output


# ---------------------------------------------------------------------- validate
@cli.command("validate")
@click.argument("file", type=click.Path())
@click.option("--instance", "instance_path", type=click.Path(), default=None, metavar="INSTANCE",
              help="The instance a result answers (checks hash, feasibility, objective and bound against it).")
def validate_cmd(file, instance_path):
    """Check an instance or a result file and print a JSON summary.

    \b
    An instance is checked by the reference parser that solve uses (every rule of the format, including those
    the JSON Schema in geoshare_opt/schemas cannot state: unique ids, known nodes, no self-loops, finite weights,
    a budget every type fits, the limits of docs/limits.md); the test suite keeps the schema in step with it.
    A result is checked for format and internal consistency (status, objective, bound <= objective, gap);
    with --instance (or the instance_path the result records, when that file still has the recorded hash)
    also against the instance: its hash, a feasible assignment, the recomputed objective.
    Exit 0 valid, 2 invalid (the reason on stderr in one line).
    """
    from ..errors import InputError
    from ..inputs import loads_json
    from ..instance import read_text

    text = read_text(file, "input")
    data = loads_json(text, str(file))
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt == "geoshare-instance":
        if instance_path is not None:
            raise InputError("--instance is only meaningful when FILE is a result")
        summary = validate_instance(data, file)
    elif fmt == "geoshare-result":
        summary = validate_result(data, file, instance_path)
    else:
        raise InputError(f"{file}: unknown format {fmt!r} (expected 'geoshare-instance' or 'geoshare-result')")
    emit(json.dumps(summary, indent=1))
    err(f"{file}: valid {summary['kind']}")


def validate_instance(data: dict, file: str) -> dict:
    from ..errors import InstanceError
    from ..instance import Instance
    try:
        inst = Instance.from_dict(data)
    except InstanceError as exc:
        raise InstanceError(f"{file}: {exc}") from None
    u, v, w, hard = inst.edge_arrays
    return {"kind": "instance", "valid": True, "name": inst.name, "nodes": len(inst.nodes), "edges": len(inst.edges),
            "hard_edges": int(hard.sum()), "cross_type_edges": int((~inst.same_type_edge_mask).sum()),
            "types": {t: int(len(inst.type_members(t))) for t in inst.types},
            "budget": inst.budget.to_dict(), "sha256": inst.sha256}


def validate_result(data: dict, file: str, instance_path: str | None) -> dict:
    from ..checker import check_result, find_instance, instance_answered
    from ..errors import InputError, ResultError
    from ..instance import Instance
    from ..result import Result, compute_gap

    try:
        res = Result.from_dict(data)
    except ResultError as exc:
        raise ResultError(f"{file}: {exc}") from None
    problems = []
    if res.objective is not None and res.bound is not None and res.bound > res.objective + 1e-6 * max(1.0, abs(res.objective)):
        problems.append(f"bound {res.bound} exceeds the objective {res.objective}")
    gap = compute_gap(res.objective, res.bound)
    if (gap is None) != (res.gap is None) or (gap is not None and abs(gap - res.gap) > 1e-6):
        problems.append(f"gap {res.gap} does not match the recomputed {gap}")
    answered = None
    if instance_path is None:
        found = find_instance(res)
        if found is not None:
            answered, instance_path = found
    else:
        given = Instance.load(instance_path)
        answered = instance_answered(given, res) or given     # a mismatch is reported by check_result
    if answered is not None:
        problems += check_result(answered, res)
    if problems:
        raise ResultError(f"{file}: {problems[0]}")
    return {"kind": "result", "valid": True, "checked_against_instance": instance_path,
            "instance_sha256": res.instance_sha256, "solver": res.solver, "termination": res.termination,
            "status": res.status, "objective": res.objective, "bound": res.bound, "gap": res.gap}


# ---------------------------------------------------------------------- solvers
@cli.command("solvers")
def solvers_cmd():
    """List the backends: availability (and why one is missing), version, exact or heuristic, bound, determinism.

    A table on stderr; the rows as JSON on stdout when it is a pipe or a file (not on a terminal)."""
    from ..solvers import available_solvers

    rows = available_solvers()
    shown = [dict(r, kind=("exact" if r["exact"] else "heuristic") if r["exact"] is not None else "-",
                  bound=("yes" if r["gives_bound"] else "no") if r["gives_bound"] is not None else "-",
                  state="available" if r["available"] else f"missing: {r['reason']}") for r in rows]
    err(format_table(shown, ["name", "state", "kind", "bound", "determinism", "version"]))
    emit_rows(json.dumps(rows, indent=1), False, True, "e.g. `geoshare-opt solvers | cat`")


# ---------------------------------------------------------------------- warm-up
@cli.command("warm-up")
def warm_up_cmd():
    """Compile the solvers' numba kernels once (scripts/setup.sh runs this), so that the first time-limited solve
    after installing keeps its limit. Seconds taken on stderr; nothing on stdout."""
    from ..solvers.warmup import compile_kernels

    err(f"numba kernels ready ({compile_kernels():.1f} s)")


# ---------------------------------------------------------------------- convert
@cli.command("convert")
@click.argument("file", type=click.Path())
@click.option("-o", "--output", type=click.Path(allow_dash=True), default=None, metavar="INSTANCE",
              help="Write the instance here (atomically); default: stdout.")
@click.option("--k", "k", type=int, default=None,
              help="max_classes of the budget (default: 2 for Gset; the chromatic number from the file for DIMACS "
                   "when it states one).")
@click.option("--soft/--hard", "soft", default=None,
              help="Edges as weighted soft edges (min k-partition; Gset's default) or hard conflicts (k-colouring; "
                   "DIMACS's default).")
@click.option("--format", "fmt", type=click.Choice(["auto", "dimacs", "gset"]), default="auto", show_default=True)
@click.option("--name", default=None, help="Instance name (default: the file name).")
def convert_cmd(file, output, k, soft, fmt, name):
    """Convert a DIMACS .col colouring graph or a Gset/rudy graph into an instance (JSON)."""
    from .. import convert

    check_writable(output)
    refuse_overwriting_inputs(output, [file])
    kwargs = {}
    if k is not None:
        kwargs["k"] = k
    if name is not None:
        kwargs["name"] = name
    if soft is not None:
        kwargs["hard"] = not soft
    if fmt == "dimacs":
        inst = convert.read_dimacs(file, **kwargs)
    elif fmt == "gset":
        inst = convert.read_gset(file, **kwargs)
    else:
        inst = convert.read_graph(file, **kwargs)
    text = inst.dumps() + "\n"
    if output and output != "-":
        write_output(output, text)
        err(f"{output}: {len(inst.nodes)} nodes, {len(inst.edges)} edges, max_classes={inst.budget.max_classes}")
    else:
        emit(text)


# ---------------------------------------------------------------------- export
@cli.command("export")
@click.argument("instance", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["lp", "mps"]), default=None,
              help="Model file format (default: from the output suffix).")
@click.option("-o", "--output", type=click.Path(), required=True, metavar="FILE", help="Where to write the model.")
def export_cmd(instance, fmt, output):
    """Write the MILP of INSTANCE as an LP or MPS file for any external solver (written atomically)."""
    from ..errors import InputError
    from ..instance import Instance
    from ..solvers import milp

    if fmt is None:
        fmt = Path(output).suffix.lower().lstrip(".")
        if fmt not in ("lp", "mps"):
            raise InputError(f"cannot tell the format from {output!r}: give --format lp or --format mps")
    check_writable(output)
    refuse_overwriting_inputs(output, [instance])
    inst = Instance.load(instance)
    try:
        milp.export(inst, output, fmt)      # written aside, then moved into place
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None
    err(f"{output}: {fmt.upper()} model of {inst.name or instance} ({len(inst.nodes)} nodes, {len(inst.edges)} edges)")
