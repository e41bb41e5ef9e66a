"""``geoshare-opt analyze``: a trained network -> an instance (+ curvature sidecar). torch is imported inside the
command so that the solver commands start fast."""
from __future__ import annotations

import json
import os

import click

from ..errors import InputError
from .app import cli, emit, err
from .common import SLACK_NOTE, check_seed_option, parse_spec_options, spec_option, spec_paths, torch_threads


class TqdmProgress:
    """The ``progress`` callback of ``analyze``: a tqdm bar on stderr for the step running now, closed when the
    next step starts (bars left open stack up and fill logs with cursor-up escapes). No rate is shown: steps count
    batches, passes or pairs, and a step reported all at once would show an absurd one. Before the first bar, while
    the spec loads (a message event), a ``Ticker`` shows the time going by. Nothing when disabled."""

    BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]"

    def __init__(self, enabled: bool, stream=None):
        from .common import Ticker
        self.enabled = enabled
        self.stream = stream
        self.step: str | None = None
        self.bar = None
        self.ticker = Ticker(enabled, stream=stream)

    def __call__(self, info: dict) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if "message" in info:     # a line from the first second on (bad input found at once stays one line)
            self.ticker.update(f"{info.get('step', 'analyze')}: {info['message']} ...")
            return
        self.ticker.stop()
        step = info.get("step", "")
        if step != self.step:
            self.close()
            self.step = step
            self.bar = tqdm(total=info.get("total"), desc=step, leave=True, dynamic_ncols=True,
                            bar_format=self.BAR_FORMAT, file=self.stream)
        if info.get("total") is not None and self.bar.total != info["total"]:
            self.bar.total = info["total"]
        self.bar.n = info.get("done", self.bar.n)
        self.bar.refresh()

    def close(self) -> None:
        self.ticker.close()
        if self.bar is not None:
            self.bar.close()
        self.bar, self.step = None, None


@cli.command("analyze")
@spec_option
@torch_threads
@click.argument("spec")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), default=None,
              help="Write the instance here and the curvature sidecar beside it (<stem>.curvature.safetensors); "
                   "stdout then gets a JSON summary. Without -o the instance JSON goes to stdout and no sidecar is "
                   "written.")
@click.option("--estimator", type=click.Choice(["diag", "kfac", "lanczos"]), default="diag", show_default=True,
              help="Curvature model: diagonal Gauss-Newton/Fisher, K-FAC factors, or top Hessian eigenpairs.")
@click.option("--mode", type=click.Choice(["tie", "basis"]), default="tie", show_default=True,
              help="Sharing mode the weights predict: tie (one merged tensor) or basis (shared low-rank basis).")
@click.option("--samples", type=int, default=None, metavar="N",
              help="Calibration examples to use (built-in specs build that many; user specs are cut after N).")
@click.option("--seq-len", "seq_len", type=int, default=None, metavar="T", help="Tokens per sequence (minilm).")
@click.option("--ratio", type=float, default=None, metavar="R",
              help="Fraction of the shareable parameters to remove, 0<R<1 (tie: max_params; basis: the rank).")
@click.option("--max-classes", "max_classes", type=int, default=None, metavar="K",
              help="Budget on the number of classes instead of --ratio.")
@click.option("--rank", type=int, default=None, help="Shared basis rank per pair (basis mode; else from --ratio).")
@click.option("--include", multiple=True, metavar="PAT",
              help="Only parameters matching this glob (or re:REGEX) are candidates. Repeatable.")
@click.option("--exclude", multiple=True, metavar="PAT", help="Drop parameters matching this glob / re:REGEX.")
@click.option("--device", default=None, help="cpu or cuda (default: where the model is).")
@click.option("--dtype", default=None, help="float32, float64 or bfloat16 (default: the model's).")
@click.option("--seed", type=int, default=0, show_default=True, callback=check_seed_option,
              help="Seed of the random probe vectors (0 .. 2**31-1).")
@click.option("--lanczos-steps", "lanczos_steps", type=int, default=10, show_default=True, metavar="M",
              help="Lanczos steps (Hessian-vector passes over the data) for --estimator lanczos.")
@click.option("--diag-method", "diag_method", type=click.Choice(["auto", "ggn", "empirical", "hutchinson"]),
              default="auto", show_default=True,
              help="diag/kfac: Monte-Carlo Gauss-Newton (auto when the spec gives outputs), squared gradients, or "
                   "Hutchinson.")
