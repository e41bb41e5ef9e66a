"""Diagonal curvature, one pass over the calibration data (the cheapest estimator).

Methods (``diag_method``):
- ``ggn`` (default when the spec gives ``outputs``/``output_loss``): Monte-Carlo Gauss-Newton diagonal
  ``E[(Jᵀr)²]`` with ``E[r rᵀ] = H_z`` (see ``common.OutputSampler``): one forward and one backward per batch, and
  informative at a stationary point (a distillation loss at the original weights), where squared gradients vanish.
- ``empirical`` (default otherwise): squared mini-batch gradients scaled by the batch size, ``n_b · g_b²`` ≈ the
  empirical Fisher diagonal; the mean gradient comes free and feeds the first-order term.
- ``hutchinson``: ``E[v ⊙ Hv]`` with Rademacher ``v`` on Hessian-vector products (about 3 gradients per batch; the
  Hessian diagonal may be negative and is clipped at 0 for the sidecar).
The data average weights each batch by its number of examples (the loss of a batch is a mean over its examples).
"""
from __future__ import annotations

import torch

from ...errors import InputError
from ..hooks import LinearCovariances, ModuleReused
from ..runtime import call_user, checked_loss, math_attention, rademacher, relative_spread, translated_errors
from .common import Curvature, OutputSampler, PassContext

METHODS = ("auto", "ggn", "empirical", "hutchinson")


def resolve_method(method: str, spec) -> str:
    if method not in METHODS:
        raise InputError(f"diag method {method!r}: use one of {', '.join(METHODS)}")
    if method == "auto":
        return "ggn" if spec.outputs is not None else "empirical"
    if method == "ggn" and spec.outputs is None:
        raise InputError("diag method 'ggn' needs a spec with 'outputs' and 'output_loss'")
    return method


def _grads(outputs, params, grad_outputs=None, **kw):
    gs = torch.autograd.grad(outputs, params, grad_outputs=grad_outputs, allow_unused=True, **kw)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(gs, params)]


def linear_nodes(ctx: PassContext) -> bool:
    """Whether every node is the weight of an nn.Linear used through hooks (the per-example path applies)."""
    for n in ctx.nodes:
        mod = ctx.model.get_submodule(n.module) if n.module else ctx.model
        if not isinstance(mod, torch.nn.Linear) or not n.name.endswith("weight"):
            return False
    return True


def curvature_pass(ctx: PassContext, method: str, step: str, hooks: LinearCovariances | None = None,
                   per_example: bool | None = None) -> Curvature:
    """One pass accumulating the diagonal (and, through ``hooks``, K-FAC factors / input covariances).

    ``per_example`` (default: when every node is an nn.Linear weight and the method is ggn or empirical): square the
    per-example weight gradients ``Σ_n (g_n x_nᵀ)²`` from the layer inputs and output gradients instead of the batch
    gradient: the random vectors of different examples are independent, so dropping the cross-example terms keeps
    the estimate unbiased while the variance falls by about the batch size. The backward pass then stops at the layer
    outputs (no weight gradients are formed by autograd)."""
    spec, params, names = ctx.spec, ctx.params, [n.name for n in ctx.nodes]
    if per_example is None:
        per_example = method in ("ggn", "empirical") and linear_nodes(ctx)
    own_hooks = None
    if per_example:
        if hooks is None:
            try:
                own_hooks = LinearCovariances(ctx.model, ctx.nodes, inputs=False, output_grads=False,
                                              per_example=True, why="the per-example diagonal")
            except InputError:  # tied weights: the batch-level estimate still holds
                return curvature_pass(ctx, method, step, None, per_example=False)
            hooks = own_hooks.__enter__()
        else:
            hooks.per_example = True
        hooks.want_grad = method == "empirical"
    try:
        return _run_pass(ctx, method, step, hooks, per_example, spec, params, names)
    except ModuleReused:
        if own_hooks is None:
            raise
        own_hooks.remove()  # a layer reused in one forward: fall back to batch-level squares
        return curvature_pass(ctx, method, step, None, per_example=False)
    finally:
        if own_hooks is not None:
            own_hooks.remove()


