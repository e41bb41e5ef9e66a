"""Shared low-rank bases: the members of a class share one basis and keep their own small coefficient matrices.

Notation for one ``nn.Linear`` with ``y = W x`` (W is d_out × d_in) and input covariance ``G_l = E[x xᵀ]``
(d_in × d_in, the sidecar's ``in_cov/<name>``). The output error of replacing W_l by Ŵ_l is
``tr((W_l − Ŵ_l) G_l (W_l − Ŵ_l)ᵀ) = ‖(W_l − Ŵ_l) S_l‖²`` with ``S_l S_lᵀ = G_l`` (Cholesky): whitening sits on the
**input side**, to the right of W. Two places for the shared basis:

* ``side="in"`` (Basis Sharing, arXiv 2410.03765, transposed to torch's convention): ``W_l ≈ D_l V`` with the shared
  basis V (r × d_in) and per-member coefficients D_l (d_out × r). V comes from the SVD of the members stacked
  (Basis Sharing's "side by side" in its x·W convention) and whitened by the Cholesky factor S of the summed
  covariance ``G = Σ G_l``: ``[W_1 S; …; W_n S] = P Σ Qᵀ``, ``V = Q_rᵀ S⁻¹`` (un-whitened). Each member's
  coefficients are then refit against its **own** covariance in closed form,
  ``D_l = W_l G_l Vᵀ (V G_l Vᵀ)⁻¹`` (Basis Sharing's ``C_l = (Uᵀ G U)⁻¹ Uᵀ G W_l``, transposed).
  Stored: ``r·d_in + n·d_out·r``.
* ``side="out"``: ``W_l ≈ U C_l`` with the shared basis U (d_out × r) and coefficients C_l (r × d_in). Here every
  member can be whitened by its own S_l and the problem is still one SVD:
  ``min_U Σ_l ‖(I − UUᵀ) W_l S_l‖²`` is solved by the top left singular vectors of ``[W_1 S_1, …, W_n S_n]``, and
  the best coefficients for an orthonormal U are ``C_l = Uᵀ W_l`` whatever G_l is (the refit is exact).
  Stored: ``d_out·r + n·r·d_in``.

``side="auto"`` puts the basis on the larger dimension (it is stored once; coefficients n times): ``in`` for square
matrices and for d_in > d_out, ``out`` otherwise. Rank from a compression target CR per class (Basis Sharing):
``r = ⌊(1 − CR) · n · d_out · d_in / (D_shared + n · D_coef)⌋``. A single-member class is per-layer low rank with
whitening (SVD-LLM); at full rank every member is reproduced exactly.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .common import owner


class SharedBasisLinear(nn.Module):
    """``y = weight_out @ (weight_in @ x) + bias``; one of the two factors is a Parameter shared by identity with
    the other members of the class (``shared`` names which)."""

    def __init__(self, weight_in: nn.Parameter, weight_out: nn.Parameter, bias: nn.Parameter | None,
                 shared: str):
        super().__init__()
        if shared not in ("weight_in", "weight_out"):
            raise ValueError(f"shared must be 'weight_in' or 'weight_out', got {shared!r}")
        self.weight_in = weight_in
        self.weight_out = weight_out
        self.bias = bias
        self.shared = shared
        self.in_features = weight_in.shape[1]
        self.out_features = weight_out.shape[0]
        self.rank = weight_in.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.linear(x, self.weight_in), self.weight_out, self.bias)

    @property
    def weight(self) -> torch.Tensor:
        """The dense equivalent (for code that reads ``.weight``); not stored."""
        return self.weight_out @ self.weight_in

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, "
                f"shared={self.shared}, bias={self.bias is not None}")


def choose_side(side: str, d_out: int, d_in: int) -> str:
    if side == "auto":
        return "in" if d_in >= d_out else "out"
    if side not in ("in", "out"):
        raise InputError(f"basis side must be 'in', 'out' or 'auto', got {side!r}")
    return side


def max_rank(side: str, n: int, d_out: int, d_in: int) -> int:
    return min(d_in, n * d_out) if side == "in" else min(d_out, n * d_in)


def stored(side: str, n: int, d_out: int, d_in: int, rank: int) -> int:
    return rank * (d_in + n * d_out) if side == "in" else rank * (d_out + n * d_in)


def rank_for_ratio(side: str, n: int, d_out: int, d_in: int, ratio: float) -> int:
    """Basis Sharing's rank for compression ``ratio`` of the class's parameters (at least 1)."""
    per_rank = (d_in + n * d_out) if side == "in" else (d_out + n * d_in)
    r = math.floor((1.0 - ratio) * n * d_out * d_in / per_rank)
    return max(1, min(r, max_rank(side, n, d_out, d_in)))


def class_rank(rank: int | str | None, ratio: float | None, side: str, n: int, d_out: int, d_in: int) -> int:
    """The rank of a class of ``n`` members: ``rank`` (an int, capped at the full rank, or ``"full"``), else Basis
    Sharing's rank for compression ``ratio``."""
    if rank == "full":
        return max_rank(side, n, d_out, d_in)
    if rank is not None:
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise InputError(f"rank must be a positive integer or 'full', got {rank!r}")
        return min(rank, max_rank(side, n, d_out, d_in))
    return rank_for_ratio(side, n, d_out, d_in, ratio)


