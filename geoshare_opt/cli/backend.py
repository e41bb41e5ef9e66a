"""The back-end commands: ``apply``, ``baseline``, ``evaluate``, ``pipeline``. torch is imported inside the
commands (``baseline`` never imports it). stdout carries the JSON payload; tables and progress go to stderr."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import exits
from .app import cli, emit, err
from .common import (check_seed_option, format_table, parse_spec_options, refuse_overwriting_inputs,
                     refuse_replacing_inputs, spec_option, spec_paths, torch_threads, write_output)

KIND_CHOICES = ("all", "sequence", "cycle", "cycle-rev", "adjacent", "sandwich", "random", "none")


def _ratio(ctx, param, value):
    """One line and exit 2 (the group's InputError boundary), like every other bad input."""
    from ..options import check_ratio
    return None if value is None else check_ratio(value, "--ratio")


class PipelineProgress:
    """The pipeline's progress on stderr: a line per stage and per finished step, and between them a ``Ticker``
    with the stage's latest step (``diag 12/128``), so that no stage is silent, not even the first seconds of
    loading a large model."""

    def __init__(self, enabled: bool):
        from .common import Ticker
        self.ticker = Ticker(enabled)
        self.stage = ""

    def __call__(self, info: dict) -> None:
        stage = info.get("stage", self.stage)
        msg = info.get("message")
        if msg is not None:
            self.stage = stage
            self.ticker.say(f"{stage}: {msg}")
            self.ticker.update(f"{stage}: {msg} ...")
            return
        if "step" in info:
            done, total = info.get("done"), info.get("total")
            if total is not None and done == total:
                self.ticker.say(f"{stage}: {info['step']} done ({total} steps)")
            self.ticker.update(f"{stage}: {info['step']} {done}/{total if total is not None else '?'}")

    def close(self) -> None:
        self.ticker.close()


def _instance_for_result(result, result_path, instance_path):
    """The instance a result answers (``checker.instance_answered``: also under the budget ``solve --ratio`` set)
    and its file: ``--instance``, else the path the result records, else ``instance.json`` beside the result (as
    ``pipeline -o`` writes them)."""
    from pathlib import Path

    from ..checker import find_instance, instance_answered
    from ..errors import InputError
    from ..instance import Instance
    if instance_path is not None:
        inst = Instance.load(instance_path)
        answered = instance_answered(inst, result)
        if answered is None:
            raise InputError(f"{result_path} answers instance {result.instance_sha256[:12]}…, not {instance_path} "
                             f"({inst.sha256[:12]}…)")
        return answered, instance_path
    found = find_instance(result, Path(result_path).parent / "instance.json")
    if found is None:
        raise InputError("pass --instance INSTANCE: the result records only the instance hash")
    return found


# ---------------------------------------------------------------------- apply
@cli.command("apply")
@spec_option
@torch_threads
@click.argument("spec")
@click.argument("result", type=click.Path())
@click.option("--instance", "instance_path", type=click.Path(), default=None,
              help="The instance the result answers (its sha256 must match); its curvature sidecar is read.")
@click.option("--mode", type=click.Choice(["tie", "basis"]), default="tie", show_default=True,
              help="tie: one tensor per class (curvature-weighted mean); basis: one shared low-rank basis per class.")
@click.option("--ratio", type=float, default=None, callback=_ratio,
              help="basis mode: fraction of the shareable parameters removed (default: the instance's budget).")
@click.option("--rank", default=None, help="basis mode: a fixed rank per class, or 'full'.")
@click.option("--side", type=click.Choice(["auto", "in", "out"]), default="auto", show_default=True,
              help="basis mode: which factor is shared (auto: the larger dimension).")
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False), default=None,
              help="Directory for model.safetensors + tiemap.json (written atomically).")
