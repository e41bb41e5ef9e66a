"""Per-member low-rank corrections on shared layers (Relaxed Recursive Transformers, Bae et al. 2024):
``W_member = W_shared + scale · B_m A_m``, with ``A_m`` (r × d_in) and ``B_m`` (d_out × r) owned by one member only.

The corrected modules keep the state-dict keys of the module they replace (``weight``/``bias`` for a tied
``nn.Linear``; ``weight_in``/``weight_out``/``bias`` for a ``SharedBasisLinear``) and add ``lora_A``/``lora_B``, so the
tie map's aliases, ``retie`` and ``skeleton_class`` work unchanged and the corrections are two more keys per member.
``B`` starts at zero: before any training a corrected network computes exactly what the shared one did.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .basis import SharedBasisLinear, replace_module


def _init_factors(d_out: int, d_in: int, rank: int, like: torch.Tensor, generator: torch.Generator | None,
                  empty: bool) -> tuple[nn.Parameter, nn.Parameter]:
    if empty:          # loading: the values come from the file
        a = torch.empty(rank, d_in, dtype=like.dtype, device=like.device)
    else:              # LoRA's init: A random with unit-variance outputs, B zero
        a = (torch.randn(rank, d_in, generator=generator, dtype=torch.float32) / math.sqrt(d_in)).to(
            dtype=like.dtype, device=like.device)
    b = torch.zeros(d_out, rank, dtype=like.dtype, device=like.device)
    return nn.Parameter(a), nn.Parameter(b)


class CorrectedLinear(nn.Module):
    """``y = x Wᵀ + bias + scale · (x Aᵀ) Bᵀ``; ``weight`` stays the (possibly tied) shared Parameter."""

    def __init__(self, weight: nn.Parameter, bias: nn.Parameter | None, lora_A: nn.Parameter,
                 lora_B: nn.Parameter, scale: float = 1.0):
        super().__init__()
        self.weight = weight
        self.bias = bias
        self.lora_A = lora_A
        self.lora_B = lora_B
        self.scale = float(scale)
        self.out_features, self.in_features = weight.shape
        self.rank = lora_A.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias) + self.scale * F.linear(F.linear(x, self.lora_A), self.lora_B)

    def effective_weight(self) -> torch.Tensor:
        return self.weight + self.scale * (self.lora_B @ self.lora_A)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, correction_rank={self.rank}"


class CorrectedBasisLinear(SharedBasisLinear):
    """A ``SharedBasisLinear`` plus its member's own low-rank correction."""

    def __init__(self, base: SharedBasisLinear, lora_A: nn.Parameter, lora_B: nn.Parameter, scale: float = 1.0):
        super().__init__(base.weight_in, base.weight_out, base.bias, base.shared)
        self.lora_A = lora_A
        self.lora_B = lora_B
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + self.scale * F.linear(F.linear(x, self.lora_A), self.lora_B)

    @property
    def weight(self) -> torch.Tensor:
        return self.weight_out @ self.weight_in + self.scale * (self.lora_B @ self.lora_A)

    def effective_weight(self) -> torch.Tensor:
        return self.weight


CORRECTED = (CorrectedLinear, CorrectedBasisLinear)


def shared_members(model: nn.Module) -> list[str]:
    """Node names (``<module>.weight``) that a correction makes sense on: every ``nn.Linear`` whose weight is the
    same Parameter as another module's (a tied class of two or more), and every ``SharedBasisLinear`` (each is
    compressed, also a class of one). Module order."""
    owners: dict[int, int] = {}
    for _, module in model.named_modules():
        if isinstance(module, nn.Linear):
            owners[id(module.weight)] = owners.get(id(module.weight), 0) + 1
    out = []
    for name, module in model.named_modules():
        if isinstance(module, SharedBasisLinear) or (isinstance(module, nn.Linear) and owners[id(module.weight)] > 1):
            out.append(f"{name}.weight" if name else "weight")
    return out


def add_corrections(model: nn.Module, members: list[str], rank: int, *, scale: float = 1.0,
                    generator: torch.Generator | None = None, empty: bool = False) -> dict:
    """Give every member (``<module>.weight`` of an ``nn.Linear`` or ``SharedBasisLinear``) its own rank-``rank``
    correction, in place. Returns the tie map's ``corrections`` record."""
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise InputError(f"correction rank must be a positive integer, got {rank!r}")
    for name in members:
        mod_name, _, attr = name.rpartition(".")
        module = model.get_submodule(mod_name) if mod_name else model
        if attr != "weight":
            raise InputError(f"a low-rank correction needs a layer weight; {name!r} is not one")
        if isinstance(module, CORRECTED):
            raise InputError(f"{mod_name!r} already has a low-rank correction")
        side = min(getattr(module, "out_features", rank), getattr(module, "in_features", rank))
        if rank > side:
            raise InputError(f"correction rank {rank} exceeds {side}, the smaller side of {name!r} (a correction "
                             "of that rank is already full rank)")
        if isinstance(module, SharedBasisLinear):
            a, b = _init_factors(module.out_features, module.in_features, rank, module.weight_in, generator, empty)
            new = CorrectedBasisLinear(module, a, b, scale)
        elif isinstance(module, nn.Linear):
            a, b = _init_factors(module.out_features, module.in_features, rank, module.weight, generator, empty)
            new = CorrectedLinear(module.weight, module.bias, a, b, scale)
        else:
            raise InputError(f"low-rank corrections apply to nn.Linear layers; {name!r} belongs to a "
                             f"{type(module).__name__}")
        replace_module(model, mod_name, new)
    return {"method": "lora", "rank": rank, "scale": float(scale), "members": list(members)}


def corrections_of(model: nn.Module) -> dict | None:
    """The ``corrections`` record describing the corrected modules of ``model`` (None when it has none)."""
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, CORRECTED)]
    if not found:
        return None
    ranks = {m.rank if isinstance(m, CorrectedLinear) else m.lora_A.shape[0] for _, m in found}
    scales = {m.scale for _, m in found}
    if len(ranks) != 1 or len(scales) != 1:
        raise InputError("the model's low-rank corrections differ in rank or scale; the tie map records one of each")
    return {"method": "lora", "rank": ranks.pop(), "scale": scales.pop(),
            "members": [f"{name}.weight" if name else "weight" for name, _ in found]}


def correction_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for m in model.modules() if isinstance(m, CORRECTED) for p in (m.lora_A, m.lora_B)]
