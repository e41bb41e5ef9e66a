"""What the estimators share: the pass context, the curvature they return, and the output-space sampler behind the
Monte-Carlo Gauss-Newton diagonal.

Gauss-Newton / Fisher curvature at the model outputs ``z``: ``GGN = Jᵀ H_z J`` with ``H_z`` the Hessian of
``output_loss`` in ``z``. For a random ``r`` with ``E[r rᵀ] = H_z``, ``E[(Jᵀr)²] = diag(GGN)``: one backward per batch.
``r`` is built from ``H_z`` probed in output space (cheap: no network pass):
- diagonal ``H_z`` (MSE, masked MSE): ``r = sqrt(diag H_z) ⊙ ε``, ε Rademacher;
- softmax cross-entropy over the last dimension (checked on two probes): labels drawn from the model's own softmax,
  ``r = √c (p − onehot(y))``, for any number of classes;
- per-example blocks of width ≤ 512 (cross-entropy over classes, a loss on pooled embeddings): each example's block
  is read with one probe per output unit, then ``r = V Λ^½ ε``;
- anything else: ``E[(Jᵀε) ⊙ (Jᵀ H_z ε)] = diag(GGN)``, unbiased but two backward passes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from ...errors import InputError
from ..discovery import NodeInfo
from ..parallel import Shard
from ..runtime import Calibration, make_generator, rademacher

MAX_BLOCK = 512


@dataclass
class PassContext:
    model: torch.nn.Module
    spec: Any
    calib: Calibration
    nodes: Sequence[NodeInfo]
    params: list[torch.Tensor]           # node tensors of the working model, in node order
    device: torch.device
    dtype: torch.dtype
    seed: int = 0
    progress: Callable[[dict], None] | None = None

    @property
    def shard(self) -> Shard:
        """This process's share of a data-parallel pass (``parallel.SERIAL`` in a single process)."""
        return self.calib.shard

    def stream(self, *key) -> torch.Generator:
        """The random stream of ``key``: ``stream()`` for draws made once per pass (the same on every rank),
        ``stream("noise", i)`` / ``stream("probe", i)`` for batch ``i``'s draws (the same whichever rank takes it)."""
        return make_generator(self.device, self.seed, *key)

    def report(self, step: str, done: int, total: int | None = None) -> None:
        if self.progress is not None:
            self.progress({"step": step, "done": done, "total": total})


@dataclass
class Curvature:
    """An estimator's answer. ``diag`` (always, non-negative float32) per node; ``grad`` the mean loss gradient when
    the pass computed it (first-order term); ``in_cov``/``out_cov`` the K-FAC factors; ``eigvals``/``eigvecs``
    (``m``, and ``m × D`` over the concatenated node tensors) and ``lam_rest`` for the low-rank model."""
    estimator: str
    method: str
    diag: dict[str, torch.Tensor]
    samples: int
    batches: int
    spread: float
    grad: dict[str, torch.Tensor] | None = None
    in_cov: dict[str, torch.Tensor] | None = None
    out_cov: dict[str, torch.Tensor] | None = None
    eigvals: torch.Tensor | None = None
    eigvecs: torch.Tensor | None = None
    lam_rest: float | None = None
    stats: dict = field(default_factory=dict)


