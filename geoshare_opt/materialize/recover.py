"""Recovery after sharing: a short training of a compressed network on the spec's calibration batches that keeps
its sharing intact.

* **Objective** ``"distill"`` (default, needs no labels): match the ORIGINAL network's outputs. The teacher is the
  network before sharing (default ``spec.model``, which ``apply`` copies and never modifies); its outputs
  (``spec.outputs``) are computed once per batch without gradients. Loss: ``spec.distill_loss(student_outputs,
  teacher_outputs, batch)`` when the spec defines one, else the mean squared error between the outputs.
  ``"task"``: the spec's own ``loss(model, batch)`` (labels or whatever the spec uses).
* **Sharing stays intact**: tied members are one ``Parameter`` object and a shared basis is one ``Parameter``;
  ``model.parameters()`` lists each once, so the optimiser holds one entry per storage and autograd sums the
  gradients of every member into it. Nothing is ever re-assigned, only updated in place by the optimiser.
* **method** ``"distill"`` trains every parameter of the compressed network; ``"lora"`` freezes all of them and
  trains per-member low-rank corrections ``W_m = W_shared + B_m A_m`` (Relaxed Recursive Transformers; B zero-init)
  on every shared member (``corrections.shared_members``), which the parameter report then counts.
* AdamW with linear warm-up (the first 10 % of steps) and cosine (or linear) decay to zero, gradient-norm clipping;
  the network is kept in eval mode (no dropout: the objective trained is the one measured). Deterministic for a
  seed on CPU (batch order and correction init come from seeded generators; the global RNG is untouched).
* **Best checkpoint** (with ``validation``, batches it does not train on): the objective on them is measured at the
  start and at ``checks`` evenly spaced steps, and the trained parameters of the best of these checkpoints are
  kept. A short recovery at a learning rate that suits a badly damaged network can make a slightly damaged one
  worse; with a validation split, recovery never returns a network it measured to be worse than one it passed.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ..errors import InputError
from .corrections import add_corrections, correction_parameters, shared_members
from .report import parameter_report

METHODS = ("distill", "lora")
OBJECTIVES = ("distill", "task")
SCHEDULES = ("cosine", "linear")
WARMUP_FRACTION = 0.1
CURVE_POINTS = 50


@dataclass
class RecoveryReport:
    method: str
    objective: str
    steps: int
    lr: float
    seed: int
    batch_size: int | None
    rank: int | None
    loss_before: float                 # mean objective over the calibration batches, before and after
    loss_after: float
    heldout_before: float | None       # the same on the spec's held-out batches (None without them)
    heldout_after: float | None
    train_s: float                     # the optimisation steps alone
    total_s: float                     # with teacher outputs and the before/after losses
    trainable_params: int
    parameters: dict                   # unique parameters before/after (lora: grows by the corrections)
    corrections: dict | None = None    # lora: {method, rank, scale, members}
    curve: list = field(default_factory=list)   # [step, training loss] at up to 50 points
    validation: list = field(default_factory=list)   # [step, objective on the validation batches] per checkpoint
    kept_step: int | None = None       # the checkpoint kept (0: the network as it came), None without validation

    def to_dict(self) -> dict:
        return asdict(self)


def check_budget(steps: Any, lr: Any) -> tuple[int, float]:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"recovery steps must be a positive integer, got {steps!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise InputError(f"recovery learning rate must be a positive number, got {lr!r}")
    return steps, float(lr)


def _batch_length(batch: Any) -> int | None:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.dim() else None
    items = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else ()
    for item in items:
        n = _batch_length(item)
        if n is not None:
            return n
    return None


def _slice(batch: Any, start: int, stop: int, n: int) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch[start:stop] if batch.dim() and batch.shape[0] == n else batch
    if isinstance(batch, dict):
        return {k: _slice(v, start, stop, n) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_slice(v, start, stop, n) for v in batch)
    return batch


def split_batches(batches, size: int | None) -> list:
    """The batches cut into pieces of at most ``size`` examples along the first dimension (as they are for None)."""
    out = []
    for batch in batches:
        n = _batch_length(batch) if size is not None else None
        if n is None or n <= size:
            out.append(batch)
            continue
        out += [_slice(batch, s, min(s + size, n), n) for s in range(0, n, size)]
    return out


def _piece_cuts(batches, per_batch: int) -> list[tuple[Any, int | None, list]]:
    """(batch, examples, piece bounds) for every batch cut into ``per_batch`` pieces of nearly equal size (fewer
    for a batch with fewer examples; one piece, bounds ``[None, None]``, for a batch without a length)."""
    out = []
    for batch in batches:
        n = _batch_length(batch)
        k = 1 if n is None else max(1, min(per_batch, n))
        out.append((batch, n, [round(i * n / k) for i in range(k + 1)] if n is not None else [None, None]))
    return out


def _piece_order(cuts) -> list[tuple[int, int]]:
    """(batch, piece) in round-robin order: the first piece of every batch, then the second, ..."""
    most = max((len(b) - 1 for _, _, b in cuts), default=0)
    return [(j, i) for i in range(most) for j, (_, _, b) in enumerate(cuts) if i < len(b) - 1]


def interleaved_pieces(batches, per_batch: int) -> list:
    """Every batch cut into ``per_batch`` pieces of nearly equal size (fewer for a batch with fewer examples), listed
    round robin over the batches (first piece of every batch, then the second, ...): any run of consecutive pieces
    mixes the batches evenly, whatever kinds of examples each batch holds."""
    cuts = _piece_cuts(batches, per_batch)
    return [cuts[j][0] if len(cuts[j][2]) == 2 else _slice(cuts[j][0], cuts[j][2][i], cuts[j][2][i + 1], cuts[j][1])
            for j, i in _piece_order(cuts)]


def pieces_except(batches, per_batch: int, held: set[int]) -> list:
    """The batches without the pieces that ``interleaved_pieces(batches, per_batch)`` lists at the positions
    ``held``: each batch's remaining examples as runs of consecutive pieces (two runs where a middle piece is
    held), so that training on them keeps the batches' sizes as far as it can."""
    cuts = _piece_cuts(batches, per_batch)
    dropped = {pos for k, pos in enumerate(_piece_order(cuts)) if k in held}
    out = []
    for j, (batch, n, bounds) in enumerate(cuts):
        start = None
        for i in range(len(bounds)):            # the last bound closes a run still open
            kept = i < len(bounds) - 1 and (j, i) not in dropped
            if kept and start is None:
                start = i
            elif not kept and start is not None:
                whole = start == 0 and i == len(bounds) - 1
                out.append(batch if whole else _slice(batch, bounds[start], bounds[i], n))
                start = None
    return out


