"""The recommendation for the network the user gets when the colouring is also recovered (trained after sharing).

The measured refinement (``recommend``) scores colourings before recovery, and the least damaged colouring is not
always the one that recovers best. With a recovery budget, ``recommend_after_recovery`` takes a few finalists (the
refined colouring and the starts best on the refinement's search and confirm pieces together), recovers each with the
same settings on the calibration examples outside the confirm pieces (``materialize.recover``), scores each by the
recovery's objective on the confirm pieces (``recovered_loss``), and recommends the best. Calibration data only;
held-out data stay for the report.
Every finalist's scores go into the refinement's record (``record["after_recovery"]``: ``confirm_loss``, the spec's
loss before recovery; ``recovered_objective``, the recovery's objective after recovery, both on the confirm pieces).
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Mapping

import numpy as np

from ..instance import Instance
from .recommend import RecommendOptions, as_result, calibration_pieces, split_indices

REFINED = "measured"


def finalists(instance: Instance, refined: np.ndarray, record: dict, starts: Mapping[str, np.ndarray],
              weights: tuple[float, float], count: int) -> dict[str, np.ndarray]:
    """The refined colouring (``REFINED``) and the starts with the lowest loss on the search and confirm pieces
    together (``weights``: their examples), ``count`` distinct colourings in all."""
    from ..checker import canonical
    ws, wc = weights
    total = lambda name: (record["starts"][name]["search"] * ws + record["starts"][name]["confirm"] * wc) / (ws + wc)
    out, seen = {REFINED: refined}, {canonical(np.asarray(refined)).tobytes()}
    for name in sorted((n for n in starts if n in record["starts"]), key=total):
        if len(out) >= count:
            break
        key = canonical(np.asarray(starts[name])).tobytes()
        if key not in seen:
            out[name], seen = starts[name], seen | {key}
    return out


def recovery_data(spec, opts: RecommendOptions) -> tuple[list, list, tuple[float, float]]:
    """(training batches: the calibration examples outside the confirm pieces, in runs of consecutive pieces of
    each batch; the confirm pieces; the examples of the search and of the confirm pieces), cut exactly as
    ``recommend`` cuts them."""
    from ..frontend.runtime import batch_size_of
    from ..materialize.recover import pieces_except
    pieces = calibration_pieces(spec, opts.chunks)
    _, search, confirm = split_indices(len(pieces), opts)
    batches = list(spec.batches())
    per_batch = max(1, math.ceil(opts.chunks / max(1, len(batches))))
    weights = tuple(float(sum(batch_size_of(pieces[i]) for i in idx)) for idx in (search, confirm))
    return pieces_except(batches, per_batch, set(confirm)), [pieces[i] for i in confirm], weights


def recovered_loss(spec, train_spec, instance: Instance, curvature, labels: np.ndarray, confirm: list, *,
                   mode: str, ratio: float | None, recovery: Mapping[str, Any], teacher_cache: dict) -> float:
    """The recovery's objective (``materialize.recover.objective_loss``) on the ``confirm`` pieces of the network
    sharing ``labels`` after the recovery ``recovery`` (``pipeline.recovery_settings``) on ``train_spec``'s batches,
    which keeps its best checkpoint on the same pieces, as the pipeline's recovery of every colouring does.
    The objective recovery trains, not the spec's loss: after recovery the network is judged by how well it learned
    to stand in for the original one, and the spec's loss on calibration data (often the original network's own
    training data) also rewards what that network memorised there."""
    from ..materialize import apply
    from ..materialize.recover import objective_loss, recover
    model, _ = apply(spec.model, instance, as_result(instance, labels, {}, time.perf_counter()), mode, curvature,
                     ratio=ratio)
    recover(model, train_spec, steps=recovery["steps"], teacher_cache=teacher_cache, validation=confirm,
            **{k: v for k, v in recovery.items() if k != "steps"})
    return objective_loss(spec, model, confirm, recovery.get("objective", "distill"))


def recommend_after_recovery(spec, instance: Instance, curvature, refined, record: dict,
                             starts: Mapping[str, Any], recovery: Mapping[str, Any], *, mode: str = "tie",
                             ratio: float | None = None, options: Mapping[str, Any] | RecommendOptions | None = None,
                             progress: Callable[[dict], None] | None = None):
    """``(Result, name)``: the finalist (``finalists``) with the lowest confirm loss after ``recovery``; ``name`` is
    ``REFINED`` when it is the refined colouring ``refined`` (a Result from ``recommend`` with its ``record``), else
    the start's name. Adds ``record["after_recovery"]``."""
    from ..errors import InputError
    from .network import as_labels
    opts = options if isinstance(options, RecommendOptions) else RecommendOptions.from_dict(options)
    say = progress or (lambda info: None)
    started = time.perf_counter()
    train, confirm, weights = recovery_data(spec, opts)
    labelled = {}
    for name, colouring in starts.items():
        try:
            labelled[name] = as_labels(instance, colouring)
        except InputError:                     # a heuristic the budget rejects is no finalist (as in recommend)
            continue
    chosen = finalists(instance, as_labels(instance, refined), record, labelled, weights, opts.finalists)
    train_spec = dataclasses.replace(spec, batches=lambda: iter(train), heldout=None)
    cache: dict = {}
    scores = {}
    for name, labels in chosen.items():
        say({"stage": "refine", "message": f"after recovery: {name} ({recovery['steps']} steps)"})
        scores[name] = recovered_loss(spec, train_spec, instance, curvature, labels, confirm, mode=mode, ratio=ratio,
                                      recovery=recovery, teacher_cache=cache)
    best = min(scores, key=lambda n: scores[n])
    record["after_recovery"] = {
        "choice": best, "train_batches": len(train), "confirm_pieces": len(confirm),
        "time_s": round(time.perf_counter() - started, 3),
        "objective": recovery.get("objective", "distill"),
        "finalists": [{"colouring": n, "confirm_loss": record["confirm_loss"] if n == REFINED
                       else record["starts"][n]["confirm"], "recovered_objective": scores[n]} for n in chosen]}
    if best == REFINED:
        return refined, best
    return as_result(instance, chosen[best], record, started), best