@click.option("--force", is_flag=True, help="Replace an existing non-empty output directory.")
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
def apply_cmd(spec, result, instance_path, mode, ratio, rank, side, outdir, force, quiet, spec_options):
    """Materialise RESULT's colouring on SPEC's network; print the parameter report (JSON).

    \b
    SPEC: minilm, digits-mlp, file.py:make, package.module:make or a Hugging Face model directory.
    Exit codes: 0 done; 2 bad input (result for another instance or model, missing curvature for basis mode,
    existing output directory without --force).
    """
    from ..errors import InputError
    from ..result import Result
    from ..materialize import apply, save_compressed
    from ..materialize.save import prepare_outdir

    if mode == "tie" and (ratio is not None or rank is not None):
        raise InputError("--ratio and --rank apply to --mode basis (in tie mode the colouring fixes the storage)")
    res = Result.load(result)
    inst, inst_path = _instance_for_result(res, result, instance_path)
    if outdir:
        refuse_replacing_inputs(outdir, [result, inst_path, *_sidecar_path(inst, inst_path), *spec_paths(spec)])
        prepare_outdir(outdir, force)
    if rank is not None and rank != "full":
        try:
            rank = int(rank)
        except ValueError:
            raise InputError(f"--rank must be a positive integer or 'full', got {rank!r}") from None
    curvature = _curvature_or_none(inst, inst_path, mode)
    from ..pipeline import load_pipeline_spec
    model = load_pipeline_spec(spec, parse_spec_options(spec_options)).model
    compressed, report = apply(model, inst, res, mode, curvature, ratio=ratio, rank=rank, side=side, spec=spec)
    payload = {"spec": spec, "instance_sha256": inst.sha256, **report.to_dict()}
    if outdir:
        payload["outdir"] = str(save_compressed(compressed, outdir, report.tie_map, force=force))
    emit(json.dumps(payload, indent=1, allow_nan=False))
    if not quiet:
        p = report.parameters
        err(f"{mode}: {len(report.classes)} classes; parameters {p['before']['params']} -> {p['after']['params']} "
            f"({100 * p['removed_fraction']:.1f}% removed; shareable layers "
            f"{100 * p.get('shareable_removed_fraction', 0):.1f}%)" + (f"; saved to {outdir}" if outdir else ""))


def _sidecar_path(inst, inst_path) -> list:
    """The curvature sidecar an instance names, as a list (empty when it names none)."""
    from ..errors import InputError
    from ..sidecar_ref import sidecar_for
    if not (inst.meta.get("curvature") if isinstance(inst.meta, dict) else None):
        return []
    try:
        return [sidecar_for(inst, inst_path)]
    except InputError:
        return []


def _curvature_or_none(inst, inst_path, mode):
    """The sidecar's tensors, or None when the instance records no sidecar (tie mode then merges by the plain
    mean; basis mode cannot work without input covariances)."""
    from ..errors import InputError
    from ..materialize.apply import BASIS_NEEDS_COV
    from ..frontend import load_curvature
    if not (inst.meta.get("curvature") if isinstance(inst.meta, dict) else None):
        if mode == "basis":
            raise InputError(BASIS_NEEDS_COV)
        return None
    return load_curvature(inst_path)


# ---------------------------------------------------------------------- baseline
@cli.command("baseline")
@click.argument("instance", type=click.Path())
@click.option("--kind", type=click.Choice(KIND_CHOICES), required=True, help="Heuristic colouring.")
@click.option("--classes", type=int, default=None,
              help="Classes per type (default: the largest uniform number the budget or --ratio allows).")
@click.option("--ratio", type=float, default=None, callback=_ratio,
              help="Fraction of stored parameters removed, to size --classes.")
@click.option("--seed", type=int, default=0, show_default=True, callback=check_seed_option,
              help="Seed of the random kind (0 .. 2**31-1).")
