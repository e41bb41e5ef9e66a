"""Colourings measured on the real network (imports torch). Like the pipeline, this layer sits above the front end,
the back end and the solvers; none of them imports it.

* ``evaluate_colouring(spec, instance, colouring, ...)``: share a colouring in the network, measure the spec's loss
  (and optionally its metrics), restore. One call per colouring, for AutoML systems and scripts; a
  ``ColouringEvaluator`` does the same for many colourings without copying the network again.
* ``MeasuredClassCost``: the class-cost oracle (``geoshare_opt.oracle.ClassCostOracle``) whose cost of a class is the
  calibration-loss increase when only that class is shared.
* ``recommend(spec, instance, curvature, starts, ...)``: the colouring ``pipeline`` recommends (measured class costs,
  then a measured refinement of the whole colouring from every start).

docs/measured.md explains the method and what was measured.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from .classcosts import MeasuredClassCost, best_partitions  # noqa: F401
from .network import ClassWeights, ColouringEvaluator  # noqa: F401
from .recommend import RecommendOptions, recommend  # noqa: F401
from .refine import Refiner, RefineResult  # noqa: F401

DATA = ("calib", "heldout")


def evaluate_colouring(spec, instance, colouring: Any, curvature: Mapping | None = None, *, mode: str = "tie",
                       ratio: float | None = None, rank: int | str | None = None,
                       data: str | Iterable[Any] = "calib", metrics: bool = False) -> dict:
    """Measure ``colouring`` (a ``Result``, ``{node id: class}`` or labels in node order) of ``instance`` on the
    network of ``spec`` (a ``ModelSpec`` or a spec reference such as ``"minilm"``), and leave the network as it
    was.

    The colouring is materialised exactly as ``geoshare_opt.materialize.apply`` would (tie: curvature-weighted merge
    with ``curvature`` = the sidecar mapping, plain mean without it; basis: shared bases at the rank of ``ratio`` or
    ``rank``). ``data``: ``"calib"`` (the spec's calibration batches), ``"heldout"`` or an iterable of batches.
    Returns ``{"loss", "loss_trained", "loss_increase", "examples", "stored_params", "feasible", "violations"}``
    (``loss``: the spec's loss, example-weighted over the batches; ``feasible``: whether the colouring fits the
    instance's budget), plus ``"metrics"`` (the spec's metrics of the shared network) when ``metrics`` is true.
    """
    from ..checker import evaluate
    from ..errors import InputError
    from ..specs import ModelSpec, load_spec
    from .network import as_labels
    if not isinstance(spec, ModelSpec):
        spec = load_spec(str(spec))
    if isinstance(data, str):
        if data not in DATA:
            raise InputError(f"data must be one of {', '.join(DATA)} or an iterable of batches, got {data!r}")
        if data == "heldout" and spec.heldout is None:
            raise InputError(f"spec {spec.name!r} has no held-out batches")
        batches = spec.batches() if data == "calib" else spec.heldout()
    else:
        batches = data
    labels = as_labels(instance, colouring)
    check = evaluate(instance, labels)
    with ColouringEvaluator(spec, instance, curvature, mode=mode, ratio=ratio, rank=rank, batches=batches,
                            copy_model=False) as ev:
        trained = ev.loss()
        loss = ev.loss(labels)
        out = {"loss": loss, "loss_trained": trained, "loss_increase": loss - trained,
               "examples": int(ev.sizes.sum()), "stored_params": check.stored_params, "feasible": check.feasible,
               "violations": list(check.violations)}
        if metrics:
            out["metrics"] = ev.metrics()
    return out


__all__ = ["evaluate_colouring", "ColouringEvaluator", "ClassWeights", "MeasuredClassCost", "best_partitions",
           "recommend", "RecommendOptions", "Refiner", "RefineResult"]
