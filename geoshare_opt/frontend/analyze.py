"""``analyze``: a trained network -> a layer-conflict instance (and its curvature sidecar).

Steps: resolve the spec; discover the shareable tensors; estimate curvature on a working model (the caller's model
itself, or a copy when another device or dtype is asked for) in eval mode; compute pair weights; set the budget; write
the instance with provenance and the sidecar (both or neither). No printing: progress goes to the ``progress``
callback as ``{"step", "done", "total"}`` dicts.
"""
from __future__ import annotations

import inspect
import math
import time
from typing import Any, Callable, Sequence

import torch

from ..errors import InputError
from ..instance import Instance, params_for_ratio
from ..options import check_ratio
from ..provenance import versions
from ..specs.base import ModelSpec, as_spec
from ..specs.load import BUILTIN, load_callable, load_spec
from . import parallel
from .discovery import NodeInfo, discover, group_by_type
from .estimators import diag as diag_est
from .estimators import kfac as kfac_est
from .estimators import lanczos as lanczos_est
from .estimators.common import Curvature, PassContext
from .hooks import LinearCovariances
from .pairs import basis_weights, first_order_layers, tie_weights
from .runtime import Calibration, evaluation, resolve_device, resolve_dtype, translated_errors, working_model
from .sidecar import fingerprint, write_with_sidecar

ESTIMATORS = ("diag", "kfac", "lanczos")
MODES = ("tie", "basis")
# what the curvature sidecar holds: "full" adds a float32 copy of every node weight (the torch-free true class cost,
# ``solve --true-cost``, reads it); "diag" keeps only what ``apply`` needs (about half the size)
SIDECAR_CONTENTS = ("full", "diag")


def resolve_spec(spec_or_model: Any, batches=None, loss=None, *, spec_options: dict | None = None) -> tuple[ModelSpec, str]:
    """A ``ModelSpec`` and the reference recorded in the instance."""
    if isinstance(spec_or_model, str):
        return load_spec(spec_or_model, **(spec_options or {})), spec_or_model
    if isinstance(spec_or_model, torch.nn.Module):
        if batches is None or loss is None:
            raise InputError("analyze(model, batches, loss): a bare model needs batches and loss")
        return as_spec({"model": spec_or_model, "batches": batches, "loss": loss}, "python"), "python"
    if batches is not None or loss is not None:
        raise InputError("analyze: batches and loss go with a bare model, not with a spec")
    spec = as_spec(spec_or_model, "python")
    return spec, spec.name


def _jsonable(options: dict) -> dict:
    """Spec options as provenance: JSON values kept, anything else by its repr."""
    return {k: v if isinstance(v, (str, int, float, bool, type(None), list)) else repr(v) for k, v in options.items()}


def builtin_options(ref: str, samples: int | None, seq_len: int | None) -> dict:
    """Options a built-in spec accepts: ``--samples`` sizes its calibration set, ``--seq-len`` its windows."""
    if ref not in BUILTIN:
        if seq_len is not None:
            raise InputError("--seq-len applies to built-in text specs only (minilm); a user spec sets its own data")
        return {}
    params = inspect.signature(load_callable(BUILTIN[ref])).parameters
    opts = {}
    if samples is not None and "n_calib" in params:
        opts["n_calib"] = samples
    if seq_len is not None:
        if "seq_len" not in params:
            raise InputError(f"--seq-len does not apply to spec {ref!r}")
        opts["seq_len"] = seq_len
    return opts


def _check_options(estimator, mode, ratio, max_classes, rank, samples, lanczos_steps) -> None:
    if estimator not in ESTIMATORS:
        raise InputError(f"estimator {estimator!r}: use one of {', '.join(ESTIMATORS)}")
    if mode not in MODES:
        raise InputError(f"mode {mode!r}: use one of {', '.join(MODES)}")
    if ratio is not None:
        check_ratio(ratio)
    if max_classes is not None and (not isinstance(max_classes, int) or isinstance(max_classes, bool)
                                    or max_classes < 1):
        raise InputError(f"max_classes must be a positive integer, got {max_classes!r}")
    if mode == "tie" and ratio is not None and max_classes is not None:
        raise InputError("give either a ratio or max_classes, not both (in tie mode the ratio sets max_params)")
    if rank is not None and mode != "basis":
        raise InputError("rank applies to mode 'basis' only")
    if rank is not None and (not isinstance(rank, int) or rank < 1):
        raise InputError(f"rank must be a positive integer, got {rank!r}")
    if mode == "basis" and rank is None and ratio is None:
        raise InputError("mode 'basis' needs a rank or a ratio (the shared rank comes from one of them)")
    if samples is not None and (not isinstance(samples, int) or samples < 1):
        raise InputError(f"samples must be a positive integer, got {samples!r}")
    if not isinstance(lanczos_steps, int) or lanczos_steps < 1:
        raise InputError(f"lanczos steps must be a positive integer, got {lanczos_steps!r}")


