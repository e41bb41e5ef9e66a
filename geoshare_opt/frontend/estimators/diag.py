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

from dataclasses import dataclass, field

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
        local = _local_pass(ctx, method, step, hooks, per_example)
    except ModuleReused:
        if own_hooks is None:
            raise
        local = None          # a layer reused in one forward: batch-level squares instead
    finally:
        if own_hooks is not None:
            own_hooks.remove()
    if any(ctx.shard.gather(local is None)):   # every rank falls back together (its sums would not match)
        return curvature_pass(ctx, method, step, None, per_example=False)
    return _combined(ctx, method, local, hooks)


@dataclass
class _LocalSums:
    """What one process accumulated over its calibration batches (all of them in a single process)."""
    sums: list[torch.Tensor]                  # Σ_b n_b · (per-batch diagonal estimate), per node
    grad_sum: list[torch.Tensor] | None       # Σ_b n_b · g_b, when the method measures the gradient
    traces: list[tuple[int, float]] = field(default_factory=list)   # (batch index, trace of its estimate)
    total: int = 0                            # examples seen
    kind: str | None = None                   # the output-Hessian construction (ggn)
    per_example: bool = False                 # whether the hooks' per-example squares were used


def _local_pass(ctx: PassContext, method: str, step: str, hooks: LinearCovariances | None,
                per_example: bool) -> _LocalSums:
    acc = _LocalSums(sums=[torch.zeros_like(p, dtype=torch.float32) for p in ctx.params],
                     grad_sum=[torch.zeros_like(p, dtype=torch.float32) for p in ctx.params]
                     if method != "ggn" else None)
    sampler = OutputSampler(ctx.spec.output_loss) if method == "ggn" else None
    ctx.report(step, 0, ctx.calib.n_batches)
    with torch.enable_grad(), translated_errors(step, ctx.device), \
            (math_attention() if method == "hutchinson" else _null()):
        for i, batch, n in ctx.calib:
            if hooks is not None:
                hooks.new_batch()
                hooks.mode = "square"
                hooks.batch_n = float(n)
            if method == "ggn":
                contrib, gs = _ggn_batch(ctx, sampler, hooks, per_example, i, batch, n)
            else:
                contrib, gs = _loss_batch(ctx, method, hooks, per_example, i, batch, n)
            if contrib is None:
                acc.per_example = True
                acc.traces.append((i, hooks.batch_trace))
            else:
                for s, c in zip(acc.sums, contrib):
                    s.add_(c, alpha=float(n))
                acc.traces.append((i, sum(float(c.sum()) for c in contrib)))
                if acc.grad_sum is not None:
                    for s, g in zip(acc.grad_sum, gs):
                        s.add_(g.detach().float(), alpha=float(n))
            acc.total += n
            ctx.report(step, i + 1, ctx.calib.n_batches)
    ctx.report(step, ctx.calib.n_batches, ctx.calib.n_batches)   # this rank's last batch need not be the last one
    if acc.per_example:  # the hooks weighted each batch already
        _add_named(acc.sums, hooks.D, ctx.nodes)
        if acc.grad_sum is not None:
            _add_named(acc.grad_sum, hooks.grad, ctx.nodes)
    acc.kind = sampler.kind if sampler is not None else None
    return acc


def _add_named(accs: list[torch.Tensor], named: dict[str, torch.Tensor], nodes) -> None:
    for acc, node in zip(accs, nodes):
        if node.name in named:
            acc.add_(named[node.name].view_as(acc))


def _ggn_batch(ctx, sampler, hooks, per_example, i, batch, n):
    """One batch of the Monte-Carlo Gauss-Newton diagonal: ``(per-node contribution, None)``, or ``(None, None)``
    when the hooks accumulated per-example squares."""
    z = call_user(ctx.spec.outputs, ctx.model, batch, what="outputs")
    if not isinstance(z, torch.Tensor):
        raise InputError(f"spec outputs must return a tensor, got {type(z).__name__}")
    if not z.requires_grad:
        raise InputError("spec outputs do not depend on the model's parameters (no gradient); did it run "
                         "under torch.no_grad() or detach?")
    r, hr = sampler.sample(z, batch, probes=ctx.stream("probe", i), noise=ctx.stream("noise", i))
    if not bool(torch.isfinite(sampler.last_loss)):
        raise InputError(f"the loss is not finite ({float(sampler.last_loss)}) on calibration batch {i}")
    if hooks is not None:
        hooks.weight = float(n)
    if hr is None and per_example:
        _backward_to_outputs(z, hooks, r)
        return None, None
    if hr is None:
        return [g.float().square() for g in _grads(z, ctx.params, r)], None
    if hooks is not None:  # two backward passes: per-example squares do not apply
        hooks.per_example = False
        hooks.mode = "first"
    g1 = _grads(z, ctx.params, r, retain_graph=True)
    if hooks is not None:
        hooks.mode = "second"
    g2 = _grads(z, ctx.params, hr)
    return [a.float() * b.float() for a, b in zip(g1, g2)], None


def _loss_batch(ctx, method, hooks, per_example, i, batch, n):
    """One batch of the empirical Fisher or Hutchinson diagonal: ``(per-node contribution, batch gradient)``, or
    ``(None, None)`` when the hooks accumulated per-example squares (and the gradient)."""
    loss = checked_loss(call_user(ctx.spec.loss, ctx.model, batch, what="loss"), i)
    if hooks is not None:
        hooks.weight = float(n) * float(n)
    if method == "empirical" and per_example:
        _backward_to_outputs(loss, hooks, None)
        return None, None
    if method == "empirical":
        gs = _grads(loss, ctx.params)
        return [float(n) * g.float().square() for g in gs], gs
    gs = _grads(loss, ctx.params, create_graph=True)
    noise = ctx.stream("noise", i)
    vs = [rademacher(p.shape, noise, p.device, p.dtype) for p in ctx.params]
    return [(v * h).float() for v, h in zip(vs, _hvp(gs, ctx.params, vs))], gs


def _combined(ctx: PassContext, method: str, local: _LocalSums, hooks: LinearCovariances | None) -> Curvature:
    """The sums of every rank added up (nothing to add in a single process), normalised into the curvature."""
    shard, names = ctx.shard, [n.name for n in ctx.nodes]
    shard.sum_(local.sums + (local.grad_sum or []))
    total = int(shard.sum_numbers([local.total])[0])
    traces = shard.in_batch_order(local.traces)
    kinds = sorted({k for k in shard.gather(local.kind) if k is not None})
    if len(kinds) > 1:
        raise InputError(f"the ranks read the output Hessian differently ({', '.join(kinds)}): run analyze in one "
                         "process for this loss")
    if hooks is not None:
        hooks.sum_over(shard)
    diag = {}
    for name, s in zip(names, local.sums):
        d = s / total
        if not bool(torch.isfinite(d).all()):
            raise InputError(f"the curvature of {name!r} is not finite (check the loss and the model at this layer)")
        diag[name] = d.clamp_min(0)
    grad = {name: g / total for name, g in zip(names, local.grad_sum)} if local.grad_sum is not None else None
    per_example = any(shard.gather(local.per_example))
    stats = {"output_hessian": kinds[0] if kinds else None} if method == "ggn" else {}
    stats["per_example"] = per_example
    if method == "empirical" and grad is not None and per_example:   # needs per-example second moments
        stats["gradient_snr"] = gradient_snr(grad, diag, total)
    if method == "hutchinson":
        stats["clipped_fraction"] = float(sum(int((s < 0).sum()) for s in local.sums)
                                          / max(sum(s.numel() for s in local.sums), 1))
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
