"""K-FAC: per linear layer, the input-activation covariance ``G = E[x xᵀ]`` (per token) and the output-gradient
covariance ``B`` (summed over the tokens of a batch, averaged over batches), so that the layer's curvature is
``G ⊗ B`` and a perturbation ``Δ`` costs ``½ tr(Δ G Δᵀ B)``.

The output gradients are those of the diagonal estimator's backward pass (Monte-Carlo Gauss-Newton ``r`` when the spec
gives ``outputs``/``output_loss``, else the loss gradient scaled like the empirical Fisher), gathered by hooks that
this module owns and removes. The element-wise curvature written to the sidecar is ``diag(B) diag(G)ᵀ``.
"""
from __future__ import annotations

import torch

from ...errors import InputError
from ..hooks import LinearCovariances
from .common import Curvature, PassContext
from .diag import curvature_pass, resolve_method


def estimate(ctx: PassContext, method: str = "auto") -> Curvature:
    method = resolve_method(method, ctx.spec)
    if method == "hutchinson":
        raise InputError("kfac takes its output gradients from a backward pass: use diag method ggn or empirical")
    with LinearCovariances(ctx.model, ctx.nodes, inputs=True, output_grads=True, why="kfac") as hooks:
        curv = curvature_pass(ctx, method, "kfac", hooks=hooks)
        in_cov = hooks.input_covariances()
        out_cov = {n: b / curv.samples for n, b in hooks.B.items()}
    missing = [n.name for n in ctx.nodes if n.name not in in_cov or n.name not in out_cov]
    if missing:
        raise InputError(f"kfac: layer {missing[0]!r} was not reached by the loss's forward/backward pass")
    diag = {}
    for n in ctx.nodes:
        G, B = in_cov[n.name], out_cov[n.name]
        if not (bool(torch.isfinite(G).all()) and bool(torch.isfinite(B).all())):
            raise InputError(f"the K-FAC factors of {n.name!r} are not finite")
        diag[n.name] = torch.outer(B.diagonal(), G.diagonal()).clamp_min(0)
    curv.stats["mc_diag_total"] = float(sum(float(d.sum()) for d in curv.diag.values()))
    return Curvature(estimator="kfac", method=method, diag=diag, grad=curv.grad, in_cov=in_cov, out_cov=out_cov,
                     samples=curv.samples, batches=curv.batches, spread=curv.spread, stats=curv.stats)
