"""Low-rank eigen-subspace curvature (the Geo-Sharing rule): the top eigenpairs of the Hessian over the candidate
tensors by Lanczos with full re-orthogonalisation on Hessian-vector products, plus one scalar ``λ_rest`` for the
rest of the spectrum. The model is ``H ≈ Σ_k λ_k q_k q_kᵀ + λ_rest (I − QQᵀ)``.

Each Lanczos step is one Hessian-vector product over all the calibration data. The first step builds each batch's
gradient graph (forward, then backward with ``create_graph``) and differentiates it again; the graphs of as many
batches as fit ``graph_budget`` bytes (default: half the memory available when the pass starts, see
``default_graph_budget``) are kept, so the later steps run only the double backward on them (on MiniLM's CPU path
about 2.7 forward+backward passes instead of 3.45); the other batches are recomputed at every step, streamed.
Memory is therefore bounded by the budget plus one batch's graph plus the ``m × D`` Lanczos basis, and the results
do not depend on the budget (the same operations run either way). A graph's size is the allocator's count on CUDA
and, on the CPU, the bytes of the tensors its nodes saved (``graph_bytes``; for a 32 × 128-token MiniLM batch 1.6 GB
counted against 2.1 GB of RSS growth, allocator slack and transient buffers being the rest: the default budget keeps
half the available memory free for that). The start vector is a Rademacher vector ``ε/√D``, so the first Rayleigh
quotient times ``D`` is a Hutchinson estimate of ``tr H`` at no extra cost:
``λ_rest = (tr H − Σ λ_k) / (D − m)``. The spread is the relative standard deviation of the per-batch ``εᵀ H_b ε``.
The mean gradient comes free from the first pass (first-order term). At a stationary point of a distillation loss the
Hessian equals the Gauss-Newton matrix.
"""
from __future__ import annotations

import math
import os

import torch

from ...errors import InputError
from ..runtime import call_user, checked_loss, math_attention, rademacher, relative_spread, translated_errors
from .common import Curvature, PassContext
from .diag import _grads, _hvp

DEFAULT_STEPS = 10
GRAPH_MEMORY_SHARE = 0.5   # default budget for kept gradient graphs: this share of the memory available at the start


