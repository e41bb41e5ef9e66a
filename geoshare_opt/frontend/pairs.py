"""Pair weights: the predicted cost of two same-type tensors sharing storage, for every same-type pair, in batched
tensor operations (the loop runs over the first member of a pair only; all partners are one tensor operation).

``tie`` (both members replaced by one merged tensor; the move is δ = (w̄ − w_i, w̄ − w_j)):
- diag: merge to the curvature-weighted mean ``w̄ = (h_i w_i + h_j w_j)/(h_i + h_j)``, cost
  ``½ Σ_p h_ip h_jp/(h_ip + h_jp) (w_ip − w_jp)²`` (+ ``g·δ`` where the pass measured the gradient and, with
  per-example gradients, found it significant: see ``_significant``);
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
The computation (no matrix square roots, per-node products cached, the smaller Gram side) is in ``basis_pairs``.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .discovery import NodeInfo, group_by_type
from .basis_pairs import basis_rank, basis_weights, damped, tail_energy  # noqa: F401 (re-exported)
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
        g = torch.stack([_significant(curv, n).float().reshape(-1) for n in names]) \
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


GRADIENT_SNR = 4.0   # keep a layer's mean gradient when n‖g‖² exceeds 4× its noise level (about 2 standard errors)


def first_order_layers(nodes: Sequence[NodeInfo], curv: Curvature, first_order: bool = True) -> list[str]:
    """The nodes whose ``g·δ`` term enters the tie weights: asked for, measured by the estimator, significant (see
    ``_significant``) and not identically zero (at the original weights of a distillation loss it is exactly 0)."""
    if not first_order or curv.grad is None:
        return []
    return [n.name for n in nodes if bool(_significant(curv, n.name).any())]


def _significant(curv: Curvature, name: str) -> torch.Tensor:
    """The layer's mean gradient where it is signal, else zeros. ``g·δ`` belongs in the model only away from a
    stationary point; where the estimator measured per-example gradients (``stats["gradient_snr"]``) a layer whose
    mean gradient is within noise gets none: with the whole-tensor moves of sharing, ``g·δ`` of a noise gradient is
    a large random term (on digits-mlp it ruined the ranking of pair damage, benchmarks/frontend/README.md)."""
    g = curv.grad[name]
    snr = curv.stats.get("gradient_snr", {}).get(name)
    return g if snr is None or snr >= GRADIENT_SNR else torch.zeros_like(g)


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