def budget_for(nodes: Sequence[NodeInfo], mode: str, ratio: float | None, max_classes: int | None) -> dict:
    """``Instance.build`` budget arguments.

    tie + ratio R: ``max_params = ⌊(1 − R) Σ params⌋`` over the nodes, ``max_classes`` = number of nodes.
    basis + ratio: the ratio sets each class's rank, so only ``max_classes`` (default: number of nodes) applies.
    ``max_classes`` K: at least one class per type. Neither: no constraint (``max_classes`` = number of nodes);
    set one later with ``Instance.with_budget``."""
    types = group_by_type(nodes)
    if max_classes is not None and max_classes < len(types):
        raise InputError(f"max_classes {max_classes} is below the number of types ({len(types)}): every type needs "
                         "a class")
    out: dict[str, Any] = {"max_classes": max_classes if max_classes is not None else len(nodes)}
    if mode == "tie" and ratio is not None:
        total = sum(n.params for n in nodes)
        need = sum(max(nodes[i].params for i in idx) for idx in types.values())
        out["max_params"] = params_for_ratio(total, need, ratio)
    return out


def _input_covariances(ctx: PassContext) -> dict[str, torch.Tensor]:
    """A forward-only pass gathering ``E[x xᵀ]`` (for the shared-basis weights when the estimator has none)."""
    with LinearCovariances(ctx.model, ctx.nodes, inputs=True, output_grads=False, why="mode 'basis'") as hooks, \
            torch.no_grad(), translated_errors("input covariances", ctx.device):
        from .runtime import call_user
        for i, batch, _ in ctx.calib:
            hooks.new_batch()
            call_user(ctx.spec.loss, ctx.model, batch, what="loss")
            ctx.report("input covariances", i + 1, ctx.calib.n_batches)
        ctx.report("input covariances", ctx.calib.n_batches, ctx.calib.n_batches)
        hooks.sum_over(ctx.shard)
        return hooks.input_covariances()


def estimate_curvature(ctx: PassContext, estimator: str, *, need_in_cov: bool, diag_method: str,
                       lanczos_steps: int, lanczos_graph_budget: int | None = None) -> Curvature:
    if estimator == "kfac":
        return kfac_est.estimate(ctx, diag_method)
    if estimator == "lanczos":
        curv = lanczos_est.estimate(ctx, lanczos_steps, graph_budget=lanczos_graph_budget)
        if need_in_cov:
            curv.in_cov = _input_covariances(ctx)
        return curv
    method = diag_est.resolve_method(diag_method, ctx.spec)
    if need_in_cov:
        with LinearCovariances(ctx.model, ctx.nodes, inputs=True, output_grads=False, why="mode 'basis'") as hooks:
            curv = diag_est.curvature_pass(ctx, method, "diag", hooks=hooks)
            curv.in_cov = hooks.input_covariances()
        return curv
    return diag_est.curvature_pass(ctx, method, "diag")