def objective_fn(spec, objective: str) -> Callable:
    """``(model, batch, teacher_outputs) -> scalar loss`` for the chosen objective."""
    if objective == "task":
        return lambda net, batch, _teacher: spec.loss(net, batch)
    if spec.outputs is None:
        raise InputError(f"spec {spec.name!r} gives no 'outputs', so there is nothing to distil to: recover with "
                         "--objective task (the spec's own loss) or add outputs/output_loss to the spec")
    custom = getattr(spec, "distill_loss", None)
    if custom is not None:
        return lambda net, batch, teacher: custom(spec.outputs(net, batch), teacher, batch)

    def mse(net, batch, teacher):
        out = spec.outputs(net, batch)
        return torch.nn.functional.mse_loss(out.float(), teacher.float())
    return mse


@torch.no_grad()
def teacher_outputs(spec, teacher: nn.Module, batches: list, objective: str) -> list:
    if objective == "task":
        return [None] * len(batches)
    from ..specs.base import eval_mode

    with eval_mode(teacher):
        return [spec.outputs(teacher, b).detach() for b in batches]


@torch.no_grad()
def _batch_values(fn: Callable, model: nn.Module, batches: list, teachers: list) -> list[float]:
    """The objective ``fn`` of ``model`` on each batch against its teacher outputs."""
    return [float(fn(model, b, t)) for b, t in zip(batches, teachers)]