@click.option("-o", "--output", default=None, metavar="RESULT", help="Write the result here instead of stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
def baseline_cmd(instance, kind, classes, ratio, seed, output, quiet):
    """A heuristic colouring of INSTANCE in the result format (solver ``baseline:KIND``).

    \b
    Exit codes: 0 feasible; 3 the colouring breaks the instance's budget or hard edges; 2 bad input.
    """
    from ..baselines import baseline
    from ..instance import Instance

    refuse_overwriting_inputs(output, [instance])
    inst = Instance.load(instance)
    res = baseline(inst, kind, classes=classes, ratio=ratio, seed=seed)
    payload = res.dumps()
    if output and output != "-":
        write_output(output, payload + "\n")
    else:
        emit(payload)
    if not quiet:
        if res.feasible:
            err(f"baseline:{kind}: {res.n_classes} classes, objective {res.objective:.6g}, "
                f"stored params {res.stored_params}")
        else:
            err(f"baseline:{kind}: {res.message}")
    if not res.feasible:
        sys.exit(exits.NO_SOLUTION)


# ---------------------------------------------------------------------- evaluate
@cli.command("evaluate")
@spec_option
@torch_threads
@click.argument("spec")
@click.argument("outdir", required=False, type=click.Path(file_okay=False))
@click.option("-q", "--quiet", is_flag=True, help="No table on stderr.")
def evaluate_cmd(spec, outdir, quiet, spec_options):
    """SPEC's metrics for the original network and, with OUTDIR (from apply -o), the compressed one."""
    from ..materialize import load_compressed, parameter_report
    from ..pipeline import evaluate_model, load_pipeline_spec

    s = load_pipeline_spec(spec, parse_spec_options(spec_options))     # the same held-out data as pipeline
    original = evaluate_model(s, s.model)
    payload = {"spec": spec, "original": original}
    if outdir:
        model = load_compressed(outdir, s.model)
        payload["compressed"] = evaluate_model(s, model)
        payload["outdir"] = outdir
        payload["parameters"] = {"original": parameter_report(s.model)["params"],
                                 "compressed": parameter_report(model)["params"]}
    emit(json.dumps(payload, indent=1, allow_nan=False))
    if not quiet:
        rows = [{"metric": k, "original": v, "compressed": payload.get("compressed", {}).get(k)}
                for k, v in original.items()]
        err(format_table(rows, ["metric", "original", "compressed"]))
        for which in ("original", "compressed"):
            for k, v in payload.get(which, {}).items():
                if v is None:
                    err(f"note: metric {k!r} of the {which} network is not a finite number (null in the JSON)")


# ---------------------------------------------------------------------- pipeline
@cli.command("pipeline")
@spec_option
@torch_threads
@click.argument("spec")
@click.option("--ratio", type=float, default=0.5, show_default=True, callback=_ratio,
              help="Fraction of the shareable layers' stored parameters removed.")
@click.option("--solver", default="auto", show_default=True, help="Backend for the colouring.")
@click.option("--mode", type=click.Choice(["tie", "basis"]), default="tie", show_default=True)
@click.option("--estimator", default="diag", show_default=True, help="Curvature estimator of analyze.")
@click.option("--samples", type=int, default=None, help="Calibration sequences/batches for analyze.")
@click.option("--time-limit", "time_limit", type=float, default=None, metavar="S",
              help="Solver seconds (default none: fixed work budgets, the same colouring on every machine).")
@click.option("--seed", type=int, default=0, show_default=True, callback=check_seed_option)
@click.option("--baselines", default=",".join(("all", "sequence", "cycle", "cycle-rev", "adjacent", "sandwich",
                                                "random")), show_default=True,
              help="Comma-separated heuristic colourings to compare against.")
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False), default=None,
              help="Save the solved compressed network (model.safetensors, tiemap.json, instance, result) here.")
@click.option("--force", is_flag=True, help="Replace an existing non-empty output directory.")
@click.option("--sidecar", type=click.Choice(["full", "diag", "none"]), default="diag", show_default=True,
              help="Curvature sidecar saved with -o: diag (what `apply` needs), full (also a copy of the weights, "
                   "for `solve --true-cost`), none.")
@click.option("--recover", "recover_steps", type=int, default=None, metavar="N",
              help="Recover every colouring (solved and heuristic) with N steps of distillation to the original "
                   "network, and show each before and after (see `geoshare-opt recover`).")
@click.option("--recover-lr", "recover_lr", type=float, default=None, help="Recovery learning rate (default 1e-4).")
@click.option("--recover-method", "recover_method", default=None, help="distill (default) or lora.")
@click.option("--recover-rank", "recover_rank", type=int, default=None, help="lora: rank per member (default 8).")
@click.option("--recover-batch-size", "recover_batch", type=int, default=None,
              help="Cut calibration batches into pieces of this many examples for recovery.")
@click.option("--refine/--no-refine", default=True, show_default=True,
              help="Recommend the measured refinement's colouring (with --recover: the finalist best after "
                   "recovery; docs/measured.md); --no-refine recommends the solved one.")
@click.option("--refine-passes", "refine_passes", type=click.IntRange(min=0), default=None, metavar="N",
              help="Refinement passes after its starts (default: 400-4000 from the network's size; reproducible).")
@click.option("--refine-time-limit", "refine_time_limit", type=click.FloatRange(min=0), default=None, metavar="S",
              help="Wall-clock cap on the refinement in seconds (default none: the pass budget alone, reproducible).")
@click.option("--refine-score", "refine_score", type=click.Choice(["loss", "distill"]), default=None,
              help="Refinement scored by the spec's loss or by distillation (default: spec's refine_score).")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no table on stderr.")