@click.option("--no-first-order", "no_first_order", is_flag=True, help="Drop the gradient term g·δ.")
@click.option("--sidecar", type=click.Choice(["full", "diag"]), default="full", show_default=True,
              help="What the curvature sidecar holds: full (also a float32 copy of every node weight, needed by "
                   "`solve --true-cost`) or diag (only what `apply` needs, about half the size).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars and no summary on stderr.")
def analyze_cmd(spec, output, estimator, mode, samples, seq_len, ratio, max_classes, rank, include, exclude, device,
                dtype, seed, lanczos_steps, diag_method, no_first_order, sidecar, quiet, spec_options):
    """Turn the trained network of SPEC into an instance: SPEC is minilm, digits-mlp, file.py:make,
    package.module:make or a Hugging Face model directory.

    \b
    Started by torchrun (RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set), each process takes its share of the
    calibration batches and the curvature sums are all-reduced (gloo on the CPU, NCCL with --device cuda, one GPU
    per process); rank 0 writes the files and stdout, the others stay silent. See docs/distributed.md."""
    from ..frontend import analyze
    from ..frontend.parallel import launched
    from ..frontend.sidecar import sidecar_path

    if samples is not None and samples < 1:
        raise InputError(f"--samples must be >= 1, got {samples}")
    if output is not None:
        from ..atomic import output_target
        from .common import check_writable, refuse_overwriting_inputs
        target, is_stream = output_target(output)
        if is_stream:
            raise InputError(f"-o {output}: analyze writes a file and its curvature sidecar beside it; give a file "
                             "name (without -o the instance goes to stdout)")
        check_writable(output)
        output = str(target)          # through a link: the sidecar goes beside the file it names
        refuse_overwriting_inputs(output, spec_paths(spec))
        refuse_overwriting_inputs(sidecar_path(output), spec_paths(spec), "-o (its curvature sidecar)")
    distributed = launched()
    if distributed and os.environ.get("RANK") != "0":
        quiet = True
    progress = TqdmProgress(enabled=not quiet)
    try:
        inst = analyze(spec, estimator=estimator, mode=mode, ratio=ratio, max_classes=max_classes, rank=rank,
                       samples=samples, seq_len=seq_len, include=list(include) or None,
                       exclude=list(exclude) or None, device=device, dtype=dtype, seed=seed,
                       lanczos_steps=lanczos_steps, diag_method=diag_method, first_order=not no_first_order,
                       progress=progress, out=output, spec_options=parse_spec_options(spec_options),
                       sidecar=sidecar, distributed=distributed)
    finally:
        progress.close()
    if distributed and os.environ.get("RANK") != "0":
        return                     # rank 0 wrote the instance and the summary
    report(inst, output, quiet)


def report(inst, output: str | None, quiet: bool) -> None:
    """The instance on stdout, or (with ``-o``) a JSON summary on stdout and a line for people on stderr."""
    from ..frontend.sidecar import sidecar_path

    if inst.budget_is_slack and not quiet:
        err(f"note: no --ratio or --max-classes: {SLACK_NOTE} here or at solve time (solve --ratio R / "
            "--max-classes K), or see every budget at once with `geoshare-opt sweep`")
    if output is None:
        emit(inst.dumps())
        return
    meta = inst.meta
    summary = {"instance": output, "curvature": str(sidecar_path(output)), "nodes": len(inst.nodes),
               "edges": len(inst.edges), "types": list(inst.types), "budget": inst.budget.to_dict(),
               "estimator": meta["estimator"], "mode": meta["mode"], "samples": meta["samples"],
               "spread": meta["spread"], "time_s": round(meta["time_s"], 3),
               **({"distributed": meta["distributed"]} if "distributed" in meta else {})}
    emit(json.dumps(summary))
    if not quiet:
        ranks = meta.get("distributed")
        err(f"analyze: {len(inst.nodes)} tensors in {len(inst.types)} types, {len(inst.edges)} pairs, "
            f"{meta['samples']} samples" + (f" on {ranks['world_size']} {ranks['backend']} processes" if ranks else "")
            + f", {meta['time_s']:.1f} s -> {output}")