def _run_pass(ctx, method, step, hooks, per_example, spec, params, names) -> Curvature:
    """One pass over the calibration batches summing each batch's diagonal contribution (weighted by its size).
    A batch whose squares the hooks accumulate per example contributes through ``hooks`` instead."""
    sums = [torch.zeros_like(p, dtype=torch.float32) for p in params]
    grad_sum = [torch.zeros_like(p, dtype=torch.float32) for p in params] if method != "ggn" else None
    traces: list[float] = []
    sampler = OutputSampler(spec.output_loss, ctx.generator) if method == "ggn" else None
    total = 0
    used_per_example = False
    ctx.report(step, 0, ctx.calib.n_batches)
    with torch.enable_grad(), translated_errors(step, ctx.device), \
            (math_attention() if method == "hutchinson" else _null()):
        for i, batch, n in ctx.calib:
            if hooks is not None:
                hooks.new_batch()
                hooks.mode = "square"
                hooks.batch_n = float(n)
            if method == "ggn":
                contrib = _ggn_batch(ctx, spec, params, batch, i, n, hooks, sampler, per_example)
            else:
                contrib, gs = _loss_batch(ctx, spec, params, method, batch, i, n, hooks, per_example)
                if contrib is not None:
                    for acc, g in zip(grad_sum, gs):
                        acc.add_(g.detach().float(), alpha=float(n))
            if contrib is None:                 # the hooks took the batch per example
                used_per_example = True
                traces.append(hooks.batch_trace)
            else:
                tr = 0.0
                for acc, c in zip(sums, contrib):
                    acc.add_(c, alpha=float(n))
                    tr += float(c.sum())
                traces.append(tr)
            total += n
            ctx.report(step, i + 1, ctx.calib.n_batches)
    if used_per_example:  # hooks already weighted each batch
        _add_hook_sums(hooks, sums, grad_sum, names)
    return _curvature(method, names, sums, grad_sum, traces, total, sampler, used_per_example)


def _ggn_batch(ctx, spec, params, batch, i, n, hooks, sampler, per_example):
    """One batch of the Gauss-Newton diagonal from sampled output gradients: its contribution per parameter, or
    None when the hooks accumulated it per example."""
    z = call_user(spec.outputs, ctx.model, batch, what="outputs")
    if not isinstance(z, torch.Tensor):
        raise InputError(f"spec outputs must return a tensor, got {type(z).__name__}")
    if not z.requires_grad:
        raise InputError("spec outputs do not depend on the model's parameters (no gradient); did it run "
                         "under torch.no_grad() or detach?")
    r, hr = sampler.sample(z, batch)
    if not bool(torch.isfinite(sampler.last_loss)):
        raise InputError(f"the loss is not finite ({float(sampler.last_loss)}) on calibration batch {i}")
    if hooks is not None:
        hooks.weight = float(n)
    if hr is None and per_example:
        _backward_to_outputs(z, hooks, r)
        return None
    if hr is None:
        return [g.float().square() for g in _grads(z, params, r)]
    # two backward passes: per-example squares do not apply
    if hooks is not None:
        hooks.per_example = False
        hooks.mode = "first"
    g1 = _grads(z, params, r, retain_graph=True)
    if hooks is not None:
        hooks.mode = "second"
    g2 = _grads(z, params, hr)
    return [a.float() * b.float() for a, b in zip(g1, g2)]