def _mean_loss(fn: Callable, model: nn.Module, batches: list, teachers: list) -> float | None:
    if not batches:
        return None
    return sum(_batch_values(fn, model, batches, teachers)) / len(batches)


def objective_loss(spec, model: nn.Module, batches: list, objective: str = "distill",
                   teacher: nn.Module | None = None) -> float:
    """What ``recover`` trains, measured on ``batches`` in eval mode, example-weighted: the distillation to
    ``teacher`` (default: the spec's network) or, with ``objective="task"``, the spec's own loss."""
    from ..specs.base import eval_mode
    _check_options(METHODS[0], objective, SCHEDULES[0], None)
    fn = objective_fn(spec, objective)
    teacher = spec.model if teacher is None else teacher
    sizes = [_batch_length(b) or 1 for b in batches]
    with eval_mode(model):
        losses = _batch_values(fn, model, batches, teacher_outputs(spec, teacher, batches, objective))
    return sum(v * n for v, n in zip(losses, sizes)) / sum(sizes)


def _lr_factor(step: int, steps: int, schedule: str) -> float:
    warmup = max(1, int(WARMUP_FRACTION * steps)) if steps > 1 else 0
    if step < warmup:
        return (step + 1) / (warmup + 1)
    frac = (step - warmup) / max(1, steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * frac)) if schedule == "cosine" else 1.0 - frac


def _device_of(model: nn.Module):
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def recover(model: nn.Module, spec, *, steps: int, lr: float = 1e-4, method: str = "distill", rank: int = 8,
            seed: int = 0, batch_size: int | None = None, objective: str = "distill", teacher: nn.Module | None = None,
            weight_decay: float = 0.0, max_grad_norm: float = 1.0, schedule: str = "cosine",
            members: list[str] | None = None, teacher_cache: dict | None = None,
            validation: list | None = None, checks: int = 4,
            progress: Callable[[dict], None] | None = None) -> RecoveryReport:
    """Train the compressed ``model`` IN PLACE for ``steps`` optimiser steps on ``spec``'s calibration batches (cut
    into pieces of ``batch_size`` examples when given) and return a ``RecoveryReport``.

    ``teacher``: the original network (default ``spec.model``). ``method="lora"`` adds rank-``rank`` corrections to
    ``members`` (default: every shared member, ``corrections.shared_members``) and trains only those.
    ``teacher_cache``: a dict the caller keeps to reuse the teacher's outputs across calls with the same spec,
    teacher and batch size (e.g. recovering every colouring of a comparison). ``validation``: batches not in
    ``spec``'s, on which the best of ``checks`` + 1 checkpoints is chosen and kept (module docstring). ``progress``
    receives ``{"stage": "recover", "step": "recover", "done", "total", "loss"}`` after every step.
    """
    from ..specs.base import eval_mode

    t_start = time.perf_counter()
    steps, lr = check_budget(steps, lr)
    _check_options(method, objective, schedule, batch_size)
    fn = objective_fn(spec, objective)
    teacher = spec.model if teacher is None else teacher
    if teacher is model:
        raise InputError("the teacher must be the original network, not the model being recovered")
    calib, heldout = _recovery_data(spec, teacher, objective, batch_size, _device_of(model), teacher_cache)
    best = None
    if validation:
        data = _with_teacher(spec, teacher, objective, validation, _device_of(model), teacher_cache,
                             ("validation", id(validation), id(teacher), objective))
        best = BestCheckpoint(fn, model, data, steps, checks)
    gen = torch.Generator().manual_seed(int(seed))
    before = parameter_report(model)
    with eval_mode(model):   # no dropout: the objective trained is the one measured; the caller's mode comes back
        trainable, frozen, corrections = _trainable(model, method, members, rank, gen)
        loss_before, heldout_before = _mean_loss(fn, model, *calib), _mean_loss(fn, model, *heldout)
        t_train = time.perf_counter()
        try:
            if best is not None:
                best.start(trainable)
            curve = _train(fn, model, calib, trainable, gen, steps=steps, lr=lr, weight_decay=weight_decay,
                           max_grad_norm=max_grad_norm, schedule=schedule, progress=progress, after_step=best)
            if best is not None:
                best.restore()
        finally:
            train_s = time.perf_counter() - t_train
            for p, flag in frozen:
                p.requires_grad_(flag)
        loss_after, heldout_after = _mean_loss(fn, model, *calib), _mean_loss(fn, model, *heldout)
    after = parameter_report(model)
    return RecoveryReport(
        method=method, objective=objective, steps=steps, lr=lr, seed=int(seed), batch_size=batch_size,
        rank=rank if method == "lora" else None, loss_before=loss_before, loss_after=loss_after,
        heldout_before=heldout_before, heldout_after=heldout_after, train_s=round(train_s, 3),
        total_s=round(time.perf_counter() - t_start, 3), trainable_params=sum(p.numel() for p in trainable),
        parameters={"before": before["params"], "after": after["params"],
                    "added": after["params"] - before["params"]},
        corrections=corrections, curve=curve, validation=[] if best is None else best.losses,
        kept_step=None if best is None else best.kept)


