"""Forward/backward hooks on the linear layers that own node weights: input-activation covariance ``G = E[x xᵀ]``
(per token) and output-gradient covariance ``B = Σ_tokens g gᵀ`` (K-FAC). The collector owns its hooks and removes
them on exit, whatever happens; a module called twice in one forward (tied / reused) is an error because the factors
would mix two different inputs."""
from __future__ import annotations

from typing import Sequence

import torch

from ..errors import InputError
from .discovery import NodeInfo


class ModuleReused(InputError):
    """A hooked module ran twice in one forward pass."""


class LinearCovariances:
    def __init__(self, model: torch.nn.Module, nodes: Sequence[NodeInfo], *, inputs: bool = True,
                 output_grads: bool = False, per_example: bool = False, why: str = "kfac"):
        self.model = model
        self.nodes = list(nodes)
        self.inputs, self.output_grads, self.per_example = inputs, output_grads, per_example
        # per-example squared weight gradients Σ_n (g_n x_nᵀ)² and the batch gradient Σ_n g_n x_nᵀ, from the same
        # tensors autograd keeps anyway (the diagonal estimator's low-variance path)
        self.D: dict[str, torch.Tensor] = {}
        self.grad: dict[str, torch.Tensor] = {}
        self.saved_inputs: dict[str, torch.Tensor] = {}
        self.outputs: dict[str, torch.Tensor] = {}
        self.batch_trace = 0.0
        self.batch_n = 1.0           # examples in the current batch (weight of its gradient)
        self.want_grad = False
        self.handles: list = []
        self.G: dict[str, torch.Tensor] = {}
        self.B: dict[str, torch.Tensor] = {}
        self.tokens: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self.weight = 1.0            # weight of the current batch in the output-gradient sum
        self.pending: dict[str, torch.Tensor] = {}
        self.mode = "square"         # "square": B += gᵀg; "first"/"second": B += sym(g1ᵀ g2) over two backwards
        self.record_inputs = True
        self._increments: dict[tuple, tuple] = {}   # the last input's x xᵀ, by input tensor
        holders: dict[int, list[str]] = {}
        for mod_name, mod in model.named_modules(remove_duplicate=False):
            for p_name, p in mod.named_parameters(recurse=False):
                holders.setdefault(id(p), []).append(f"{mod_name}.{p_name}" if mod_name else p_name)
        self.modules: dict[str, torch.nn.Module] = {}
        params = dict(model.named_parameters())
        for n in self.nodes:
            mod = model.get_submodule(n.module) if n.module else model
            if not isinstance(mod, torch.nn.Linear) or n.name != (n.module + ".weight" if n.module else "weight"):
                raise InputError(f"{why} needs nn.Linear layers, but node {n.name!r} belongs to a "
                                 f"{type(mod).__name__}; exclude it (--exclude) or use --estimator diag/lanczos "
                                 "with --mode tie")
            if len(holders.get(id(params[n.name]), [])) > 1:
                raise InputError(f"{why}: weight {n.name!r} is tied to {holders[id(params[n.name])][1]!r}; "
                                 "compute curvature on the untied network")
            self.modules[n.name] = mod

    # ------------------------------------------------------------------ hooks
    def _forward_hook(self, name: str):
        def hook(module, args, output):
            self.calls[name] = self.calls.get(name, 0) + 1
            if self.calls[name] > 1:
                raise ModuleReused(f"module {name.rpartition('.')[0]!r} is called more than once per forward pass "
                                 "(reused / tied); K-FAC and input covariances need each layer used once")
            x = args[0].detach()
            if self.per_example:
                self.saved_inputs[name] = x
                self.outputs[name] = output
            if self.inputs and self.record_inputs:
                # consecutive layers reading the same tensor (q, k and v of attention) share one x xᵀ; the last
                # input is held so that its address cannot be reused by another tensor while it is the key
                key = (x.data_ptr(), tuple(x.shape), x.stride(), x._version, x.dtype)
                inc = self._increments.get(key)
                if inc is None:
                    x2 = x.reshape(-1, x.shape[-1]).to(torch.float32)
                    self._increments.clear()
                    inc = self._increments[key] = (x2.T @ x2, x2.shape[0], x)
                # summed in float64: the batches' order (one process, or data-parallel ranks) then leaves no trace
                # that whitening by near-null directions of G could amplify (basis mode, tests/test_distributed_*)
                acc = self.G.get(name)
                self.G[name] = inc[0].to(torch.float64) if acc is None else acc.add_(inc[0])
                self.tokens[name] = self.tokens.get(name, 0) + inc[1]
            if (self.output_grads or self.per_example) and output.requires_grad:
                output.register_hook(self._grad_hook(name))
        return hook

    def _grad_hook(self, name: str):
        def hook(grad):
            if self.per_example and name in self.saved_inputs:
                self._per_example(name, grad.detach())
            if not self.output_grads:
                return None
            g = grad.detach().reshape(-1, grad.shape[-1]).to(torch.float32)
            if self.mode == "first":
                self.pending[name] = g
                return None
            if self.mode == "second":
                g1 = self.pending.pop(name)
                prod = g1.T @ g
                prod = 0.5 * (prod + prod.T)
            else:
                prod = g.T @ g
            prod = prod * self.weight
            acc = self.B.get(name)
            self.B[name] = prod if acc is None else acc.add_(prod)
            return None
        return hook

    def _per_example(self, name: str, grad: torch.Tensor) -> None:
        x = self.saved_inputs.pop(name).to(torch.float32)
        g = grad.to(torch.float32)
        n = x.shape[0]
        x3, g3 = x.reshape(n, -1, x.shape[-1]), g.reshape(n, -1, g.shape[-1])
        if x3.shape[1] == 1:                         # one token per example: (g_n x_nᵀ)² = g_n² (x_n²)ᵀ
            sq = g3[:, 0].square().T @ x3[:, 0].square()
        elif x.device.type == "cpu":                 # sequences on the CPU: one example at a time, squared and
            sq = torch.zeros(g3.shape[-1], x3.shape[-1], dtype=torch.float32)     # added in one fused pass while
            for gn, xn in zip(g3, x3):                                             # the gradient is still in cache
                per = gn.T @ xn
                sq.addcmul_(per, per)
        else:                                        # on an accelerator: batched, in chunks of examples
            sq = None
            step = max(1, (1 << 26) // max(g.shape[-1] * x.shape[-1], 1))
            for lo in range(0, n, step):
                per = torch.einsum("bto,bti->boi", g3[lo:lo + step], x3[lo:lo + step]).square_().sum(0)
                sq = per if sq is None else sq.add_(per)
        self.batch_trace += float(sq.sum()) * self.weight / self.batch_n
        sq = sq * self.weight
        acc = self.D.get(name)
        self.D[name] = sq if acc is None else acc.add_(sq)
        if self.want_grad:  # the batch gradient (first-order term), only where the method has one
            batch_grad = g3.reshape(-1, g3.shape[-1]).T @ x3.reshape(-1, x3.shape[-1])
            acc = self.grad.get(name)
            self.grad[name] = batch_grad * self.batch_n if acc is None else acc.add_(batch_grad, alpha=self.batch_n)

    def new_batch(self) -> None:
        self._increments.clear()
        self.calls.clear()
        self.saved_inputs.clear()
        self.outputs.clear()
        self.batch_trace = 0.0

    def __enter__(self) -> "LinearCovariances":
        for name, mod in self.modules.items():
            self.handles.append(mod.register_forward_hook(self._forward_hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()
        self.pending.clear()
        self.saved_inputs.clear()
        self.outputs.clear()
        self._increments.clear()

    def sum_over(self, shard) -> None:
        """Add up the factors every rank of a data-parallel pass accumulated (``parallel.Shard``; nothing to do in a
        single process). The per-example squares are not reduced here: the pass adds them to its own sums first."""
        if not shard.parallel:
            return
        device = next(iter(self.modules.values())).weight.device
        if self.inputs:
            self.G = shard.sum_named(self.G, {n: (m.in_features,) * 2 for n, m in self.modules.items()},
                                     torch.float64, device)
            tokens = shard.sum_numbers([self.tokens.get(n, 0) for n in self.modules])
            self.tokens = {n: int(t) for n, t in zip(self.modules, tokens) if n in self.G}
        if self.output_grads:
            self.B = shard.sum_named(self.B, {n: (m.out_features,) * 2 for n, m in self.modules.items()},
                                     torch.float32, device)

    def input_covariances(self) -> dict[str, torch.Tensor]:
        """``E[x xᵀ]`` over every token seen (float32; summed in float64)."""
        return {n: (g / max(self.tokens[n], 1)).to(torch.float32) for n, g in self.G.items()}
