"""The spec contract shared by the front end, the back end and the CLI (``load.load_spec`` finds a spec by reference).

A user spec is ``make()`` returning either a ``ModelSpec`` or a plain dict with keys
``model`` (``torch.nn.Module``), ``batches`` (an iterable of batches, or a callable returning one),
``loss`` (``(model, batch) -> scalar tensor``) and optionally ``metrics`` (``model -> dict[str, float]``; higher is
better unless the name ends in ``loss``, ``perplexity``, ``ppl``, ``error`` or ``mse``) and ``heldout`` (batches not
used for calibration, same forms as ``batches``).

``loss`` must be what ``metrics`` reward (a smooth stand-in for them on calibration data: cross-entropy for accuracy
or perplexity, cosine distillation for embedding cosine): the measured class costs and the measured refinement
(``geoshare_opt.measured``) choose the recommended colouring by it, and a loss the metrics do not reward leads them
astray (docs/measured.md: MiniLM with a hidden-state MSE loss).

Two optional keys let the front end compute Gauss-Newton / Fisher curvature that stays informative at a stationary
point (where squared gradients vanish, e.g. a distillation loss at the original weights): ``outputs`` (``(model,
batch) -> tensor``, the network's output) and ``output_loss`` (``(outputs, batch) -> scalar``), the output-space loss
whose curvature weights the tie merge and the pair weights. Usually ``loss(model, batch) == output_loss(outputs(model,
batch), batch)``; a spec may choose another output-space metric for the curvature where the merge measures better
with it (the prose encoders: MSE of hidden states, see ``prose_distill``).
``distill_loss`` (optional, ``(student_outputs, teacher_outputs, batch) -> scalar``, needs ``outputs``) is the loss
recovery after sharing minimises to match the original network (e.g. KL between next-token distributions); recovery
falls back to the MSE between outputs when it is absent.
``refine_score`` (optional, ``"loss"`` or ``"distill"``; default ``"loss"``) is what the measured refinement ranks
colourings by: the spec's loss, or (needs ``outputs``) the distillation to the trained network's outputs. Choose
``"distill"`` where the loss is the network's own training loss on sampled targets (next-token cross-entropy): the
distillation measures the same damage against the network's whole output distribution, with far less noise on a small
calibration set (docs/measured.md, "Scoring by distillation").
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..errors import InputError

LOWER_IS_BETTER_SUFFIXES = ("loss", "perplexity", "ppl", "error", "mse")


def lower_is_better(metric: str) -> bool:
    return metric.lower().endswith(LOWER_IS_BETTER_SUFFIXES)


@dataclass
class ModelSpec:
    name: str
    model: Any                                   # torch.nn.Module, trained
    batches: Callable[[], Iterable[Any]]         # fresh iterator of calibration batches on each call
    loss: Callable[[Any, Any], Any]              # (model, batch) -> scalar tensor
    metrics: Callable[[Any], dict[str, float]] | None = None
    heldout: Callable[[], Iterable[Any]] | None = None
    meta: dict = field(default_factory=dict)     # provenance (weights file, data split, seed, ...)
    outputs: Callable[[Any, Any], Any] | None = None       # (model, batch) -> output tensor
    output_loss: Callable[[Any, Any], Any] | None = None   # (outputs, batch) -> scalar; loss = output_loss(outputs(...))
    distill_loss: Callable[[Any, Any, Any], Any] | None = None  # (student outputs, teacher outputs, batch) -> scalar
    refine_score: str = "loss"                   # what the measured refinement ranks colourings by: loss | distill


def _as_batch_factory(obj: Any, what: str) -> Callable[[], Iterable[Any]] | None:
    if obj is None:
        return None
    if callable(obj) and not hasattr(obj, "__iter__"):
        return obj
    if isinstance(obj, (list, tuple)):
        items = list(obj)
        return lambda: iter(items)
    if hasattr(obj, "__iter__"):
        if iter(obj) is obj:  # a one-shot iterator/generator: keep its items so every pass sees the same data
            items = list(obj)
            return lambda: iter(items)
        return lambda: iter(obj)
    raise InputError(f"spec: {what!r} must be an iterable of batches or a callable returning one, got {type(obj).__name__}")


def as_spec(obj: Any, name: str = "user") -> ModelSpec:
    """Check and normalise what a ``make()`` returned."""
    import torch

    if isinstance(obj, ModelSpec):
        spec = obj
    elif isinstance(obj, dict):
        missing = [k for k in ("model", "batches", "loss") if k not in obj]
        if missing:
            raise InputError(f"spec {name!r}: the dict lacks key {missing[0]!r} (needs model, batches, loss)")
        unknown = set(obj) - {"model", "batches", "loss", "metrics", "heldout", "meta", "name", "outputs",
                              "output_loss", "distill_loss", "refine_score"}
        if unknown:
            raise InputError(f"spec {name!r}: unknown key {sorted(unknown)[0]!r}")
        spec = ModelSpec(name=obj.get("name", name), model=obj["model"], batches=obj["batches"], loss=obj["loss"],
                         metrics=obj.get("metrics"), heldout=obj.get("heldout"), meta=dict(obj.get("meta", {})),
                         outputs=obj.get("outputs"), output_loss=obj.get("output_loss"),
                         distill_loss=obj.get("distill_loss"), refine_score=obj.get("refine_score", "loss"))
    else:
        raise InputError(f"spec {name!r}: make() must return a dict or a ModelSpec, got {type(obj).__name__}")
    if not isinstance(spec.model, torch.nn.Module):
        raise InputError(f"spec {name!r}: 'model' must be a torch.nn.Module, got {type(spec.model).__name__}")
    if not callable(spec.loss):
        raise InputError(f"spec {name!r}: 'loss' must be callable (model, batch) -> scalar tensor")
    if (spec.outputs is None) != (spec.output_loss is None):
        raise InputError(f"spec {name!r}: 'outputs' and 'output_loss' must be given together")
    if spec.distill_loss is not None and (not callable(spec.distill_loss) or spec.outputs is None):
        raise InputError(f"spec {name!r}: 'distill_loss' must be callable (student_outputs, teacher_outputs, batch) "
                         "-> scalar and needs 'outputs'")
    if spec.refine_score not in ("loss", "distill"):
        raise InputError(f"spec {name!r}: 'refine_score' must be 'loss' or 'distill', got {spec.refine_score!r}")
    if spec.refine_score == "distill" and spec.outputs is None:
        raise InputError(f"spec {name!r}: 'refine_score' 'distill' needs 'outputs' to distil to")
    if spec.metrics is not None and not callable(spec.metrics):
        raise InputError(f"spec {name!r}: 'metrics' must be callable model -> dict")
    spec.batches = _as_batch_factory(spec.batches, "batches")
    spec.heldout = _as_batch_factory(spec.heldout, "heldout")
    return spec


@contextmanager
def eval_mode(net):
    """``net`` in eval mode inside the block (no dropout in metrics or teacher outputs), its training flag restored
    afterwards so the caller's mode never changes."""
    was_training = net.training
    net.eval()
    try:
        yield net
    finally:
        net.train(was_training)


def move_batch(batch: Any, device=None, dtype=None) -> Any:
    """Move a batch (tensor, tuple/list, dict, or nested) to ``device``; floating tensors to ``dtype`` if given."""
    import torch

    if isinstance(batch, torch.Tensor):
        if dtype is not None and batch.is_floating_point():
            return batch.to(device=device, dtype=dtype)
        return batch.to(device=device)
    if isinstance(batch, dict):
        return {k: move_batch(v, device, dtype) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_batch(v, device, dtype) for v in batch)
    return batch
