"""Low-rank eigen-subspace curvature (the Geo-Sharing rule): the top eigenpairs of the Hessian over the candidate
tensors by Lanczos with full re-orthogonalisation on Hessian-vector products, plus one scalar ``λ_rest`` for the
rest of the spectrum. The model is ``H ≈ Σ_k λ_k q_k q_kᵀ + λ_rest (I − QQᵀ)``.

Each Lanczos step is one Hessian-vector product over all the calibration data (double backward, batches streamed,
so memory is one batch's graph plus the ``m × D`` Lanczos basis). The start vector is a Rademacher vector ``ε/√D``,
so the first Rayleigh quotient times ``D`` is a Hutchinson estimate of ``tr H`` at no extra cost:
``λ_rest = (tr H − Σ λ_k) / (D − m)``. The spread is the relative standard deviation of the per-batch ``εᵀ H_b ε``.
The mean gradient comes free from the first pass (first-order term). At a stationary point of a distillation loss the
Hessian equals the Gauss-Newton matrix.
"""
from __future__ import annotations

import math

import torch

from ...errors import InputError
from ..runtime import call_user, checked_loss, math_attention, rademacher, relative_spread, translated_errors
from .common import Curvature, PassContext
from .diag import _grads, _hvp

DEFAULT_STEPS = 10


def estimate(ctx: PassContext, steps: int = DEFAULT_STEPS) -> Curvature:
    if int(steps) < 1:
        raise InputError(f"lanczos steps must be >= 1, got {steps}")
    params, names = ctx.params, [n.name for n in ctx.nodes]
    sizes = [p.numel() for p in params]
    D = sum(sizes)
    steps = min(int(steps), D)
    work = torch.float32 if ctx.dtype in (torch.float16, torch.bfloat16) else ctx.dtype

    def split(vec: torch.Tensor) -> list[torch.Tensor]:
        return [c.view_as(p).to(p.dtype) for c, p in zip(torch.split(vec, sizes), params)]

    first = {"quads": [], "grad": None}

    def hessian_times(v: torch.Tensor, record: bool) -> torch.Tensor:
        vs = split(v)
        out = torch.zeros(D, device=ctx.device, dtype=work)
        grad_sum = torch.zeros(D, device=ctx.device, dtype=work) if record else None
        total = 0
        for i, batch, n in ctx.calib:
            loss = checked_loss(call_user(ctx.spec.loss, ctx.model, batch, what="loss"), i)
            gs = _grads(loss, params, create_graph=True)
            hv = torch.cat([h.reshape(-1).to(work) for h in _hvp(gs, params, vs)])
            out.add_(hv, alpha=float(n))
            if record:
                first["quads"].append(float(hv @ v) * D)
                grad_sum.add_(torch.cat([g.detach().reshape(-1).to(work) for g in gs]), alpha=float(n))
            total += n
        if record:
            first["grad"] = grad_sum / total
        return out / total

    V = torch.empty(steps + 1, D, device=ctx.device, dtype=work)
    alpha, beta = [], []
    with torch.enable_grad(), translated_errors("lanczos", ctx.device, "--samples, the batch size / --seq-len or "
                                                "--lanczos-steps"), math_attention():
        ctx.report("lanczos", 0, steps)
        V[0] = rademacher((D,), ctx.generator, ctx.device, work) / math.sqrt(D)
        for j in range(steps):
            w = hessian_times(V[j], record=(j == 0))
            if not bool(torch.isfinite(w).all()):
                bad = _first_bad(split(w), names)
                raise InputError(f"the Hessian-vector product is not finite at {bad!r}")
            a = float(w @ V[j])
            alpha.append(a)
            w = w - a * V[j] - (beta[-1] * V[j - 1] if j > 0 else 0)
            for _ in range(2):  # full re-orthogonalisation, twice is enough
                w = w - V[:j + 1].T @ (V[:j + 1] @ w)
            b = float(w.norm())
            ctx.report("lanczos", j + 1, steps)
            if j + 1 == steps or b <= 1e-10 * max(abs(a), 1e-30):
                break
            beta.append(b)
            V[j + 1] = w / b
    k = len(alpha)
    T = torch.diag(torch.tensor(alpha, dtype=torch.float64))
    if k > 1:
        off = torch.tensor(beta[:k - 1], dtype=torch.float64)
        T += torch.diag(off, 1) + torch.diag(off, -1)
    theta, S = torch.linalg.eigh(T)
    order = torch.argsort(theta, descending=True)
    theta, S = theta[order], S[:, order]
    Q = S.T.to(work).to(ctx.device) @ V[:k]                       # (k, D) Ritz vectors, orthonormal
    del V
    trace = alpha[0] * D                                          # Hutchinson, one Rademacher probe
    rest_raw = (trace - float(theta.sum())) / (D - k) if D > k else 0.0
    lam_rest = max(rest_raw, 0.0)
    lam = theta.to(work).to(ctx.device)
    diag_flat = ((lam - lam_rest).unsqueeze(1) * Q.square()).sum(0) + lam_rest
    diag = {n: d.float().clamp_min(0) for n, d in zip(names, split(diag_flat))}
    grad = {n: g.float() for n, g in zip(names, split(first["grad"]))}
    stats = {"eigenvalues": [float(t) for t in theta], "trace_estimate": trace, "lam_rest_raw": rest_raw,
             "steps_run": k, "dimension": D}
    return Curvature(estimator="lanczos", method="hessian", diag=diag, grad=grad, samples=ctx.calib.n_examples,
                     batches=ctx.calib.n_batches, spread=relative_spread(first["quads"]), eigvals=lam.float(),
                     eigvecs=Q, lam_rest=lam_rest, stats=stats)


def _first_bad(parts, names) -> str:
    for p, n in zip(parts, names):
        if not bool(torch.isfinite(p).all()):
            return n
    return names[0]