def analyze(spec_or_model: Any, batches=None, loss=None, *, estimator: str = "diag", mode: str = "tie",
            ratio: float | None = None, max_classes: int | None = None, rank: int | None = None,
            samples: int | None = None, seq_len: int | None = None, include: str | Sequence[str] | None = None,
            exclude: str | Sequence[str] | None = None, device: str | None = None, dtype: str | None = None,
            seed: int = 0, lanczos_steps: int = lanczos_est.DEFAULT_STEPS, diag_method: str = "auto",
            first_order: bool = True, progress: Callable[[dict], None] | None = None, out=None,
            name: str | None = None, lanczos_graph_budget: int | None = None,
            spec_options: dict | None = None, sidecar: str = "full", provenance: dict | None = None,
            distributed: bool = False) -> Instance:
    """Turn a trained network into an instance (see the package docstring for every option).

    ``spec_or_model``: a ``ModelSpec``, a spec dict, a spec reference (``minilm``, ``file.py:make``, ...), or a
    ``torch.nn.Module`` together with ``batches`` and ``loss``. ``out``: write the instance JSON there and the
    curvature sidecar beside it (atomically); without it nothing is written and ``meta.curvature`` is absent.
    ``first_order``: add ``g·δ`` where the estimator measured the gradient. ``meta.first_order`` says whether any
    layer's term was kept, ``meta.first_order_layers`` which (a gradient within noise, or exactly zero, is dropped).
    ``spec_options``: keyword arguments of the spec's ``make()`` when the spec is given by reference.
    ``lanczos_graph_budget``: bytes of per-batch gradient graphs the Lanczos estimator may keep across its steps
    (None: half the memory available; 0: recompute every step); the result does not depend on it, the time does.
    ``sidecar``: ``"full"`` (curvature, covariances and a copy of the weights) or ``"diag"`` (no weight copy: enough
    for ``apply``, not for the true class cost). ``provenance``: for a spec the caller loaded by reference itself,
    ``{"spec": ref, "spec_options": {...}}`` recorded in ``meta.model`` so that later commands can load it again.
    ``distributed``: this process is one rank of a torch.distributed job (``torchrun``; the caller's process group
    when one is initialised, else one joined from the launcher's environment): it takes its share of the calibration
    batches, the curvature sums are all-reduced, and only rank 0 writes ``out`` (every rank returns the instance).
    ``meta.distributed`` records the world size and the backend (see ``frontend.parallel``, docs/distributed.md).
    """
    started = time.perf_counter()
    _check_options(estimator, mode, ratio, max_classes, rank, samples, lanczos_steps)
    _check_outputs(sidecar, lanczos_graph_budget)
    spec, ref, spec_options = _load_spec(spec_or_model, batches, loss, samples, seq_len, spec_options, provenance,
                                           progress)
    model = spec.model
    dev = resolve_device(device, model)
    dt = resolve_dtype(dtype, model)
    nodes = discover(model, include, exclude)
    shard = parallel.joined(parallel.rank_device(dev)) if distributed else parallel.SERIAL
    dev = parallel.rank_device(dev) if shard.parallel else dev
    work = working_model(model, dev, dt)
    wparams = dict(work.named_parameters())
    ctx = PassContext(model=work, spec=spec, calib=Calibration(spec, dev, dt, samples, shard=shard), nodes=nodes,
                      params=[wparams[n.name] for n in nodes], device=dev, dtype=dt, seed=seed, progress=progress)
    t0 = time.perf_counter()
    with evaluation(work):
        curv = estimate_curvature(ctx, estimator, need_in_cov=mode == "basis", diag_method=diag_method,
                                  lanczos_steps=lanczos_steps, lanczos_graph_budget=lanczos_graph_budget)
    t1 = time.perf_counter()
    weights = {n.name: wparams[n.name].detach() for n in nodes}
    kept = first_order_layers(nodes, curv, first_order) if mode == "tie" else []
    edges, extra = _pair_weights(nodes, weights, curv, mode, rank, ratio, first_order, dev)
    t2 = time.perf_counter()
    progress and progress({"step": "pair weights", "done": 1, "total": 1})
    budget = budget_for(nodes, mode, ratio, max_classes)

    meta: dict[str, Any] = {
        "model": {"spec": ref, "fingerprint": fingerprint(model, [n.name for n in nodes]),
                  **({"spec_options": _jsonable(spec_options)} if spec_options else {})},
        "estimator": estimator, "method": curv.method, "mode": mode, "samples": curv.samples,
        "batches": curv.batches, "spread": curv.spread, "seed": seed, "device": str(dev),
        "dtype": str(dt).replace("torch.", ""), "first_order": bool(kept), "first_order_layers": kept,
        "budget_from": ({"ratio": ratio} if ratio is not None else {})
        | ({"max_classes": max_classes} if max_classes is not None else {}),
        "timing": {"curvature_s": t1 - t0, "pairs_s": t2 - t1},
        "versions": versions("torch"), **extra,
        **_estimator_meta(curv, estimator, mode, first_order, lanczos_steps),
        **({"distributed": shard.describe()} if shard.parallel else {}),
    }
    node_dicts = [n.to_node_dict() for n in nodes]

    def build(side_file: str | None = None, side_sha: str | None = None) -> Instance:
        m = dict(meta, time_s=time.perf_counter() - started)
        if side_file is not None:
            m["curvature"] = {"file": side_file, "sha256": side_sha}
        return Instance.build(node_dicts, edges, name=name or f"{ref}-{estimator}-{mode}", meta=m, **budget)

    if out is None:
        return build()
    return written_by_rank0(shard, out, lambda: sidecar_tensors(curv, weights, mode, estimator, sidecar), build)


def written_by_rank0(shard: parallel.Shard, out, tensors: Callable[[], dict], build: Callable) -> Instance:
    """Rank 0 writes the instance and its sidecar (``write_with_sidecar``); every rank returns once they are there,
    the same instance, or fails with rank 0's reason (one rank's failure must not leave the others waiting)."""
    if shard.rank != 0:
        outcome = shard.gather(None)[0]
        if outcome[0] == "failed":
            raise InputError(f"rank 0 could not write {out}: {outcome[1]}")
        return build(*outcome[1:])
    try:
        inst = write_with_sidecar(out, tensors(), build)
    except BaseException as exc:
        shard.gather(("failed", str(exc) or type(exc).__name__))
        raise
    shard.gather(("written", inst.meta["curvature"]["file"], inst.meta["curvature"]["sha256"]))
    return inst