class OutputSampler:
    """Draws ``r`` with ``E[r rᵀ] = H_z`` (see the module docstring); ``kind`` says which construction applied."""

    def __init__(self, output_loss: Callable):
        self.output_loss = output_loss
        self.kind: str | None = None
        self.last_loss: torch.Tensor | None = None   # the output loss of the last sampled batch

    def _hvp_fn(self, z: torch.Tensor, batch: Any):
        from ..runtime import call_user
        zd = z.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = call_user(self.output_loss, zd, batch, what="output_loss")
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise InputError("spec output_loss must return a scalar tensor")
            self.last_loss = loss.detach()
            (g,) = torch.autograd.grad(loss, zd, create_graph=True)
        if not g.requires_grad:  # linear in the outputs: no curvature
            return None

        def hvp(v: torch.Tensor, batched: bool = False) -> torch.Tensor:
            (hv,) = torch.autograd.grad(g, zd, grad_outputs=v, retain_graph=True, is_grads_batched=batched)
            return hv.detach()
        return hvp

    def sample(self, z: torch.Tensor, batch: Any, probes: torch.Generator,
               noise: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(r, None)`` for one backward, or ``(ε, H_z ε)`` for the two-backward estimator. The construction is
        chosen on the first batch (with checks) and reused, checked more cheaply, on the others. ``probes`` feeds the
        vectors that read ``H_z`` (the checks and the diagonal/scale probe: each construction's first draw, so a batch
        reads the same whether or not the checks ran on it), ``noise`` the randomness of ``r`` itself."""
        hvp = self._hvp_fn(z, batch)
        zf = z.detach()
        eps = lambda gen: rademacher(zf.shape, gen, zf.device, zf.dtype)
        if hvp is None:
            self.kind = self.kind or "zero"
            return torch.zeros_like(zf), None
        if self.kind in (None, "diagonal", "softmax"):
            e1 = eps(probes)
            h1 = hvp(e1)
            if self.kind == "diagonal":
                return (h1 * e1).clamp_min(0).sqrt() * eps(noise), None
            if self.kind == "softmax":
                return self._softmax_sample(zf, self._softmax_scale(zf, e1, h1), noise), None
            d = h1 * e1
            e2 = eps(probes)
            h2 = hvp(e2)
            scale = d.abs().max().clamp_min(torch.finfo(d.dtype).tiny)
            if torch.allclose(h2, d * e2, rtol=1e-4, atol=1e-5 * float(scale)):
                self.kind = "diagonal"
                return d.clamp_min(0).sqrt() * eps(noise), None
            c = self._softmax_scale(zf, e1, h1)
            if c > 0 and torch.allclose(h2, (c * self._softmax_times(zf, e2)).to(h2.dtype), rtol=1e-3,
                                        atol=1e-5 * float(h2.abs().max())):
                self.kind = "softmax"
                return self._softmax_sample(zf, c, noise), None
        if self.kind in (None, "per-example blocks") and zf.dim() == 2 and zf.shape[1] <= MAX_BLOCK:
            blocks = self._blocks(hvp, zf)
            if self.kind is None:
                probe = torch.randn(zf.shape, generator=probes, device=zf.device, dtype=zf.dtype)
                if torch.allclose(hvp(probe), torch.einsum("scd,sd->sc", blocks, probe), rtol=1e-3,
                                  atol=1e-5 * float(blocks.abs().max())):
                    self.kind = "per-example blocks"
            if self.kind == "per-example blocks":
                lam, vec = torch.linalg.eigh(blocks.double())
                root = vec * lam.clamp_min(0).sqrt().unsqueeze(1)        # V Λ^½ per example
                return torch.einsum("scd,sd->sc", root, eps(noise).double()).to(zf.dtype), None
        self.kind = "two-backward"
        e = eps(noise)
        return e, hvp(e)

    @staticmethod
    def _softmax_times(z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``(diag(p) − p pᵀ) v`` over the last dimension, p = softmax(z): the Hessian of cross-entropy."""
        p = torch.softmax(z.double(), dim=-1)
        v = v.double()
        return p * v - p * (p * v).sum(-1, keepdim=True)

    def _softmax_scale(self, z: torch.Tensor, e: torch.Tensor, he: torch.Tensor) -> float:
        """The loss's factor on the softmax Hessian (1/examples for a mean), fitted on one probe."""
        u = self._softmax_times(z, e)
        return float((he.double() * u).sum() / (u * u).sum().clamp_min(1e-300))

    @staticmethod
    def _softmax_sample(z: torch.Tensor, c: float, noise: torch.Generator) -> torch.Tensor:
        """``√c (p − onehot(y))`` with labels y drawn from the model's own softmax: ``E[r rᵀ] = c (diag p − p pᵀ)``."""
        p = torch.softmax(z.double(), dim=-1).reshape(-1, z.shape[-1])
        y = torch.multinomial(p, 1, generator=noise).squeeze(1)
        r = p.clone()
        r[torch.arange(len(y), device=r.device), y] -= 1
        return (math.sqrt(max(c, 0.0)) * r).reshape(z.shape).to(z.dtype)

    @staticmethod
    def _blocks(hvp, z: torch.Tensor) -> torch.Tensor:
        """Per-example ``C × C`` Hessian blocks, assuming the loss does not couple examples (checked by the caller):
        probing with the j-th unit vector of every example at once gives column j of every block."""
        s, c = z.shape
        probes = torch.zeros(c, s, c, dtype=z.dtype, device=z.device)
        probes[torch.arange(c), :, torch.arange(c)] = 1
        try:
            cols = hvp(probes, batched=True)                   # (C, S, C), one vectorised backward
        except RuntimeError:                                   # an op without a batching rule: one probe at a time
            cols = torch.stack([hvp(p) for p in probes])
        return cols.permute(1, 2, 0)                           # (S, C, C): [s, :, j] = column j
