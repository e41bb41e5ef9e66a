"""Pair weights equal direct evaluation of each estimator's quadratic model (tie) and a direct SVD computation
(shared basis)."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from geoshare_opt.frontend.discovery import NodeInfo  # noqa: E402
from geoshare_opt.frontend.estimators.common import Curvature  # noqa: E402
from geoshare_opt.frontend.pairs import basis_rank, basis_weights, damped, tie_weights  # noqa: E402

D_OUT, D_IN, N = 3, 4, 4


def nodes_and_weights(seed=0):
    g = torch.Generator().manual_seed(seed)
    nodes = [NodeInfo(f"blk.{i}.w", f"w:{D_OUT}x{D_IN}", "w", D_OUT * D_IN, i, (D_OUT, D_IN), f"blk.{i}")
             for i in range(N)]
    weights = {n.name: torch.randn(D_OUT, D_IN, generator=g, dtype=torch.float64) for n in nodes}
    return nodes, weights, g


def as_dict(edges):
    return {(u, v): w for u, v, w in edges}


def merge_moves(wi, wj, hi, hj):
    """Direct: the curvature-weighted mean, element by element, and each member's move to it."""
    s = hi + hj
    wbar = torch.where(s > 0, (hi * wi + hj * wj) / torch.where(s > 0, s, torch.ones_like(s)), (wi + wj) / 2)
    return wbar - wi, wbar - wj


def test_diag_tie_is_half_quadratic_form_at_weighted_mean_plus_gradient_term():
    nodes, W, g = nodes_and_weights()
    h = {n.name: torch.rand(D_OUT, D_IN, generator=g, dtype=torch.float64) for n in nodes}
    h[nodes[1].name][0, 0] = 0.0   # one entry flat in both members -> plain-mean fallback there
    h[nodes[2].name][0, 0] = 0.0
    grad = {n.name: 0.1 * torch.randn(D_OUT, D_IN, generator=g, dtype=torch.float64) for n in nodes}
    curv = Curvature("diag", "test", diag=h, samples=1, batches=1, spread=0.0, grad=grad)
    got = as_dict(tie_weights(nodes, W, curv, first_order=True))
    no_g = as_dict(tie_weights(nodes, W, curv, first_order=False))
    assert len(got) == N * (N - 1) // 2
    for (u, v), w in got.items():
        di, dj = merge_moves(W[u], W[v], h[u], h[v])
        second = 0.5 * float((h[u] * di ** 2).sum() + (h[v] * dj ** 2).sum())
        first = float((grad[u] * di).sum() + (grad[v] * dj).sum())
        assert w == pytest.approx(second + first, rel=1e-5, abs=1e-9)
        assert no_g[(u, v)] == pytest.approx(second, rel=1e-5, abs=1e-9)
        # the closed form of the docstring
        closed = 0.5 * float((h[u] * h[v] / (h[u] + h[v]).clamp_min(1e-300) * (W[u] - W[v]) ** 2).sum())
        assert second == pytest.approx(closed, rel=1e-6)


def test_kfac_tie_is_kronecker_quadratic_form():
    nodes, W, g = nodes_and_weights(1)
    G, B = {}, {}
    for n in nodes:
        a = torch.randn(D_IN, D_IN, generator=g, dtype=torch.float64)
        b = torch.randn(D_OUT, D_OUT, generator=g, dtype=torch.float64)
        G[n.name], B[n.name] = a @ a.T, b @ b.T
    diag = {n.name: torch.outer(B[n.name].diagonal(), G[n.name].diagonal()) for n in nodes}
    curv = Curvature("kfac", "test", diag=diag, samples=1, batches=1, spread=0.0, in_cov=G, out_cov=B)
    for (u, v), w in as_dict(tie_weights(nodes, W, curv)).items():
        di, dj = merge_moves(W[u], W[v], diag[u], diag[v])
        Hu, Hv = torch.kron(B[u], G[u]), torch.kron(B[v], G[v])   # row-major vec: Δ G Δᵀ B <-> kron(B, G)
        direct = 0.5 * float(di.reshape(-1) @ Hu @ di.reshape(-1) + dj.reshape(-1) @ Hv @ dj.reshape(-1))
        assert w == pytest.approx(direct, rel=1e-6)


def test_lanczos_tie_is_low_rank_plus_rest_model_at_plain_mean():
    nodes, W, g = nodes_and_weights(2)
    D = N * D_OUT * D_IN
    Q, _ = torch.linalg.qr(torch.randn(D, 5, generator=g, dtype=torch.float64))
    Q = Q.T                                                                  # (5, D) orthonormal rows
    lam = torch.tensor([5.0, 3.0, 2.0, 1.0, 0.5], dtype=torch.float64)
    lam_rest = 0.05
    grad_flat = 0.1 * torch.randn(D, generator=g, dtype=torch.float64)
    grad = {n.name: grad_flat[i * 12:(i + 1) * 12].view(D_OUT, D_IN) for i, n in enumerate(nodes)}
    curv = Curvature("lanczos", "hessian", diag={n.name: torch.ones(D_OUT, D_IN) for n in nodes}, samples=1,
                     batches=1, spread=0.0, grad=grad, eigvals=lam, eigvecs=Q, lam_rest=lam_rest)
    H = Q.T @ torch.diag(lam) @ Q + lam_rest * (torch.eye(D, dtype=torch.float64) - Q.T @ Q)
    index = {n.name: i for i, n in enumerate(nodes)}
    for (u, v), w in as_dict(tie_weights(nodes, W, curv)).items():
        delta = torch.zeros(D, dtype=torch.float64)
        mean = (W[u] + W[v]) / 2
        delta[index[u] * 12:(index[u] + 1) * 12] = (mean - W[u]).reshape(-1)
        delta[index[v] * 12:(index[v] + 1) * 12] = (mean - W[v]).reshape(-1)
        direct = 0.5 * float(delta @ H @ delta) + float(grad_flat @ delta)
        assert w == pytest.approx(direct, rel=1e-6)