def available_memory(device: torch.device) -> int | None:
    """Bytes free for new tensors on ``device`` (None when unknown)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_graph_budget(device: torch.device, processes: int = 1) -> int:
    """``GRAPH_MEMORY_SHARE`` of the memory available, split between the ``processes`` of a data-parallel run that
    share it (the ranks on one node share its CPU memory; each GPU is one rank's)."""
    free = available_memory(device)
    return int(GRAPH_MEMORY_SHARE * free / max(processes, 1)) if free else 0


def graph_bytes(roots: list[torch.Tensor], exclude: set[int]) -> int:
    """Bytes the autograd graph behind ``roots`` holds on to: the distinct storages of the tensors its nodes saved,
    the model's own tensors (``exclude``: storage pointers) left out. A walk over the nodes (thousands for a
    transformer: milliseconds); on CUDA the allocator's count is used instead (``estimate``)."""
    seen: set = set()
    storages: set[int] = set()
    total = 0
    stack = [t.grad_fn for t in roots if t.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        for attr in dir(node):
            if not attr.startswith("_saved_"):
                continue
            try:
                value = getattr(node, attr)
            except RuntimeError:          # a buffer already freed
                continue
            for t in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(t, torch.Tensor):
                    try:
                        storage = t.untyped_storage()
                    except (RuntimeError, NotImplementedError):
                        continue
                    ptr = storage.data_ptr()
                    if ptr not in exclude and ptr not in storages:
                        storages.add(ptr)
                        total += storage.nbytes()
        stack.extend(fn for fn, _ in node.next_functions if fn is not None)
    return total


class HessianOperator:
    """``v ↦ H v`` over the whole calibration set for the concatenated node tensors (``D`` entries): this rank's
    batches, then the sum over ranks. Keeps the first step's per-batch gradient graphs within ``budget`` bytes; the
    first product also records the mean gradient and the per-batch ``εᵀ H_b ε`` (for the spread)."""

    def __init__(self, ctx: PassContext, budget: int):
        self.ctx = ctx
        self.sizes = [p.numel() for p in ctx.params]
        self.D = sum(self.sizes)
        self.work = torch.float32 if ctx.dtype in (torch.float16, torch.bfloat16) else ctx.dtype
        self.budget = budget
        self.kept: dict[int, list[torch.Tensor]] = {}     # batch index -> its gradient graph (grads, create_graph)
        self.kept_bytes = 0
        self.graph_bytes: list[int] = []
        self.full = budget <= 0                            # no more graphs are kept
        self.own = {t.untyped_storage().data_ptr() for t in list(ctx.model.parameters()) + list(ctx.model.buffers())}
        self.quads: list[tuple[int, float]] = []
        self.grad: torch.Tensor | None = None

    def split(self, vec: torch.Tensor) -> list[torch.Tensor]:
        return [c.view_as(p).to(p.dtype) for c, p in zip(torch.split(vec, self.sizes), self.ctx.params)]

    def batch_grads(self, i: int, batch) -> list[torch.Tensor]:
        """The batch's gradient graph: kept from the first step when it fitted the budget, else built now."""
        if i in self.kept:
            return self.kept[i]
        ctx = self.ctx
        cuda = ctx.device.type == "cuda"
        before = torch.cuda.memory_allocated(ctx.device) if cuda and not self.full else 0
        loss = checked_loss(call_user(ctx.spec.loss, ctx.model, batch, what="loss"), i)
        gs = _grads(loss, ctx.params, create_graph=True)
        if not self.full:
            size = (torch.cuda.memory_allocated(ctx.device) - before) if cuda else graph_bytes(gs, self.own)
            self.graph_bytes.append(size)
            if self.kept_bytes + size <= self.budget:
                self.kept[i] = gs
                self.kept_bytes += size
            else:   # later batches are not kept either: the budget bounds the memory, not the order
                self.full = True
        return gs

    def times(self, v: torch.Tensor, record: bool) -> torch.Tensor:
        vs = self.split(v)
        out = torch.zeros(self.D, device=self.ctx.device, dtype=self.work)
        grad_sum = torch.zeros(self.D, device=self.ctx.device, dtype=self.work) if record else None
        total = 0
        for i, batch, n in self.ctx.calib:
            gs = self.batch_grads(i, batch)
            hv = torch.cat([h.reshape(-1).to(self.work)
                            for h in _hvp(gs, self.ctx.params, vs, retain_graph=i in self.kept)])
            out.add_(hv, alpha=float(n))
            if record:
                self.quads.append((i, float(hv @ v) * self.D))
                grad_sum.add_(torch.cat([g.detach().reshape(-1).to(self.work) for g in gs]), alpha=float(n))
            total += n
        self.full = True                                   # graphs are kept on the first step only
        self.ctx.shard.sum_([out] + ([grad_sum] if record else []))
        total = self.ctx.shard.sum_numbers([total])[0]
        if record:
            self.grad = grad_sum / total
        return out / total


def estimate(ctx: PassContext, steps: int = DEFAULT_STEPS, graph_budget: int | None = None) -> Curvature:
    """``graph_budget``: bytes of gradient graphs kept across the Lanczos steps (None: ``default_graph_budget``;
    0: recompute every batch at every step)."""
    if int(steps) < 1:
        raise InputError(f"lanczos steps must be >= 1, got {steps}")
    names = [n.name for n in ctx.nodes]
    sharing = ctx.shard.local_processes if ctx.device.type == "cpu" else 1
    budget = default_graph_budget(ctx.device, sharing) if graph_budget is None else max(int(graph_budget), 0)
    op = HessianOperator(ctx, budget)
    D, work = op.D, op.work
    steps = min(int(steps), D)
    op.full = op.full or steps <= 1                              # one product: nothing to keep graphs for
    alpha, beta, V = _lanczos(op, steps)
    kept_count, kept_bytes = ctx.shard.sum_numbers([len(op.kept), op.kept_bytes])
    op.kept.clear()                                              # release the graphs before the Ritz vectors
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
    diag = {n: d.float().clamp_min(0) for n, d in zip(names, op.split(diag_flat))}
    grad = {n: g.float() for n, g in zip(names, op.split(op.grad))}
    stats = {"eigenvalues": [float(t) for t in theta], "trace_estimate": trace, "lam_rest_raw": rest_raw,
             "steps_run": k, "dimension": D, "graph_budget": budget, "graphs_kept_bytes": int(kept_bytes),
             "graphs_kept": f"{int(kept_count)}/{ctx.calib.n_batches}",
             "graph_bytes_max": max(op.graph_bytes, default=0)}
    return Curvature(estimator="lanczos", method="hessian", diag=diag, grad=grad, samples=ctx.calib.n_examples,
                     batches=ctx.calib.n_batches, spread=relative_spread(ctx.shard.in_batch_order(op.quads)),
                     eigvals=lam.float(), eigvecs=Q, lam_rest=lam_rest, stats=stats)


def _lanczos(op: HessianOperator, steps: int) -> tuple[list[float], list[float], torch.Tensor]:
    """``steps`` Lanczos steps with full re-orthogonalisation from a Rademacher start: the tridiagonal ``α``, ``β``
    and the basis ``V`` (rows)."""
    ctx, D = op.ctx, op.D
    V = torch.empty(steps + 1, D, device=ctx.device, dtype=op.work)
    alpha: list[float] = []
    beta: list[float] = []
    with torch.enable_grad(), translated_errors("lanczos", ctx.device, "--samples, the batch size / --seq-len or "
                                                "--lanczos-steps"), math_attention():
        ctx.report("lanczos", 0, steps)
        V[0] = rademacher((D,), ctx.stream(), ctx.device, op.work) / math.sqrt(D)
        for j in range(steps):
            w = op.times(V[j], record=(j == 0))
            if not bool(torch.isfinite(w).all()):
                bad = _first_bad(op.split(w), [n.name for n in ctx.nodes])
                raise InputError(f"the Hessian-vector product is not finite at {bad!r}")
            a = float(w @ V[j])
            w = w - a * V[j] - (beta[-1] * V[j - 1] if j > 0 else 0)
            for _ in range(2):  # full re-orthogonalisation, twice is enough
                w = w - V[:j + 1].T @ (V[:j + 1] @ w)
            a, b = _same_on_every_rank(ctx.shard, w, a)
            alpha.append(a)
            ctx.report("lanczos", j + 1, steps)
            if j + 1 == steps or b <= 1e-10 * max(abs(a), 1e-30):
                break
            beta.append(b)
            V[j + 1] = w / b
    return alpha, beta, V


def _same_on_every_rank(shard, w: torch.Tensor, a: float) -> tuple[float, float]:
    """Rank 0's next Lanczos residual ``w`` (in place), its ``α`` and ``‖w‖``: every rank then builds the same basis
    and stops at the same step, even where ranks round differently (other CPUs, other thread counts)."""
    if not shard.parallel:
        return a, float(w.norm())
    scalars = torch.tensor([a, float(w.norm())], dtype=torch.float64, device=w.device)
    shard.broadcast_([w, scalars])
    return float(scalars[0]), float(scalars[1])


def _first_bad(parts, names) -> str:
    for p, n in zip(parts, names):
        if not bool(torch.isfinite(p).all()):
            return n
    return names[0]