def pipeline_cmd(spec, ratio, solver, mode, estimator, samples, time_limit, seed, baselines, outdir, force, sidecar,
                 recover_steps, recover_lr, recover_method, recover_rank, recover_batch, refine, refine_passes,
                 refine_time_limit, refine_score, quiet, spec_options):
    """analyze -> solve -> apply -> evaluate on SPEC, against every heuristic colouring at the same budget.

    \b
    stdout: one JSON document (rows per colouring, original metrics, time per stage); stderr: progress and a table.
    With -o DIR the run is saved as it goes: instance, sidecar and result once solved, DIR/pipeline.json rewritten
    after each measured row (a killed run keeps them), the compressed network at the end.
    Exit codes: 0 done; 2 bad input; 3 the solver found no feasible colouring; 130 (Ctrl-C) / 143 (SIGTERM)
    stopped before the end: nothing on stdout (with -o, DIR/pipeline.json holds the rows measured so far).
    """
    from ..pipeline import REPORT, pipeline

    refuse_replacing_inputs(outdir, spec_paths(spec))
    kinds = [k.strip() for k in baselines.split(",") if k.strip()]
    recovery = present(lr=recover_lr, method=recover_method, rank=recover_rank, batch_size=recover_batch)
    refinement = present(max_passes=refine_passes, time_limit=refine_time_limit, score=refine_score)
    if outdir is None and not quiet:
        err("pipeline: no -o DIR: the compressed network and the rows are not saved (the report goes to stdout "
            "at the end)")
    progress = PipelineProgress(enabled=not quiet)
    try:
        out = pipeline(spec, ratio, solver=solver, mode=mode, estimator=estimator, time_limit=time_limit, seed=seed,
                       samples=samples, baselines=kinds, outdir=outdir, force=force, recover_steps=recover_steps,
                       recover_options=recovery, spec_options=parse_spec_options(spec_options),
                       refine=refine, refine_options=refinement,
                       sidecar=sidecar, progress=progress)
    except KeyboardInterrupt:
        progress.close()
        if outdir and _partial_report(Path(outdir) / REPORT):
            err(f"pipeline: stopped; the rows measured so far are in {Path(outdir) / REPORT}")
        raise
    finally:
        progress.close()
    emit(json.dumps(out, indent=1, allow_nan=False))
    if not quiet:                               # the recommendation's verdict is the last line
        if outdir:
            err(f"saved to {outdir} (report: {Path(outdir) / REPORT})")
        err(pipeline_table(out))


def present(**options) -> dict | None:
    """The options the user gave (None: not given), or None when none was."""
    given = {k: v for k, v in options.items() if v is not None}
    return given or None


def _partial_report(path: Path) -> bool:
    """Whether ``path`` is a pipeline report of a run that did not finish."""
    try:
        return not json.loads(path.read_text(encoding="utf-8")).get("complete", True)
    except (OSError, ValueError):
        return False


def pipeline_table(out: dict) -> str:
    metric_names = list(out["original"])
    rows = [{"colouring": "original", **out["original"], "stored": None, "removed": 0.0}]
    for r in out["rows"]:
        rows.append({"colouring": r["colouring"], **r.get("metrics", {}), "stored": r.get("stored_params"),
                     "removed": r.get("shareable_removed"), "objective": r.get("objective"),
                     "apply_s": r.get("apply_s"), "eval_s": r.get("eval_s")})
    cols = ["colouring", *metric_names, "objective", "stored", "removed", "apply_s", "eval_s"]
    if out.get("recovery"):
        key = metric_names[0]
        after = f"{key} recovered"
        for row, r in zip(rows[1:], out["rows"]):
            row[after] = ((r.get("recovered") or {}).get("metrics") or {}).get(key)
            row["recover_s"] = r.get("recover_s")
        cols[cols.index(key) + 1:cols.index(key) + 1] = [after]
        cols.append("recover_s")
    if any("predicted_cost" in r for r in out["rows"]):
        for row, r in zip(rows[1:], out["rows"]):
            row["predicted_cost"] = r.get("predicted_cost")
        cols.insert(cols.index("objective") + 1, "predicted_cost")
    t = out["times_s"]
    lines = [format_table(rows, cols),
             "time per stage (s): " + ", ".join(f"{k} {v:.1f}" for k, v in t.items())]
    rec = out.get("recommended") or {}
    for label, b in (("", out.get("best_heuristic")), (" after recovery", out.get("best_heuristic_recovered"))):
        if b and rec.get("colouring") != "solved":      # the recommendation's verdict comes last
            verdict = "at least as good as" if b["solved_at_least_as_good"] else "WORSE than"
            lines.append(f"solved colouring (surrogate only) is {verdict} the best heuristic at this budget{label} "
                         f"({b['colouring']}: {b['metric']} {b['value']:.4g} vs solved {b['solved']:.4g})")
    for label, key in (("", "before"), (" after recovery", "after_recovery")):
        b = rec.get(key)
        if b:
            verdict = ("WORSE than" if not b["at_least_as_good"] else
                       "level with" if b["value"] == b["best_value"] else "ahead of")
            lines.append(f"recommended colouring ({rec['colouring']}) is {verdict} the best heuristic at this budget"
                         f"{label} on held-out data ({b['best_heuristic']}: {b['metric']} {b['best_value']:.4g} vs "
                         f"{rec['colouring']} {b['value']:.4g})")
    return "\n".join(lines)
