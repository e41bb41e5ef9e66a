"""Colourings measured on the real network: tie (or share bases) in place, compute the spec's loss, restore.

``ColouringEvaluator`` holds one working copy of the network. Setting a colouring writes each node's effective
weight in place: in tie mode every member of a class takes the class's merge (``materialize.tie.merge``, the
curvature-weighted mean that ``apply`` stores), in basis mode its reconstruction from the class's shared basis
(``materialize.basis.factor_class`` at the rank ``apply`` gives the class). Only the nodes whose class changed are
rewritten and each class's weights are computed once (cached by member set), so trying a move costs one forward pass
over the evaluation batches. The loss is the spec's ``loss`` (its contract: what the metrics reward), computed in
inference mode batch by batch, so that two colourings are compared on the same data (paired differences). The
caller's network is never modified.
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from ..errors import InputError
from ..instance import Instance

MODES = ("tie", "basis")
CACHE_BYTES = 1 << 30          # class weights kept for reuse (least recently used dropped beyond this)


def class_lists(instance: Instance, labels: np.ndarray) -> list[tuple[int, ...]]:
    """Node indices of every class (sorted), refusing a class that mixes node types: such a colouring cannot be
    materialised (tying and shared bases need one shape)."""
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(np.asarray(labels).tolist()):
        groups.setdefault(int(c), []).append(i)
    type_of = instance.type_of
    for members in groups.values():
        if len(set(type_of[members].tolist())) > 1:
            raise InputError("a class of the colouring mixes node types; only layers of one type can share")
    return [tuple(m) for m in groups.values()]


def as_labels(instance: Instance, colouring: Any) -> np.ndarray:
    """Labels in node order from a ``Result``, a ``{node id: class}`` mapping or a sequence in node order."""
    from ..checker import labels_from_assignment
    from ..result import Result
    if isinstance(colouring, Result):
        if not colouring.feasible:
            raise InputError(f"the result holds no colouring (termination {colouring.termination!r})")
        colouring = colouring.assignment
    return labels_from_assignment(instance, colouring)


class ClassWeights:
    """The weight every member of a class takes when the class is shared, computed once per member set.

    ``originals`` maps node id -> trained weight; ``curvature`` is the sidecar mapping (``diag/<id>`` for the tie
    merge, ``in_cov/<id>`` for shared bases). Tie mode without curvature merges to the plain mean; a single-member
    class keeps its weight (tie) or becomes per-layer low rank (basis)."""

    def __init__(self, originals: Mapping[str, torch.Tensor], mode: str = "tie",
                 curvature: Mapping[str, torch.Tensor] | None = None, *, ratio: float | None = None,
                 rank: int | str | None = None, side: str = "auto", cache_bytes: int = CACHE_BYTES):
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r}; choose tie or basis")
        if mode == "basis":
            if curvature is None or any(f"in_cov/{n}" not in curvature for n in originals):
                from ..materialize.apply import BASIS_NEEDS_COV
                raise InputError(BASIS_NEEDS_COV)
            if rank is None and ratio is None:
                raise InputError("basis mode needs a compression ratio or a rank")
        self.originals, self.mode, self.curvature = originals, mode, curvature
        self.ratio, self.rank, self.side = ratio, rank, side
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[tuple[str, ...], list[torch.Tensor]] = OrderedDict()
        self._bytes = 0

    def __call__(self, members: Sequence[str]) -> list[torch.Tensor]:
        key = tuple(members)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        value = self._compute(key)
        size = sum(t.numel() * t.element_size() for t in value)
        self._cache[key] = value
        self._bytes += size
        while self._bytes > self.cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._bytes -= sum(t.numel() * t.element_size() for t in old)
        return value

    def _compute(self, members: tuple[str, ...]) -> list[torch.Tensor]:
        weights = [self.originals[m] for m in members]
        if self.mode == "tie":
            if len(members) == 1:
                return weights
            from ..materialize.tie import class_curvatures, merge
            curv = class_curvatures(list(members), self.curvature, [w.shape for w in weights])
            return [merge(weights, curv)]          # one tensor: every member takes it
        from ..materialize.basis import choose_side, class_rank, factor_class
        d_out, d_in = weights[0].shape
        side = choose_side(self.side, d_out, d_in)
        r = class_rank(self.rank, self.ratio, side, len(members), d_out, d_in)
        shared, coefs = factor_class(weights, [self.curvature[f"in_cov/{m}"] for m in members], r, side)
        rebuilt = [c @ shared if side == "in" else shared @ c for c in coefs]
        return [w.to(dtype=weights[0].dtype) for w in rebuilt]


SCORES = ("loss", "distill")


def scorer(spec, model, batches: Sequence[Any], score: str = "loss") -> Callable[[Any, int], Any]:
    """``(network, b) -> loss on batches[b]``: the spec's loss (``"loss"``) or the recovery's distillation to
    ``model``'s outputs as they are now, the trained network's, computed once per batch (``"distill"``)."""
    from ..frontend.runtime import call_user
    if score == "loss":
        return lambda net, b: call_user(spec.loss, net, batches[b], what="loss")
    from ..materialize.recover import objective_fn, teacher_outputs
    fn, targets = objective_fn(spec, "distill"), teacher_outputs(spec, model, list(batches), "distill")
    return lambda net, b: fn(net, batches[b], targets[b])


class ColouringEvaluator:
    """Measures colourings of ``instance`` on ``spec``'s network (see the module docstring).

    ``batches``: the data the loss is measured on (default: the spec's calibration batches), cut into pieces of at
    most ``chunk`` examples so that racing can stop early. ``copy=False`` works on ``spec.model`` itself and
    restores its weights on ``close()`` (or leaving a ``with`` block): less memory for a large network.
    ``score``: ``"loss"`` (the spec's loss) or ``"distill"`` (the recovery's distillation to the trained network's
    outputs, computed once per batch: where the spec's loss is the network's own training loss, the same damage
    measured against the network's whole output distribution instead of sampled targets)."""

    def __init__(self, spec, instance: Instance, curvature: Mapping[str, torch.Tensor] | None = None, *,
                 mode: str = "tie", ratio: float | None = None, rank: int | str | None = None,
                 batches: Iterable[Any] | None = None, chunk: int | None = None, copy_model: bool = True,
                 score: str = "loss"):
        from ..materialize.recover import split_batches
        self.spec, self.instance, self.mode = spec, instance, mode
        self.model = copy.deepcopy(spec.model) if copy_model else spec.model
        self._was_training = self.model.training
        self.model.eval()
        params = dict(self.model.named_parameters(remove_duplicate=False))
        missing = [n.id for n in instance.nodes if n.id not in params]
        if missing:
            raise InputError(f"the model has no parameter {missing[0]!r} named by the instance")
        self.ids = [n.id for n in instance.nodes]
        self._params = [params[i] for i in self.ids]
        self.trained = {i: p.detach().clone() for i, p in zip(self.ids, self._params)}   # node id -> weight
        self.weights = ClassWeights(self.trained, mode, curvature, ratio=ratio, rank=rank)
        # the class each node's weight currently comes from; None: its trained weight (in basis mode a one-member
        # class is per-layer low rank, not the trained weight)
        self._current: list[tuple[int, ...] | None] = [None] * len(self.ids)
        self.batches = split_batches(list(batches if batches is not None else spec.batches()), chunk)
        if not self.batches:
            raise InputError("no batches to measure the loss on")
        from ..frontend.runtime import batch_size_of
        self.sizes = np.array([batch_size_of(b) for b in self.batches], dtype=np.float64)
        self.forward_passes = 0
        self.score = score
        self._loss_of = scorer(spec, self.model, self.batches, score)

    # ------------------------------------------------------------------ the network's weights
    def set(self, colouring: Any) -> None:
        """Put the network in the state of ``colouring`` (a Result, mapping or labels), rewriting only the nodes
        whose class changed."""
        self.set_classes(class_lists(self.instance, as_labels(self.instance, colouring)))

    def set_classes(self, classes: Iterable[Sequence[int]]) -> None:
        """The state where every class of ``classes`` (node indices, covering every node) is shared."""
        target: list[tuple[int, ...] | None] = [None] * len(self.ids)
        for members in classes:
            key = tuple(sorted(int(i) for i in members))
            for i in key:
                target[i] = key
        if any(t is None for t in target):
            raise InputError("the classes do not cover every node")
        self._write(target)

    def share_only(self, members: Sequence[int]) -> None:
        """The state where only ``members`` share (as one class) and every other node has its trained weight (in
        basis mode too): what a measured class cost is measured on."""
        key = tuple(sorted(int(i) for i in members))
        target: list[tuple[int, ...] | None] = [None] * len(self.ids)
        for i in key:
            target[i] = key
        self._write(target)

    def reset(self) -> None:
        """The trained weights on every node (in basis mode too: no sharing and no low rank)."""
        self._write([None] * len(self.ids))

    def _write(self, target: list[tuple[int, ...] | None]) -> None:
        with torch.no_grad():
            for i, key in enumerate(target):
                if key == self._current[i]:
                    continue
                if key is None:
                    self._params[i].copy_(self.trained[self.ids[i]])
                    continue
                values = self.weights([self.ids[j] for j in key])
                self._params[i].copy_(values[0] if len(values) == 1 else values[key.index(i)])
        self._current = list(target)

    # ------------------------------------------------------------------ measuring
    def batch_losses(self, indices: Sequence[int] | None = None) -> np.ndarray:
        """The score (the spec's loss, or the distillation) on each batch (``indices``: a subset) in the network's
        current state, without gradients."""
        idx = range(len(self.batches)) if indices is None else indices
        with torch.inference_mode():
            out = np.array([float(self._loss_of(self.model, b)) for b in idx], dtype=np.float64)
        self.forward_passes += len(out)
        if not np.all(np.isfinite(out)):
            raise InputError("the loss is not finite on the tied network")
        return out

    def mean(self, losses: np.ndarray, indices: Sequence[int] | None = None) -> float:
        """The example-weighted mean of per-batch losses (batches hold different numbers of examples)."""
        w = self.sizes if indices is None else self.sizes[np.asarray(indices, dtype=np.int64)]
        return float(np.dot(losses, w) / w.sum())

    def loss(self, colouring: Any = None, indices: Sequence[int] | None = None) -> float:
        """The mean loss of ``colouring`` (None: the current state) over the batches (or ``indices``)."""
        if colouring is not None:
            self.set(colouring)
        return self.mean(self.batch_losses(indices), indices)

    def metrics(self, colouring: Any = None) -> dict[str, float]:
        """The spec's metrics of the network in the state of ``colouring`` (None: the current state)."""
        if self.spec.metrics is None:
            raise InputError(f"spec {self.spec.name!r} has no metrics")
        if colouring is not None:
            self.set(colouring)
        return {k: float(v) for k, v in self.spec.metrics(self.model).items()}

    def close(self) -> None:
        """Restore the trained weights (and training flag) of the network worked on."""
        self.reset()
        self.model.train(self._was_training)

    def __enter__(self) -> "ColouringEvaluator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
