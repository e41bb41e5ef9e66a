"""Tying: every class of the colouring becomes one ``nn.Parameter`` shared by identity by all its members.

The shared value is the curvature-weighted merge ``w̄ = Σ_l h_l ⊙ w_l / Σ_l h_l`` (element-wise; the minimiser of
the diagonal quadratic model ``½ Σ_l Σ_p h_lp (w_lp − w̄_p)²``, formulations/sweep-and-classcost.md), with the plain mean
where no curvature was saved or where every member's curvature is zero. Biases and norms are not tied: only the
2-D weight matrices named by the instance are, so each layer keeps its own bias and normalisation.
"""
from __future__ import annotations

from typing import Mapping

import torch

from ..errors import InputError
from .common import owner


def merge(weights: list[torch.Tensor], curvatures: list[torch.Tensor] | None) -> torch.Tensor:
    """Curvature-weighted mean of equally shaped tensors (plain mean without curvature), computed in float64."""
    stack = torch.stack([w.detach().to(torch.float64) for w in weights])
    plain = stack.mean(0)
    if curvatures is None:
        return plain.to(weights[0].dtype)
    h = torch.stack([c.detach().to(device=stack.device, dtype=torch.float64).clamp_min(0) for c in curvatures])
    total = h.sum(0)
    weighted = (h * stack).sum(0) / torch.where(total > 0, total, torch.ones_like(total))
    return torch.where(total > 0, weighted, plain).to(weights[0].dtype)


def class_cost(weights: list[torch.Tensor], curvatures: list[torch.Tensor], merged: torch.Tensor) -> float:
    """The diagonal quadratic model's cost of moving every member to ``merged``: ``½ Σ_l Σ_p h_lp (w_lp − w̄_p)²``
    (the true class cost; the instance's pair weights only model it, curvature.md)."""
    m = merged.detach().to(torch.float64)
    return float(sum(0.5 * (c.detach().to(device=m.device, dtype=torch.float64)
                            * (w.detach().to(torch.float64) - m) ** 2).sum() for w, c in zip(weights, curvatures)))


def class_curvatures(members: list[str], curvature: Mapping[str, torch.Tensor] | None,
                     shapes: list[torch.Size]) -> list[torch.Tensor] | None:
    if not curvature:
        return None
    found = [curvature.get(f"diag/{m}") for m in members]
    if any(c is None for c in found):
        return None
    for m, c, s in zip(members, found, shapes):
        if tuple(c.shape) != tuple(s):
            raise InputError(f"curvature diag/{m} has shape {list(c.shape)}, the weight {list(s)}: the curvature "
                             "file belongs to another model")
    return found


def tie_classes(model, classes: list[list[str]], curvature: Mapping[str, torch.Tensor] | None) -> dict:
    """Tie ``model`` in place (call it on a copy). Returns per-class records for the tie map."""
    records = []
    for members in classes:
        if len(members) == 1:
            records.append({"members": members, "tensor": members[0], "merge": "none"})
            continue
        params = [owner(model, m) for m in members]
        weights = [getattr(mod, attr) for mod, attr in params]
        shapes = [w.shape for w in weights]
        if any(s != shapes[0] for s in shapes):
            raise InputError(f"class {members} mixes shapes {[list(s) for s in shapes]}: cannot tie them")
        curv = class_curvatures(members, curvature, shapes)
        merged = merge(weights, curv)
        record = {"members": members, "tensor": members[0],
                  "merge": "curvature-weighted" if curv is not None else "mean"}
        if curv is not None:
            record["predicted_cost"] = class_cost(weights, curv, merged)
        shared = torch.nn.Parameter(merged, requires_grad=weights[0].requires_grad)
        for mod, attr in params:
            setattr(mod, attr, shared)       # the same Parameter object on every member: one storage
        records.append(record)
    return {"classes": records}


def retie(model, classes: list[list[str]]) -> None:
    """Make every class share its first member's Parameter (used when loading: values come from the file)."""
    for members in classes:
        mod0, attr0 = owner(model, members[0])
        shared = getattr(mod0, attr0)
        for m in members[1:]:
            mod, attr = owner(model, m)
            if getattr(mod, attr).shape != shared.shape:
                raise InputError(f"tie map ties {m!r} to {members[0]!r} but their shapes differ")
            setattr(mod, attr, shared)