def _check_outputs(sidecar: str, lanczos_graph_budget) -> None:
    if sidecar not in SIDECAR_CONTENTS:
        raise InputError(f"sidecar {sidecar!r}: use one of {', '.join(SIDECAR_CONTENTS)}")
    if lanczos_graph_budget is not None and (not isinstance(lanczos_graph_budget, int)
                                             or isinstance(lanczos_graph_budget, bool) or lanczos_graph_budget < 0):
        raise InputError(f"lanczos_graph_budget must be a number of bytes >= 0, got {lanczos_graph_budget!r}")


def _load_spec(spec_or_model, batches, loss, samples, seq_len, spec_options, provenance, progress):
    """(spec, the reference recorded in ``meta.model``, the spec options recorded with it)."""
    opts = builtin_options(spec_or_model, samples, seq_len) if isinstance(spec_or_model, str) else {}
    if not isinstance(spec_or_model, str) and (seq_len is not None or spec_options):
        raise InputError("seq_len and spec_options apply to specs given by reference (a name, file.py:make, ...) only")
    opts.update(spec_options or {})
    if progress is not None and isinstance(spec_or_model, str):    # a large model can take minutes to load
        progress({"step": "load", "message": f"loading {spec_or_model}"})
    spec, ref = resolve_spec(spec_or_model, batches, loss, spec_options=opts)
    if provenance:
        ref, spec_options = str(provenance.get("spec", ref)), provenance.get("spec_options") or spec_options
    return spec, ref, spec_options


def _pair_weights(nodes, weights, curv: Curvature, mode: str, rank, ratio, first_order: bool, dev):
    """The instance's edges (tie: curvature-weighted merge cost; basis: shared-basis error) and what the mode adds
    to ``meta`` (basis: the rank per type); InputError on a weight that is not finite."""
    extra: dict[str, Any] = {}
    with torch.no_grad(), translated_errors("pair weights", dev):
        if mode == "tie":
            edges = tie_weights(nodes, weights, curv, first_order=first_order)
        else:
            edges, ranks = basis_weights(nodes, weights, curv.in_cov, rank=rank, ratio=ratio)
            extra["basis_rank"] = ranks
    bad = next(((u, v) for u, v, w in edges if not math.isfinite(w)), None)
    if bad is not None:
        raise InputError(f"the pair weight of {bad[0]!r} and {bad[1]!r} is not finite (curvature overflow?)")
    return edges, extra


def _estimator_meta(curv: Curvature, estimator: str, mode: str, first_order: bool, lanczos_steps: int) -> dict:
    """What the estimator measured beyond the curvature itself, for ``meta``."""
    meta: dict[str, Any] = {}
    if estimator == "lanczos":
        meta["lanczos"] = {"steps": lanczos_steps, "eigenvalues": curv.stats["eigenvalues"],
                           "lam_rest": curv.lam_rest, "trace_estimate": curv.stats["trace_estimate"],
                           "graphs_kept": curv.stats["graphs_kept"],
                           "graphs_kept_mb": round(curv.stats["graphs_kept_bytes"] / 2 ** 20, 1)}
    if curv.stats.get("gradient_snr") is not None and mode == "tie" and first_order:
        meta["gradient_snr"] = {k: round(v, 4) if math.isfinite(v) else None
                                for k, v in curv.stats["gradient_snr"].items()}
    if curv.stats.get("output_hessian"):
        meta["output_hessian"] = curv.stats["output_hessian"]
    return meta


def sidecar_tensors(curv: Curvature, weights: dict[str, torch.Tensor], mode: str, estimator: str,
                    contents: str) -> dict[str, torch.Tensor]:
    """What the sidecar holds (``contents`` in ``SIDECAR_CONTENTS``), by tensor name."""
    tensors = {f"diag/{n}": t for n, t in curv.diag.items()}
    if contents == "full":  # the weights let the torch-free core evaluate the true class cost (geoshare_opt.classcost)
        tensors.update({f"weight/{n}": t for n, t in weights.items()})
    if curv.in_cov is not None and (mode == "basis" or estimator == "kfac"):
        tensors.update({f"in_cov/{n}": t for n, t in curv.in_cov.items()})
    if curv.out_cov is not None:
        tensors.update({f"out_cov/{n}": t for n, t in curv.out_cov.items()})
    return tensors
