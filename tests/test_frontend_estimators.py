"""Curvature estimators against exact dense Hessians / Gauss-Newton matrices of tiny networks."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.func import functional_call  # noqa: E402

from geoshare_opt.frontend.discovery import discover  # noqa: E402
from geoshare_opt.frontend.estimators import diag as diag_est  # noqa: E402
from geoshare_opt.frontend.estimators import kfac as kfac_est  # noqa: E402
from geoshare_opt.frontend.estimators import lanczos as lanczos_est  # noqa: E402
from geoshare_opt.frontend.estimators.common import PassContext  # noqa: E402
from geoshare_opt.frontend.runtime import Calibration  # noqa: E402
from geoshare_opt.specs.base import as_spec  # noqa: E402


class TinyMLP(nn.Module):
    def __init__(self, d_in=3, width=4, d_out=3, depth=2, act=True):
        super().__init__()
        self.inp = nn.Linear(d_in, width)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.out = nn.Linear(width, d_out)
        self.act = act

    def forward(self, x):
        x = torch.tanh(self.inp(x))
        for layer in self.hidden:
            x = layer(x)
            x = torch.tanh(x) if self.act else x
        return self.out(x)


def make_spec(loss_kind="mse", n=16, repeats=1, seed=0, model=None, perturb=0.0):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = model or TinyMLP().double()
    x = torch.randn(n, model.inp.in_features, generator=g, dtype=torch.float64)
    if loss_kind == "seq":  # sequences of 3 tokens: per-example gradients sum over tokens
        x = torch.randn(n, 3, model.inp.in_features, generator=g, dtype=torch.float64)
    if loss_kind == "ce":
        y = torch.randint(0, model.out.out_features, (n,), generator=g)
        output_loss = lambda z, b: nn.functional.cross_entropy(z, b[1])
    elif loss_kind == "metric":  # per-example blocks that are neither diagonal nor softmax: (z−y)ᵀ M (z−y)
        y = torch.randn(n, model.out.out_features, generator=g, dtype=torch.float64)
        L = torch.randn(model.out.out_features, model.out.out_features, generator=g, dtype=torch.float64)
        output_loss = lambda z, b: (((z - b[1]) @ (L @ L.T)) * (z - b[1])).sum(-1).mean()
    elif loss_kind == "coupled":  # couples the outputs inside an example: neither diagonal nor 2-D blocks
        y = torch.randn(n, 2, generator=g, dtype=torch.float64)
        output_loss = lambda z, b: (z.sum(-1) - b[1]).pow(2).mean()
    else:
        y = torch.randn(*x.shape[:-1], model.out.out_features, generator=g, dtype=torch.float64)
        output_loss = lambda z, b: (z - b[1]).pow(2).mean()
    if loss_kind == "coupled":
        outputs = lambda m, b: m(b[0]).unsqueeze(1).expand(-1, 2, -1)
    else:
        outputs = lambda m, b: m(b[0])
    with torch.no_grad():
        for p in model.parameters():
            p.add_(perturb * torch.randn(p.shape, generator=g, dtype=p.dtype))
    data = [(x, y)] * repeats
    return as_spec({"model": model, "batches": data, "loss": lambda m, b: output_loss(outputs(m, b), b),
                    "outputs": outputs, "output_loss": output_loss})


def context(spec, seed=0):
    nodes = discover(spec.model)
    params = dict(spec.model.named_parameters())
    dev = torch.device("cpu")
    return PassContext(model=spec.model, spec=spec, calib=Calibration(spec, dev, torch.float64), nodes=nodes,
                       params=[params[n.name] for n in nodes], device=dev, dtype=torch.float64,
                       seed=seed)


def flat_fn(spec, nodes, fn):
    """fn over the concatenated node tensors (everything else fixed)."""
    base = dict(spec.model.named_parameters())
    sizes = [base[n.name].numel() for n in nodes]

    def call(flat):
        p = dict(base)
        for n, chunk in zip(nodes, torch.split(flat, sizes)):
            p[n.name] = chunk.view_as(base[n.name])
        return fn(p)
    theta = torch.cat([base[n.name].detach().reshape(-1) for n in nodes])
    return call, theta


def exact_hessian(spec, nodes):
    x, y = next(spec.batches())
    call, theta = flat_fn(spec, nodes, lambda p: spec.loss(_Fn(spec.model, p), (x, y)))
    return torch.autograd.functional.hessian(call, theta)


class _Fn:
    """A model-like callable running ``functional_call`` with given parameters."""

    def __init__(self, model, params):
        self.model, self.params = model, params

    def __call__(self, *args):
        return functional_call(self.model, self.params, args)


def exact_ggn(spec, nodes):
    batch = next(spec.batches())
    call, theta = flat_fn(spec, nodes, lambda p: spec.outputs(_Fn(spec.model, p), batch).reshape(-1))
    J = torch.autograd.functional.jacobian(call, theta)                       # (outputs, D)
    z = spec.outputs(spec.model, batch).detach()
    Hz = torch.autograd.functional.hessian(lambda zz: spec.output_loss(zz.view_as(z), batch), z.reshape(-1))
    return J.T @ Hz @ J


def flat(curv_dict, nodes):
    return torch.cat([curv_dict[n.name].reshape(-1).double() for n in nodes])


@pytest.mark.parametrize("kind, expected, per_example, repeats", [
    ("mse", "diagonal", True, 60), ("mse", "diagonal", False, 400), ("seq", "diagonal", True, 60), ("ce", "softmax", True, 60), ("metric", "per-example blocks", True, 60),
    ("coupled", "two-backward", None, 400)])
def test_monte_carlo_ggn_diagonal_converges(kind, expected, per_example, repeats):
    spec = make_spec(kind, repeats=repeats)
    ctx = context(spec)
    curv = diag_est.curvature_pass(ctx, "ggn", "diag", per_example=per_example)
    true = exact_ggn(make_spec(kind), ctx.nodes).diagonal()
    est = flat(curv.diag, ctx.nodes)
    assert curv.stats["output_hessian"] == expected
    assert curv.stats["per_example"] == bool(per_example)
    assert curv.samples == 16 * repeats and curv.batches == repeats
    rel = (est - true).norm() / true.norm()
    assert rel < 0.15, rel
    assert bool((est >= 0).all())
    # a couple of samples are far off: the test can fail
    few = diag_est.curvature_pass(context(make_spec(kind, repeats=1)), "ggn", "diag", per_example=per_example)
    assert (flat(few.diag, ctx.nodes) - true).norm() / true.norm() > rel


def test_empirical_diagonal_per_example_and_per_batch():
    spec = make_spec("mse", perturb=0.3)
    ctx = context(spec)
    x, y = next(spec.batches())
    grads = torch.autograd.grad(spec.loss(spec.model, (x, y)), ctx.params)
    batch = diag_est.curvature_pass(ctx, "empirical", "diag", per_example=False)
    per_ex = diag_est.curvature_pass(context(spec), "empirical", "diag")
    assert per_ex.stats["per_example"] and not batch.stats["per_example"]
    # per-example gradients of the batch-mean loss: ∂(ℓ_n / 16)
    per = [torch.autograd.grad(spec.loss(spec.model, (x[k:k + 1], y[k:k + 1])) / 16, ctx.params) for k in range(16)]
    for j, (n, g) in enumerate(zip(ctx.nodes, grads)):
        torch.testing.assert_close(batch.diag[n.name].double(), 16 * g.square(), rtol=1e-5, atol=1e-9)
        torch.testing.assert_close(batch.grad[n.name].double(), g, rtol=1e-5, atol=1e-9)
        fisher = 16 * sum(p[j].square() for p in per)
        torch.testing.assert_close(per_ex.diag[n.name].double(), fisher, rtol=1e-5, atol=1e-9)
        torch.testing.assert_close(per_ex.grad[n.name].double(), g, rtol=1e-5, atol=1e-9)


def test_hutchinson_diagonal_converges_to_hessian_diagonal():
    spec = make_spec("mse", repeats=400, perturb=0.3)
    ctx = context(spec)
    curv = diag_est.curvature_pass(ctx, "hutchinson", "diag")
    true = exact_hessian(make_spec("mse", perturb=0.3), ctx.nodes).diagonal()
    est = flat(curv.diag, ctx.nodes)
    rel = (est - true.clamp_min(0)).norm() / true.norm()
    assert rel < 0.2, rel


def test_lanczos_matches_dense_eigenvalues():
    spec = make_spec("mse", perturb=0.3)
    ctx = context(spec)
    D = sum(p.numel() for p in ctx.params)
    H = exact_hessian(spec, ctx.nodes)
    true = torch.linalg.eigvalsh(H).flip(0)
    full = lanczos_est.estimate(ctx, steps=D)
    torch.testing.assert_close(full.eigvals.double(), true, rtol=1e-6, atol=1e-8)
    short = lanczos_est.estimate(context(spec), steps=14)
    torch.testing.assert_close(short.eigvals[:3].double(), true[:3], rtol=1e-5, atol=1e-7)
    Q = short.eigvecs.double()
    torch.testing.assert_close(Q @ Q.T, torch.eye(Q.shape[0], dtype=torch.float64), atol=1e-8, rtol=0)
    # Ritz pairs: Q H Qᵀ is diagonal with the eigenvalues
    torch.testing.assert_close(Q @ H @ Q.T, torch.diag(short.eigvals.double()), atol=1e-6, rtol=1e-5)
    # the gradient from the first pass, and λ_rest from the one-probe trace estimate
    x, y = next(spec.batches())
    g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(spec.loss(spec.model, (x, y)), ctx.params)])
    torch.testing.assert_close(flat(short.grad, ctx.nodes), g, rtol=1e-5, atol=1e-9)
    trace = short.stats["trace_estimate"]
    assert short.stats["lam_rest_raw"] == pytest.approx((trace - float(short.eigvals.sum())) / (D - 14), rel=1e-6)


def test_kfac_equals_exact_kronecker_factors_on_linear_layers():
    torch.manual_seed(1)
    model = TinyMLP(d_in=4, width=4, d_out=4, act=False).double()
    spec = make_spec("mse", repeats=800, model=model)
    ctx = context(spec)
    curv = kfac_est.estimate(ctx, "ggn")
    x, _ = next(spec.batches())
    with torch.no_grad():
        h0 = torch.tanh(model.inp(x))
        h1 = model.hidden[0](h0)
    n0, n1 = ctx.nodes[0].name, ctx.nodes[1].name
    torch.testing.assert_close(curv.in_cov[n0].double(), h0.T @ h0 / len(x), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(curv.in_cov[n1].double(), h1.T @ h1 / len(x), rtol=1e-5, atol=1e-7)
    # output loss mean((z - y)²) over 16×4 entries: H_z = 2/64 I per entry; summed over 16 examples = I/2 at the
    # last hidden layer's output pushed through the linear head: B = Woutᵀ (I/2) Wout
    W = model.out.weight.detach()
    B_exact = W.T @ W / 2
    torch.testing.assert_close(curv.out_cov[n1].double(), B_exact, atol=0.06 * float(B_exact.abs().max()), rtol=0)
    # for a linear network the GGN block of a layer is exactly G ⊗ B here (every example has the same output
    # Hessian): compare with the dense GGN (row-major flattening -> kron(B, G))
    ggn = exact_ggn(make_spec("mse", model=model), ctx.nodes)
    block = ggn[16:32, 16:32]
    kron = torch.kron(curv.out_cov[n1].double(), curv.in_cov[n1].double())
    assert (kron - block).norm() / block.norm() < 0.08
    torch.testing.assert_close(curv.diag[n1].double(),
                               torch.outer(curv.out_cov[n1].diagonal(), curv.in_cov[n1].diagonal()).double())


def test_kfac_rejects_reused_module():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(3, 3), nn.Linear(3, 3)])

        def forward(self, x):
            return self.layers[1](self.layers[0](self.layers[0](x)))
    model = Twice().double()
    spec = as_spec({"model": model, "batches": [torch.randn(4, 3, dtype=torch.float64)],
                    "loss": lambda m, b: m(b).pow(2).mean()})
    from geoshare_opt.errors import InputError
    with pytest.raises(InputError, match="called more than once"):
        kfac_est.estimate(context(spec), "empirical")
    assert not any(m._forward_hooks for m in model.modules())


def test_diag_falls_back_to_batch_squares_when_a_layer_is_reused():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(3, 3), nn.Linear(3, 3)])

        def forward(self, x):
            return self.layers[1](self.layers[0](self.layers[0](x)))
    model = Twice().double()
    spec = as_spec({"model": model, "batches": [torch.randn(4, 3, dtype=torch.float64)],
                    "loss": lambda m, b: m(b).pow(2).mean()})
    curv = diag_est.curvature_pass(context(spec), "empirical", "diag")
    assert curv.stats["per_example"] is False and curv.samples == 4
    assert not any(m._forward_hooks for m in model.modules())


def test_input_covariances_shared_by_layers_reading_the_same_tensor():
    """q, k and v read one tensor: one x xᵀ serves all three, and every covariance equals the direct one."""
    from geoshare_opt.frontend.hooks import LinearCovariances

    class QKV(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v, self.o = (nn.Linear(6, 6) for _ in range(4))

        def forward(self, x):
            h = self.q(x) + self.k(x) * self.v(x)
            return self.o(torch.tanh(h))

    from geoshare_opt.frontend.discovery import NodeInfo
    torch.manual_seed(0)
    model = QKV()
    nodes = [NodeInfo(f"{m}.weight", "w:6x6", "w", 36, None, (6, 6), m) for m in "qkvo"]
    seen = {n.name: [] for n in nodes}
    handles = [getattr(model, n.name[0]).register_forward_hook(
        lambda m, a, o, n=n.name: seen[n].append(a[0].reshape(-1, 6).clone())) for n in nodes]
    batches = [torch.randn(3, 5, 6) for _ in range(2)]
    products = []
    with LinearCovariances(model, nodes, inputs=True) as hooks, torch.no_grad():
        real = hooks._increments.__setitem__
        hooks._increments = type("D", (dict,), {"__setitem__": lambda d, k, v: (products.append(k),
                                                                                 dict.__setitem__(d, k, v))})()
        for x in batches:
            hooks.new_batch()
            model(x)
        cov = hooks.input_covariances()
    for h in handles:
        h.remove()
    assert real is not None and len(products) == 2 * len(batches)       # q/k/v once, o once, per batch
    for n in nodes:
        x = torch.cat(seen[n.name])
        torch.testing.assert_close(cov[n.name], x.T @ x / x.shape[0])


def test_lanczos_kept_graphs_give_the_same_answer_within_a_memory_budget():
    spec = make_spec("mse", perturb=0.3, repeats=3)   # three batches
    runs = {}
    for budget in (0, 1, None):                     # recompute every step / nothing fits / default (all kept)
        runs[budget] = lanczos_est.estimate(context(spec), steps=6, graph_budget=budget)
    size = runs[None].stats["graph_bytes_max"]
    assert size > 0 and runs[None].stats["graphs_kept"] == f"{runs[None].batches}/{runs[None].batches}"
    assert runs[0].stats["graphs_kept"].startswith("0/") and runs[1].stats["graphs_kept"].startswith("0/")
    assert runs[None].stats["graphs_kept_bytes"] <= runs[None].stats["graph_budget"]
    partial = lanczos_est.estimate(context(spec), steps=6, graph_budget=size)      # room for one batch's graph
    runs["partial"] = partial
    assert partial.stats["graphs_kept"] == "1/3"
    for key, curv in runs.items():
        torch.testing.assert_close(curv.eigvals, runs[0].eigvals, rtol=1e-12, atol=0, msg=str(key))
        torch.testing.assert_close(curv.eigvecs, runs[0].eigvecs, rtol=1e-12, atol=0, msg=str(key))
        torch.testing.assert_close(flat(curv.grad, context(spec).nodes), flat(runs[0].grad, context(spec).nodes))


def test_graph_bytes_counts_the_saved_activations_not_the_weights():
    from geoshare_opt.frontend.estimators.diag import _grads
    model = nn.Linear(50, 40).double()
    x = torch.randn(30, 50, dtype=torch.float64)
    own = {p.untyped_storage().data_ptr() for p in model.parameters()}
    gs = _grads(torch.tanh(model(x)).square().sum(), list(model.parameters()), create_graph=True)
    counted = lanczos_est.graph_bytes(gs, own)
    # at least the input and the tanh output (30 x 50 and 30 x 40 doubles), far less than another copy of x per op
    assert 8 * (30 * 50 + 30 * 40) <= counted <= 8 * 10 * (30 * 50 + 30 * 40)
