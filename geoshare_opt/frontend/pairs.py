"""Pair weights: the predicted cost of two same-type tensors sharing storage, for every same-type pair, in batched
tensor operations (the loop runs over the first member of a pair only; all partners are one tensor operation).

``tie`` (both members replaced by one merged tensor; the move is δ = (w̄ − w_i, w̄ − w_j)):
- diag: merge to the curvature-weighted mean ``w̄ = (h_i w_i + h_j w_j)/(h_i + h_j)``, cost
  ``½ Σ_p h_ip h_jp/(h_ip + h_jp) (w_ip − w_jp)²`` (+ ``g·δ`` where the pass measured the gradient);
- kfac: the same merge (with the K-FAC diagonal ``diag(B) diag(G)ᵀ``), cost under the full Kronecker model
  ``½ Σ_{l∈{i,j}} tr(Δ_l G_l Δ_lᵀ B_l)`` (+ ``g·δ`` with the empirical method);
- lanczos: merge to the plain mean, ``δ = ±(w_j − w_i)/2``, cost ``½[Σ_k λ_k (q_k·δ)² + λ_rest (‖δ‖² − ‖Qᵀδ‖²)]``
  + ``g·δ``, where ``q_k·δ = ½ (q_k[i] − q_k[j])·(w_j − w_i)`` needs only the block inner products ``q_k[i]·w_j``.
Where both curvatures of an entry are 0 the weighted mean falls back to the plain mean.

``basis`` (the pair keeps its own coefficients on one shared rank-k input-side basis, Basis Sharing style): the extra
whitened reconstruction error ``Σ_l tr(Δ_l G_l Δ_lᵀ)`` of the shared basis over separate per-layer bases with the same
stored parameters. The shared basis is the top-k right singular subspace of ``[W_i; W_j] Ḡ^½`` with
``Ḡ = (G_i + G_j)/2``; each member's coefficients are then refit against its own covariance (closed form). For
``d_out × d_in`` members, sharing rank k stores ``k (d_in + 2 d_out)``; separate bases at that count have rank
``k (d_in + 2 d_out) / (2 (d_in + d_out))`` each (fractional ranks interpolate the SVD tail). ``k`` comes from
``rank`` or from ``ratio`` as ``⌊(1 − ratio) · 2 d_out d_in / (d_in + 2 d_out)⌋`` (materialize.md's rule for n = 2).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from ..errors import InputError
from .discovery import NodeInfo, group_by_type
from .estimators.common import Curvature

CHUNK_BYTES = 1 << 28   # bound on the temporary memory of one batched step


def _delta_factors(hi: torch.Tensor, hj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shares of the distance each member moves toward the curvature-weighted mean (½ each where both are 0)."""
    s = hi + hj
    zero = s <= 0
    safe = torch.where(zero, torch.ones_like(s), s)
    fi = torch.where(zero, torch.full_like(s, 0.5), hj / safe)     # w̄ − w_i = fi (w_j − w_i)
    fj = torch.where(zero, torch.full_like(s, 0.5), hi / safe)     # w̄ − w_j = fj (w_i − w_j)
    return fi, fj


def tie_weights(nodes: Sequence[NodeInfo], weights: dict[str, torch.Tensor], curv: Curvature,
                first_order: bool = True) -> list[tuple[str, str, float]]:
    """``(u, v, w)`` for every same-type pair, in type order then member order."""
    edges: list[tuple[str, str, float]] = []
    offsets = _offsets(nodes) if curv.estimator == "lanczos" else None
    for _, idx in group_by_type(nodes).items():
        names = [nodes[i].name for i in idx]
        W = torch.stack([weights[n].float().reshape(-1) for n in names])              # (n, P)
        g = torch.stack([curv.grad[n].float().reshape(-1) for n in names]) \
            if (first_order and curv.grad is not None) else None
        if curv.estimator == "lanczos":
            cost = _lanczos_tie(W, g, curv, [offsets[i] for i in idx])
        else:
            H = torch.stack([curv.diag[n].float().reshape(-1) for n in names])
            kron = None
            if curv.estimator == "kfac":
                kron = ([curv.in_cov[n].float() for n in names], [curv.out_cov[n].float() for n in names],
                        nodes[idx[0]].shape)
            cost = _weighted_tie(W, H, g, kron)
        n = len(idx)
        for a in range(n):
            for b in range(a + 1, n):
                edges.append((names[a], names[b], float(cost[a, b])))
    return edges