def _cholesky(G: torch.Tensor) -> torch.Tensor:
    """Lower Cholesky factor of a covariance, with the smallest damping that makes it positive definite."""
    G = 0.5 * (G + G.T)
    d = G.shape[0]
    scale = float(torch.diagonal(G).abs().mean()) or 1.0
    eye = torch.eye(d, dtype=G.dtype)
    for damp in (0.0, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2):
        L, info = torch.linalg.cholesky_ex(G + damp * scale * eye)
        if int(info) == 0:
            return L
    raise InputError("an input covariance is not positive semi-definite (Cholesky failed even with damping)")


def factor_class(weights: list[torch.Tensor], covs: list[torch.Tensor], rank: int, side: str):
    """(shared factor, [per-member factor]) in float64 for one class (see the module docstring)."""
    W = [w.detach().to(torch.float64).cpu() for w in weights]
    G = [g.detach().to(torch.float64).cpu() for g in covs]
    if side == "in":
        S = _cholesky(sum(G))
        _, _, Vh = torch.linalg.svd(torch.cat([w @ S for w in W], dim=0), full_matrices=False)
        V = torch.linalg.solve_triangular(S, Vh[:rank], upper=False, left=False)   # Q_rᵀ S⁻¹
        coefs = []
        for w, g in zip(W, G):
            A = V @ g @ V.T
            B = w @ g @ V.T
            ridge = 1e-12 * (float(torch.trace(A)) / rank or 1.0)
            coefs.append(torch.linalg.solve(A + ridge * torch.eye(rank, dtype=A.dtype), B.T).T)
        return V, coefs
    Ss = [_cholesky(g) for g in G]
    U, _, _ = torch.linalg.svd(torch.cat([w @ s for w, s in zip(W, Ss)], dim=1), full_matrices=False)
    U = U[:, :rank]
    return U, [U.T @ w for w in W]


def swap_class(model, members: list[str], covs: list[torch.Tensor], rank: int, side: str) -> dict:
    """Replace the ``nn.Linear`` of every member by a ``SharedBasisLinear`` sharing one basis (in place)."""
    linears = []
    for name in members:
        mod_name = name.rpartition(".")[0]
        module, attr = owner(model, name)
        if attr != "weight" or not isinstance(module, nn.Linear):
            raise InputError(f"basis mode shares nn.Linear weights only; {name!r} belongs to a "
                             f"{type(module).__name__} (use --mode tie)")
        linears.append((mod_name, module))
    for name, (_, module), cov in zip(members, linears, covs):   # nothing non-finite reaches LAPACK
        if not bool(torch.isfinite(cov).all()):
            raise InputError(f"the input covariance of {name!r} is not finite (overflowing activations?)")
        if not bool(torch.isfinite(module.weight).all()):
            raise InputError(f"the weight {name!r} is not finite")
    w0 = linears[0][1].weight
    d_out, d_in = w0.shape
    shared, coefs = factor_class([m.weight for _, m in linears], covs, rank, side)
    dtype, device = w0.dtype, w0.device
    basis = nn.Parameter(shared.to(dtype=dtype, device=device).contiguous(), requires_grad=w0.requires_grad)
    for (mod_name, module), c in zip(linears, coefs):
        coef = nn.Parameter(c.to(dtype=dtype, device=device).contiguous(), requires_grad=w0.requires_grad)
        if side == "in":
            new = SharedBasisLinear(basis, coef, module.bias, "weight_in")
        else:
            new = SharedBasisLinear(coef, basis, module.bias, "weight_out")
        replace_module(model, mod_name, new)
    return {"members": members, "side": side, "rank": rank, "shape": [d_out, d_in],
            "stored": stored(side, len(members), d_out, d_in, rank)}


def replace_module(model, name: str, new: nn.Module) -> None:
    parent, child = owner(model, name)
    setattr(parent, child, new)


def skeleton_class(model, record: dict) -> None:
    """Rebuild a class's modules with uninitialised factors of the recorded shapes and ties (for loading)."""
    members, side, rank = record["members"], record["side"], int(record["rank"])
    d_out, d_in = record["shape"]
    basis_shape = (rank, d_in) if side == "in" else (d_out, rank)
    coef_shape = (d_out, rank) if side == "in" else (rank, d_in)
    basis = None
    for name in members:
        mod_name = name.rpartition(".")[0]
        module, attr = owner(model, name)
        if attr != "weight" or not isinstance(module, nn.Linear) or list(module.weight.shape) != [d_out, d_in]:
            raise InputError(f"tie map: {name!r} is not an nn.Linear weight of shape {[d_out, d_in]} in this model")
        w = module.weight
        if basis is None:
            basis = nn.Parameter(torch.empty(basis_shape, dtype=w.dtype, device=w.device))
        coef = nn.Parameter(torch.empty(coef_shape, dtype=w.dtype, device=w.device))
        new = (SharedBasisLinear(basis, coef, module.bias, "weight_in") if side == "in"
               else SharedBasisLinear(coef, basis, module.bias, "weight_out"))
        replace_module(model, mod_name, new)