class BestCheckpoint:
    """The objective on validation batches at the start and after ``checks`` evenly spaced steps; ``restore`` puts
    the trained parameters of the lowest back (a snapshot of the trainable parameters only: the rest never moves)."""

    def __init__(self, fn: Callable, model: nn.Module, data: tuple[list, list], steps: int, checks: int):
        if isinstance(checks, bool) or not isinstance(checks, int) or checks < 1:
            raise InputError(f"recovery checkpoints must be a positive integer, got {checks!r}")
        self.fn, self.model, self.data = fn, model, data
        self.at = {max(1, round(steps * i / checks)) for i in range(1, checks + 1)}
        self.losses: list[list] = []
        self.kept, self.value, self.state, self.trainable = 0, math.inf, [], []

    def start(self, trainable: list) -> None:
        self.trainable = trainable
        self(0)

    def __call__(self, step: int) -> None:
        if step and step not in self.at:
            return
        with torch.no_grad():
            value = _mean_loss(self.fn, self.model, *self.data)
        self.losses.append([step, value])
        if value < self.value:
            self.kept, self.value = step, value
            self.state = [p.detach().clone() for p in self.trainable]

    def restore(self) -> None:
        with torch.no_grad():
            for p, saved in zip(self.trainable, self.state):
                p.copy_(saved)