def _weighted_tie(W, H, g, kron) -> torch.Tensor:
    n, P = W.shape
    cost = torch.zeros(n, n, dtype=torch.float64)
    step = max(1, CHUNK_BYTES // max(P * 4 * 4, 1))
    tiny = torch.finfo(H.dtype).tiny
    for i in range(n - 1):
        for lo in range(i + 1, n, step):
            hi_ = min(n, lo + step)
            d = W[lo:hi_] - W[i]                                       # w_j − w_i
            Hj = H[lo:hi_]
            s = (Hj + H[i]).clamp_min_(tiny)
            if kron is None:                                           # ½ Σ h_i h_j/(h_i + h_j) d²
                hm = (Hj * H[i]).div_(s)
                c = 0.5 * (hm.mul_(d).mul_(d)).sum(1, dtype=torch.float64)
            if kron is not None or g is not None:
                both_flat = (Hj + H[i]) <= 0
                fi = torch.where(both_flat, 0.5, Hj / s)               # w̄ − w_i = fi (w_j − w_i)
                fj = torch.where(both_flat, 0.5, H[i] / s)             # w̄ − w_j = fj (w_i − w_j)
            if kron is not None:
                Gs, Bs, (d_out, d_in) = kron
                di = (fi * d).reshape(-1, d_out, d_in)                 # Δ_i = w̄ − w_i
                dj = (-fj * d).reshape(-1, d_out, d_in)                # Δ_j = w̄ − w_j
                c = 0.5 * (_kron_quad(di, Gs[i], Bs[i])
                           + _kron_quad(dj, torch.stack(Gs[lo:hi_]), torch.stack(Bs[lo:hi_])))
            if g is not None:
                c = c + ((g[i] * fi * d).sum(1, dtype=torch.float64)
                         - (g[lo:hi_] * fj * d).sum(1, dtype=torch.float64))
            cost[i, lo:hi_] = c
    return cost + cost.T


def _kron_quad(delta: torch.Tensor, G: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``tr(Δ G Δᵀ B)`` for a stack of Δ (``G``, ``B`` single or stacked)."""
    return ((B @ delta) * (delta @ G)).sum((1, 2), dtype=torch.float64)


def _offsets(nodes: Sequence[NodeInfo]) -> list[tuple[int, int]]:
    out, pos = [], 0
    for n in nodes:
        out.append((pos, pos + n.params))
        pos += n.params
    return out


def _lanczos_tie(W, g, curv: Curvature, spans) -> torch.Tensor:
    lam = curv.eigvals.double().cpu()
    lam_rest = float(curv.lam_rest or 0.0)
    Qt = torch.stack([curv.eigvecs[:, a:b].float() for a, b in spans], dim=1)       # (k, n, P)
    A = torch.einsum("kip,jp->kij", Qt, W.to(Qt.device)).double().cpu()              # q_k[i]·w_j
    c = 0.5 * (A - A.diagonal(dim1=1, dim2=2).unsqueeze(2) - A.diagonal(dim1=1, dim2=2).unsqueeze(1)
               + A.transpose(1, 2))                                                 # q_k·δ for the pair (i, j)
    gram = (W @ W.T).double().cpu()
    sq = gram.diagonal().unsqueeze(1) + gram.diagonal().unsqueeze(0) - 2 * gram     # ‖w_i − w_j‖²
    proj = c.square().sum(0)
    cost = 0.5 * ((lam.view(-1, 1, 1) * c.square()).sum(0) + lam_rest * (0.5 * sq - proj))
    if g is not None:
        Gw = (g.to(W.device) @ W.T).double().cpu()                                   # g[i]·w_j
        cost = cost + 0.5 * (Gw - Gw.diagonal().unsqueeze(1) - Gw.diagonal().unsqueeze(0) + Gw.T)
    cost.fill_diagonal_(0)
    return cost


# ---------------------------------------------------------------------- shared basis
def basis_rank(shape: tuple[int, int], rank: int | None, ratio: float | None) -> int:
    d_out, d_in = shape
    if rank is not None:
        k = int(rank)
    elif ratio is not None:
        k = math.floor((1 - ratio) * 2 * d_out * d_in / (d_in + 2 * d_out))
    else:
        raise InputError("mode 'basis' needs a rank (--rank) or a compression ratio (--ratio)")
    return max(1, min(k, d_in, 2 * d_out))


def _psd_sqrt(G: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric square root and pseudo-inverse square root of (stacked) PSD matrices."""
    lam, vec = torch.linalg.eigh(G)
    lam = lam.clamp_min(0)
    root = lam.sqrt()
    floor = root.amax(-1, keepdim=True) * 1e-6
    inv = torch.where(root > floor, 1.0 / torch.where(root > floor, root, torch.ones_like(root)),
                      torch.zeros_like(root))
    return (vec * root.unsqueeze(-2)) @ vec.transpose(-1, -2), (vec * inv.unsqueeze(-2)) @ vec.transpose(-1, -2)


def damped(G: torch.Tensor) -> torch.Tensor:
    """A tiny ridge so that whitening is defined when fewer tokens than inputs were seen."""
    d = G.shape[-1]
    eps = 1e-6 * G.diagonal(dim1=-2, dim2=-1).sum(-1).clamp_min(1e-30) / d
    return G + eps.unsqueeze(-1).unsqueeze(-1) * torch.eye(d, dtype=G.dtype, device=G.device)


def tail_energy(sq_sv: torch.Tensor, r: float) -> float:
    """Squared singular values beyond (fractional) rank ``r``: linear between integer ranks."""
    r0 = int(math.floor(r))
    total = float(sq_sv[r0:].sum()) if r0 < len(sq_sv) else 0.0
    if r0 < len(sq_sv):
        total -= (r - r0) * float(sq_sv[r0])
    return total


def refit_error(W: torch.Tensor, G: torch.Tensor, Bas: torch.Tensor) -> torch.Tensor:
    """``min_C tr((W − C Basᵀ) G (W − C Basᵀ)ᵀ)`` for stacked W (…, d_out, d_in), G, Bas (…, d_in, k)."""
    A = G @ Bas
    M = Bas.transpose(-1, -2) @ A
    N = W @ A
    M = M + 1e-10 * M.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-30)[..., None, None] * torch.eye(
        M.shape[-1], dtype=M.dtype, device=M.device)
    X = torch.linalg.solve(M, N.transpose(-1, -2))                                # (…, k, d_out)
    full = ((W @ G) * W).sum((-1, -2))
    return full - (N * X.transpose(-1, -2)).sum((-1, -2))


def basis_weights(nodes: Sequence[NodeInfo], weights: dict[str, torch.Tensor], in_cov: dict[str, torch.Tensor],
                  rank: int | None = None, ratio: float | None = None) -> tuple[list[tuple[str, str, float]], dict]:
    """``(edges, ranks per type)``; see the module docstring."""
    edges: list[tuple[str, str, float]] = []
    ranks: dict[str, int] = {}
    for t, idx in group_by_type(nodes).items():
        names = [nodes[i].name for i in idx]
        d_out, d_in = nodes[idx[0]].shape
        k = basis_rank((d_out, d_in), rank, ratio)
        ranks[t] = k
        r_sep = k * (d_in + 2 * d_out) / (2 * (d_in + d_out))
        W = torch.stack([weights[n].double() for n in names])                        # (n, d_out, d_in)
        G = damped(torch.stack([in_cov[n].double().to(W.device) for n in names]))
        S, _ = _psd_sqrt(G)
        sep_sv = torch.linalg.svdvals(W @ S).square()                                # (n, min)
        sep = torch.tensor([tail_energy(sep_sv[a], r_sep) for a in range(len(idx))], dtype=torch.float64)
        pairs = [(a, b) for a in range(len(idx)) for b in range(a + 1, len(idx))]
        step = max(1, CHUNK_BYTES // max(8 * d_in * (4 * d_in + 4 * d_out), 1))
        for lo in range(0, len(pairs), step):
            chunk = pairs[lo:lo + step]
            ia = torch.tensor([a for a, _ in chunk])
            ib = torch.tensor([b for _, b in chunk])
            Gbar = 0.5 * (G[ia] + G[ib])
            Sb, Sb_inv = _psd_sqrt(Gbar)
            M = torch.cat([W[ia], W[ib]], dim=1) @ Sb                                 # (p, 2 d_out, d_in)
            _, vec = torch.linalg.eigh(M.transpose(-1, -2) @ M)                       # ascending
            Bas = Sb_inv @ vec[..., -k:]                                              # basis in input coordinates
            shared = refit_error(W[ia], G[ia], Bas) + refit_error(W[ib], G[ib], Bas)
            extra = shared.cpu() - sep[ia] - sep[ib]
            for (a, b), w in zip(chunk, extra.tolist()):
                edges.append((names[a], names[b], float(w)))
        # keep type order then member order, like tie_weights
    return edges, ranks