def test_basis_weight_is_extra_whitened_error_of_shared_over_separate_bases():
    d = 8                                            # square: separate rank 3k/4 is an integer for k = 4
    g = torch.Generator().manual_seed(3)
    nodes = [NodeInfo(f"l.{i}.w", f"w:{d}x{d}", "w", d * d, i, (d, d), f"l.{i}") for i in range(3)]
    W = {n.name: torch.randn(d, d, generator=g, dtype=torch.float64) for n in nodes}
    G = {}
    for n in nodes:
        x = torch.randn(50, d, generator=g, dtype=torch.float64) * torch.logspace(0.5, -1, d, dtype=torch.float64)
        G[n.name] = x.T @ x / 50
    k = 4
    edges, ranks = basis_weights(nodes, W, G, rank=k)
    assert ranks == {f"w:{d}x{d}": k}

    def sqrtm(M):
        lam, vec = torch.linalg.eigh(M)
        return vec @ torch.diag(lam.clamp_min(0).sqrt()) @ vec.T

    def separate(name, r):           # best rank-r whitened error: explicit truncated SVD reconstruction
        S = sqrtm(G[name])
        U, s, Vh = torch.linalg.svd(W[name] @ S)
        approx = U[:, :r] @ torch.diag(s[:r]) @ Vh[:r]
        return float(((W[name] @ S - approx) ** 2).sum())

    G = {name: damped(c) for name, c in G.items()}   # the same tiny ridge the implementation adds
    for u, v, w in edges:
        Sbar = sqrtm((G[u] + G[v]) / 2)
        _, _, Vh = torch.linalg.svd(torch.cat([W[u], W[v]]) @ Sbar)
        basis = torch.linalg.solve(Sbar, Vh[:k].T)   # input-side basis in original coordinates
        shared = 0.0
        for name in (u, v):
            S = sqrtm(G[name])
            coef = torch.linalg.lstsq((basis.T @ S).T, (W[name] @ S).T).solution.T      # refit, own covariance
            shared += float((((W[name] - coef @ basis.T) @ S) ** 2).sum())
        direct = shared - separate(u, 3) - separate(v, 3)
        assert w == pytest.approx(direct, rel=1e-5, abs=1e-8)


def test_basis_rank_from_ratio_follows_basis_sharing_rule():
    assert basis_rank((384, 1536), None, 0.3) == math.floor(0.7 * 2 * 384 * 1536 / (1536 + 2 * 384))
    assert basis_rank((4, 4), 100, None) == 4            # capped by the input width


def test_first_order_term_only_for_layers_whose_gradient_is_significant():
    nodes, W, g = nodes_and_weights(4)
    h = {n.name: torch.rand(D_OUT, D_IN, generator=g, dtype=torch.float64) + 0.1 for n in nodes}
    grad = {n.name: torch.randn(D_OUT, D_IN, generator=g, dtype=torch.float64) for n in nodes}
    noisy = nodes[0].name                     # its mean gradient is within noise: no g·δ for it
    snr = {n.name: 10.0 for n in nodes} | {noisy: 1.2}
    curv = Curvature("diag", "empirical", diag=h, samples=100, batches=1, spread=0.0, grad=grad,
                     stats={"gradient_snr": snr})
    got = as_dict(tie_weights(nodes, W, curv))
    for (u, v), w in got.items():
        di, dj = merge_moves(W[u], W[v], h[u], h[v])
        second = 0.5 * float((h[u] * di ** 2).sum() + (h[v] * dj ** 2).sum())
        first = sum(float((grad[x] * d).sum()) for x, d in ((u, di), (v, dj)) if x != noisy)
        assert w == pytest.approx(second + first, rel=1e-5, abs=1e-9)


def test_gradient_snr_is_about_one_for_noise_and_large_for_a_real_gradient():
    from geoshare_opt.frontend.estimators.diag import gradient_snr
    g = torch.Generator().manual_seed(5)
    n = 400
    per = torch.randn(n, 50, generator=g, dtype=torch.float64)              # per-example gradients, zero mean
    for shift, low, high in ((0.0, 0.5, 2.0), (0.5, 50.0, float("inf"))):
        p = per + shift
        snr = gradient_snr({"w": p.mean(0)}, {"w": p.square().mean(0)}, n)["w"]
        assert low < snr < high
