"""``geoshare-opt recover``: a short recovery of a compressed network (from ``apply -o`` / ``pipeline -o``) that keeps
its sharing, saved atomically beside it. torch is imported inside the command."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import InputError
from .app import cli, emit, err
from .common import (ProgressBar, check_seed_option, parse_spec_options, refuse_replacing_inputs, spec_option,
                     spec_paths, torch_threads)

RECOVERED_SUFFIX = "-recovered"


def _positive_int(ctx, param, value):
    if value is not None and value < 1:
        raise InputError(f"--{param.name.replace('_', '-')} must be a positive integer, got {value}")
    return value


def _positive_float(ctx, param, value):
    if value is not None and not value > 0:
        raise InputError(f"--{param.name} must be a positive number, got {value}")
    return value


def _choice(*allowed):
    """A choice checked by us, so a wrong value is one line and exit 2 like every other bad input."""
    def check(ctx, param, value):
        if value not in allowed:
            raise InputError(f"--{param.name} must be {' or '.join(allowed)}, got {value!r}")
        return value
    return check


def _show_step(bar, info: dict) -> None:
    """Recovery progress: the step reached and the current training loss."""
    bar.n = info.get("done", bar.n)
    bar.set_postfix(loss=f"{info.get('loss', float('nan')):.4g}", refresh=False)
    bar.refresh()


def default_output(outdir: str) -> Path:
    """Where a recovered copy goes without ``-o``: a sibling ``OUTDIR-recovered``."""
    src = Path(outdir)
    return src.parent / (src.name + RECOVERED_SUFFIX)


@cli.command("recover")
@spec_option
@torch_threads
@click.argument("spec")
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--steps", type=int, default=200, show_default=True, callback=_positive_int,
              help="Optimiser steps (one calibration batch each).")
@click.option("--lr", type=float, default=1e-4, show_default=True, callback=_positive_float,
              help="Peak learning rate of AdamW (linear warm-up over 10 % of the steps, cosine decay to 0).")
@click.option("--method", default="distill", show_default=True, callback=_choice("distill", "lora"),
              help="distill: train every parameter (ties and shared bases kept); lora: freeze them and train "
                   "per-member low-rank corrections W_m = W_shared + B_m A_m.")
@click.option("--rank", type=int, default=8, show_default=True, callback=_positive_int,
              help="lora: rank of each member's correction.")
@click.option("--objective", default="distill", show_default=True, callback=_choice("distill", "task"),
              help="distill: match the original network's outputs (no labels needed); task: the spec's own loss.")
@click.option("--batch-size", "batch_size", type=int, default=None, callback=_positive_int,
              help="Cut the spec's calibration batches into pieces of this many examples (default: as they are).")
@click.option("--seed", type=int, default=0, show_default=True, callback=check_seed_option,
              help="Seed of the batch order and correction init (0 .. 2**31-1).")
@click.option("-o", "--output", "newdir", type=click.Path(file_okay=False), default=None,
              help="Directory for the recovered network (default: OUTDIR-recovered beside OUTDIR). "
                   "Pass OUTDIR itself with --force to replace it.")
@click.option("--force", is_flag=True, help="Replace an existing non-empty output directory.")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary on stderr.")
def recover_cmd(spec, outdir, steps, lr, method, rank, objective, batch_size, seed, newdir, force, quiet,
                spec_options):
    """Recover OUTDIR (a compressed network of SPEC) by a short training that keeps its sharing; save it to a new
    directory and print a JSON summary (losses before/after on calibration and held-out data, time, parameters).

    \b
    Exit codes: 0 done; 2 bad input (not a compressed directory, a spec that does not match it, steps or lr not
    positive, unknown method, an existing output directory without --force). Nothing is written on error.
    """
    from ..materialize.save import prepare_outdir, read_tie_map, TIEMAP, WEIGHTS

    tie_map = read_tie_map(outdir)                          # not a compressed directory -> exit 2, before any work
    target = Path(newdir) if newdir else default_output(outdir)
    in_place = target.resolve() == Path(outdir).resolve()
    if in_place and not force:
        raise InputError(f"-o {newdir} is the input directory: pass --force to replace it")
    # replacing OUTDIR itself is what --force asks for; replacing a directory that holds it or the spec is not
    refuse_replacing_inputs(target, [*spec_paths(spec), *([] if in_place else [outdir])])
    prepare_outdir(target, force)

    from ..materialize import load_compressed, save_compressed
    from ..materialize.recover import recover, recovered_tie_map
    from ..pipeline import load_pipeline_spec

    s = load_pipeline_spec(spec, parse_spec_options(spec_options))
    model = load_compressed(outdir, s.model)                # fingerprint checked: the spec must be the original
    bar = ProgressBar(not quiet, "recover", "step", _show_step)
    try:
        report = recover(model, s, steps=steps, lr=lr, method=method, rank=rank, seed=seed, batch_size=batch_size,
                         objective=objective, progress=bar)
    finally:
        bar.close()
    new_map = recovered_tie_map(tie_map, model, report)
    for key in ("weights", "nodes", "corrections"):        # rewritten by save_compressed
        new_map.pop(key, None)
    # the instance, result and curvature files beside the weights travel with the recovered copy: regular files
    # only (a symlink could pull in a file from anywhere on the machine as a plain copy)
    copies = {p.name: p for p in Path(outdir).iterdir()
              if not p.is_symlink() and p.is_file() and p.name not in (TIEMAP, WEIGHTS)}
    saved = save_compressed(model, target, new_map, force=force, copy_files=copies)
    payload = {"spec": spec, "input": str(outdir), "output": str(saved), **report.to_dict()}
    emit(json.dumps(payload, indent=1, allow_nan=False))
    if not quiet:
        held = (f"; held-out {report.heldout_before:.4g} -> {report.heldout_after:.4g}"
                if report.heldout_before is not None else "")
        err(f"recover ({method}, {steps} steps, {report.train_s:.1f}s): calibration loss {report.loss_before:.4g} -> "
            f"{report.loss_after:.4g}{held}; parameters {report.parameters['before']} -> "
            f"{report.parameters['after']}; saved to {saved}")