def _check_options(method: str, objective: str, schedule: str, batch_size) -> None:
    if method not in METHODS:
        raise InputError(f"unknown recovery method {method!r}; choose {' or '.join(METHODS)}")
    if objective not in OBJECTIVES:
        raise InputError(f"unknown recovery objective {objective!r}; choose {' or '.join(OBJECTIVES)}")
    if schedule not in SCHEDULES:
        raise InputError(f"unknown learning-rate schedule {schedule!r}; choose {' or '.join(SCHEDULES)}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise InputError(f"recovery batch size must be a positive integer, got {batch_size!r}")


def _recovery_data(spec, teacher: nn.Module, objective: str, batch_size, device, teacher_cache):
    """((calibration batches, the teacher's outputs on them), (held-out batches, the teacher's outputs))."""
    calib = list(split_batches(spec.batches(), batch_size))
    if not calib:
        raise InputError(f"spec {spec.name!r} yields no calibration batches: nothing to recover on")
    heldout = list(split_batches(spec.heldout(), batch_size)) if spec.heldout else []
    key = (id(spec), id(teacher), batch_size, objective)
    return (_with_teacher(spec, teacher, objective, calib, device, teacher_cache, (*key, "calibration")),
            _with_teacher(spec, teacher, objective, heldout, device, teacher_cache, (*key, "heldout")))


def _with_teacher(spec, teacher: nn.Module, objective: str, batches: list, device, teacher_cache, key: tuple):
    """(``batches`` on ``device``, the teacher's outputs on them), the outputs from ``teacher_cache`` under
    ``key`` when it holds them (e.g. recovering every colouring of a comparison with one teacher)."""
    from ..specs.base import move_batch
    moved = [move_batch(b, device) for b in batches]
    cache = {} if teacher_cache is None else teacher_cache
    if key not in cache:
        cache[key] = teacher_outputs(spec, teacher, moved, objective)
    return moved, cache[key]


def _trainable(model: nn.Module, method: str, members, rank: int, gen):
    """(the parameters trained, the (parameter, requires_grad) flags to restore, the corrections record): every
    trainable parameter, or for ``lora`` new low-rank corrections on the shared members with the rest frozen."""
    frozen: list[tuple[nn.Parameter, bool]] = []
    corrections = None
    if method == "lora":
        names = shared_members(model) if members is None else list(members)
        if not names:
            raise InputError("the model has no shared layers to correct (lora needs a tied or shared-basis layer)")
        frozen = [(p, p.requires_grad) for p in model.parameters()]
        for p, _ in frozen:
            p.requires_grad_(False)
        corrections = add_corrections(model, names, rank, generator=gen)
        trainable = correction_parameters(model)
    else:
        trainable = [p for p in model.parameters() if p.requires_grad]   # one entry per Parameter object
    if not trainable:
        for p, flag in frozen:
            p.requires_grad_(flag)
        raise InputError("the model has no trainable parameters")
    return trainable, frozen, corrections


def _train(fn, model: nn.Module, calib, trainable, gen, *, steps: int, lr: float, weight_decay: float,
           max_grad_norm: float, schedule: str, progress, after_step: Callable[[int], None] | None = None) -> list:
    """``steps`` AdamW steps on calibration batches in a seeded random order; the loss curve (``CURVE_POINTS``).
    ``after_step(steps done)`` after every step (the best checkpoint)."""
    batches, teacher_out = calib
    opt = torch.optim.AdamW(trainable, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, steps, schedule))
    every = max(1, steps // CURVE_POINTS)
    curve = []
    order: list[int] = []
    for step in range(steps):
        if not order:
            order = torch.randperm(len(batches), generator=gen).tolist()
        i = order.pop()
        opt.zero_grad(set_to_none=True)
        loss = fn(model, batches[i], teacher_out[i])
        if not torch.isfinite(loss):
            raise InputError(f"recovery diverged at step {step + 1} (loss {float(loss)}): lower --lr")
        loss.backward()
        if max_grad_norm:
            torch.nn.utils.clip_grad_norm_(trainable, max_grad_norm)
        opt.step()
        sched.step()
        value = float(loss.detach())
        if after_step is not None:
            after_step(step + 1)
        if step % every == 0 or step == steps - 1:
            curve.append([step + 1, value])
        if progress is not None:
            progress({"stage": "recover", "step": "recover", "done": step + 1, "total": steps, "loss": value})
    return curve


def recovered_tie_map(tie_map: dict, model: nn.Module, report: RecoveryReport) -> dict:
    """The tie map of a recovered network: the original map plus a ``recovery`` record and the new parameter
    counts (``save_compressed`` adds the ``corrections`` record from the model itself)."""
    out = dict(tie_map)
    node_ids = list(tie_map.get("colouring") or [m for c in tie_map.get("classes", []) for m in c["members"]])
    rec = report.to_dict()
    rec.pop("curve", None)
    out["recovery"] = [*(tie_map.get("recovery") or []), rec]   # recovering twice keeps both records
    params = dict(tie_map.get("parameters") or {})
    if params.get("before"):
        from .report import compare
        params = compare(params["before"], parameter_report(model, node_ids))
    out["parameters"] = params
    return out