def _loss_batch(ctx, spec, params, method, batch, i, n, hooks, per_example):
    """One batch of the empirical Fisher (squared gradients) or of Hutchinson's ``v ⊙ Hv``: (its contribution or
    None when the hooks accumulated it per example, the batch's gradients)."""
    loss = checked_loss(call_user(spec.loss, ctx.model, batch, what="loss"), i)
    if hooks is not None:
        hooks.weight = float(n) * float(n)
    if method == "empirical" and per_example:
        _backward_to_outputs(loss, hooks, None)
        return None, None
    if method == "empirical":
        gs = _grads(loss, params)
        return [float(n) * g.float().square() for g in gs], gs
    gs = _grads(loss, params, create_graph=True)
    vs = [rademacher(p.shape, ctx.generator, p.device, p.dtype) for p in params]
    hv = _hvp(gs, params, vs)
    return [(v * h).float() for v, h in zip(vs, hv)], gs


def _add_hook_sums(hooks, sums, grad_sum, names) -> None:
    for acc, name in zip(sums, names):
        if name in hooks.D:
            acc.add_(hooks.D[name].view_as(acc))
    if grad_sum is not None:
        for acc, name in zip(grad_sum, names):
            if name in hooks.grad:
                acc.add_(hooks.grad[name].view_as(acc))


def _curvature(method, names, sums, grad_sum, traces, total, sampler, used_per_example) -> Curvature:
    diag = {}
    for name, s in zip(names, sums):
        d = s / total
        if not bool(torch.isfinite(d).all()):
            raise InputError(f"the curvature of {name!r} is not finite (check the loss and the model at this layer)")
        diag[name] = d.clamp_min(0)
    grad = {name: g / total for name, g in zip(names, grad_sum)} if grad_sum is not None else None
    stats = {"output_hessian": sampler.kind} if sampler is not None else {}
    stats["per_example"] = used_per_example
    if method == "empirical" and grad is not None and used_per_example:   # needs per-example second moments
        stats["gradient_snr"] = gradient_snr(grad, diag, total)
    if method == "hutchinson":
        stats["clipped_fraction"] = float(sum(int((s < 0).sum()) for s in sums) / max(sum(s.numel() for s in sums), 1))
    return Curvature(estimator="diag", method=method, diag=diag, grad=grad, samples=total, batches=len(traces),
                     spread=relative_spread(traces), stats=stats)


def gradient_snr(grad: dict, second_moment: dict, n: int) -> dict[str, float]:
    """Per layer, ``n‖g‖² / (tr E[g_n²] − ‖g‖²)``: the squared norm of the mean of ``n`` per-example gradients over
    its noise level (about 1 for pure noise, i.e. at a stationary point of the calibration loss). The pair weights
    use it to decide whether the first-order term ``g·δ`` is signal (``pairs.GRADIENT_SNR``)."""
    snr = {}
    for name, g in grad.items():
        g2 = float(g.double().square().sum())
        noise = max(float(second_moment[name].double().sum()) - g2, 0.0)
        snr[name] = n * g2 / noise if noise > 0 else (float("inf") if g2 > 0 else 0.0)
    return snr


def _backward_to_outputs(root: torch.Tensor, hooks: LinearCovariances, grad_output) -> None:
    """Backward from ``root`` to the node layers' outputs only; their hooks do the accumulation."""
    outs = [o for o in hooks.outputs.values() if o.requires_grad]
    if outs:
        torch.autograd.grad(root, outs, grad_outputs=grad_output, allow_unused=True)


def _hvp(grads, params, vs, retain_graph: bool = False):
    """``H v`` from gradients built with ``create_graph``; ``retain_graph`` keeps their graph for another product."""
    dot = sum((g * v).sum() for g, v in zip(grads, vs) if g.requires_grad)
    if not isinstance(dot, torch.Tensor) or not dot.requires_grad:
        return [torch.zeros_like(p) for p in params]
    return _grads(dot, params, retain_graph=retain_graph)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def estimate(ctx: PassContext, method: str = "auto") -> Curvature:
    return curvature_pass(ctx, resolve_method(method, ctx.spec), "diag")
