"""Shared-basis pair weights (frontend/basis_pairs.py): the fast path (no square roots, smaller Gram side, float32
products) against a direct float64 computation, and the covariances that used to break it (singular, zero, a dead
input feature, non-finite; batched LU with several threads)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

from geoshare_opt.errors import InputError  # noqa: E402
from geoshare_opt.frontend.basis_pairs import basis_weights, damped  # noqa: E402
from geoshare_opt.frontend.discovery import NodeInfo  # noqa: E402


def make_type(d_out, d_in, n=4, tokens=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    nodes = [NodeInfo(f"l.{i}.w", f"w:{d_out}x{d_in}", "w", d_out * d_in, i, (d_out, d_in), f"l.{i}")
             for i in range(n)]
    W = {nd.name: torch.randn(d_out, d_in, generator=g, dtype=torch.float64) for nd in nodes}
    G = {}
    for nd in nodes:   # anisotropic inputs, as in real layers
        x = torch.randn(tokens or 3 * d_in, d_in, generator=g, dtype=torch.float64)
        x = x * torch.logspace(0.5, -1.5, d_in, dtype=torch.float64)
        G[nd.name] = x.T @ x / x.shape[0]
    return nodes, W, G


def sqrtm(M):
    lam, vec = torch.linalg.eigh(M)
    return vec @ torch.diag(lam.clamp_min(0).sqrt()) @ vec.T


def tail(sq, r):
    r0 = int(r)
    return float(sq[r0:].sum()) - ((r - r0) * float(sq[r0]) if r0 < len(sq) else 0.0)


def reference(nodes, W, G, k):
    """Direct float64 computation from the definition: SVD of the whitened stacked pair, refit by least squares
    against each member's own covariance, separate bases by truncated SVD at the fractional rank."""
    d_out, d_in = nodes[0].shape
    G = {name: damped(c) for name, c in G.items()}
    r_sep = k * (d_in + 2 * d_out) / (2 * (d_in + d_out))
    S = {name: sqrtm(c) for name, c in G.items()}
    sep = {name: tail(torch.linalg.svdvals(W[name] @ S[name]) ** 2, r_sep) for name in W}
    out = {}
    names = [nd.name for nd in nodes]
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            u, v = names[a], names[b]
            Sbar = sqrtm((G[u] + G[v]) / 2)
            _, _, Vh = torch.linalg.svd(torch.cat([W[u], W[v]]) @ Sbar)
            basis = torch.linalg.solve(Sbar, Vh[:k].T)                    # (d_in, k), original coordinates
            shared = 0.0
            for name in (u, v):
                A = basis.T @ S[name]
                coef = torch.linalg.lstsq(A.T, (W[name] @ S[name]).T).solution.T
                shared += float((((W[name] - coef @ basis.T) @ S[name]) ** 2).sum())
            out[(u, v)] = shared - sep[u] - sep[v]
    return out


def check_against_reference(nodes, W, G, k, precision, rel):
    edges, ranks = basis_weights(nodes, W, G, rank=k, precision=precision)
    assert list(ranks.values()) == [k]
    ref = reference(nodes, W, G, k)
    assert [(u, v) for u, v, _ in edges] == list(ref)
    energy = max(float((W[n] @ G[n] * W[n]).sum()) for n in W)      # total whitened energy of a member
    scale = max(max(abs(w) for w in ref.values()), 1e-3 * energy)
    for u, v, w in edges:
        assert w == pytest.approx(ref[(u, v)], abs=rel * scale), (u, v)
    return edges, ref


@pytest.mark.parametrize("precision,rel", [(torch.float64, 1e-7), (torch.float32, 1e-4)])
@pytest.mark.parametrize("d_out,d_in,k", [
    (6, 16, 5),     # 2 d_out <= d_in: output-side Gram, fractional separate rank
    (16, 6, 4),     # 2 d_out > d_in: input side
    (10, 10, 7),    # square (attention): input side
    (5, 12, 10),    # shared rank = 2 d_out: the pair is reproduced exactly, and so is each member separately
])
def test_fast_path_matches_direct_float64_computation(d_out, d_in, k, precision, rel):
    nodes, W, G = make_type(d_out, d_in, seed=d_out * 100 + d_in)
    edges, ref = check_against_reference(nodes, W, G, k, precision, rel)
    if k < 2 * d_out:
        assert len({round(w, 6) for _, _, w in edges}) > 1      # the pairs really differ
    else:
        assert all(abs(w) < 1e-6 for _, _, w in edges)


def test_rank_deficient_covariances_fewer_tokens_than_inputs():
    for d_out, d_in in ((4, 12), (12, 6)):
        nodes, W, G = make_type(d_out, d_in, tokens=3, seed=7)      # rank-3 covariances
        edges, _ = check_against_reference(nodes, W, G, 3, torch.float64, 1e-6)
        assert all(torch.isfinite(torch.tensor(w)) for _, _, w in edges)


def test_low_rank_anisotropic_covariances_in_float32():
    """Fewer tokens than inputs and a wide spectrum: float32 rounding leaves negative eigenvalues larger than the
    ridge; the factorisation must still succeed and agree with the float64 computation."""
    for d_out, d_in in ((48, 32), (8, 40)):
        nodes, W, G = make_type(d_out, d_in, tokens=6, seed=13)
        for name in G:
            G[name] = G[name] * 1e3
        edges32, _ = basis_weights(nodes, W, G, rank=5, precision=torch.float32)
        edges64, _ = basis_weights(nodes, W, G, rank=5, precision=torch.float64)
        scale = max(abs(w) for _, _, w in edges64)
        for (_, _, a), (_, _, b) in zip(edges32, edges64):
            assert abs(a - b) <= 1e-2 * scale


def test_dead_input_feature_and_a_layer_that_never_saw_input():
    for d_out, d_in in ((4, 12), (12, 6)):
        nodes, W, G = make_type(d_out, d_in, seed=11)
        dead = nodes[1].name
        G[dead][:, 2] = 0                 # input feature 2 is always zero in this layer
        G[dead][2, :] = 0
        G[nodes[3].name].zero_()          # this layer never received input: any approximation of it is free
        for precision, rel in ((torch.float64, 1e-6), (torch.float32, 1e-4)):
            edges, ref = check_against_reference(nodes, W, G, 3, precision, rel)
            assert all(torch.isfinite(torch.tensor(w)) for _, _, w in edges)
        # a layer with no input costs nothing itself, so the pair costs at least the partner's best rank-k error
        # over its separate one (more: the basis is found in the pooled metric and spends some rank on the other)
        u = nodes[0].name
        r_sep = 3 * (d_in + 2 * d_out) / (2 * (d_in + d_out))
        sq = torch.linalg.svdvals(W[u] @ sqrtm(damped(G[u]))) ** 2
        assert ref[(u, nodes[3].name)] >= tail(sq, 3) - tail(sq, r_sep) - 1e-9


@pytest.mark.parametrize("what", ["weight", "cov"])
def test_non_finite_input_names_the_layer(what):
    nodes, W, G = make_type(4, 8)
    bad = nodes[2].name
    (W if what == "weight" else G)[bad][0, 0] = float("nan")
    with pytest.raises(InputError, match=bad.replace(".", r"\.")):
        basis_weights(nodes, W, G, rank=3)


def test_missing_covariance_is_an_input_error():
    nodes, W, G = make_type(4, 8)
    del G[nodes[0].name]
    with pytest.raises(InputError, match="no input covariance"):
        basis_weights(nodes, W, G, rank=3)
    with pytest.raises(InputError, match="input covariances"):
        basis_weights(nodes, W, None, rank=3)


def test_several_threads_and_sizes_where_batched_lu_hangs():
    """torch's CPU build fails on batched LU (``torch.linalg.solve`` on a stack) above ~150 rows with more than one
    thread ("Parameter 6 was incorrect on entry to DLASWP", then a hang); the pair weights must not use it."""
    code = textwrap.dedent("""
        import torch
        torch.set_num_threads(2)
        from geoshare_opt.frontend.basis_pairs import basis_weights
        from geoshare_opt.frontend.discovery import NodeInfo
        g = torch.Generator().manual_seed(0)
        for d_out, d_in in ((80, 160), (160, 160)):
            nodes = [NodeInfo(f"l.{i}.w", "t", "w", d_out * d_in, i, (d_out, d_in), f"l.{i}") for i in range(2)]
            W = {n.name: torch.randn(d_out, d_in, generator=g) for n in nodes}
            G = {}
            for n in nodes:
                x = torch.randn(320, d_in, generator=g)
                G[n.name] = x.T @ x / 320
            edges, _ = basis_weights(nodes, W, G, ratio=0.3)
            assert len(edges) == 1 and all(w == w for _, _, w in edges)
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]
    assert "DLASWP" not in proc.stderr and "SLASWP" not in proc.stderr


def test_no_lu_based_solver_is_called(monkeypatch):
    """The same guard in-process: every LU-based routine is made to fail."""
    def refuse(*args, **kwargs):
        raise AssertionError("LU-based solve called")
    for name in ("solve", "solve_ex", "inv", "inv_ex", "lu_factor", "lu_factor_ex", "lstsq", "pinv"):
        monkeypatch.setattr(torch.linalg, name, refuse)
    for d_out, d_in in ((4, 12), (12, 6)):
        nodes, W, G = make_type(d_out, d_in)
        edges, _ = basis_weights(nodes, W, G, rank=3)
        assert len(edges) == 6


def test_whitening_factor_absorbs_rounding_size_negative_eigenvalues_but_refuses_indefinite():
    from geoshare_opt.frontend.basis_pairs import _cholesky
    g = torch.Generator().manual_seed(3)
    Q, _ = torch.linalg.qr(torch.randn(20, 20, generator=g, dtype=torch.float64))
    lam = torch.logspace(3, -3, 20, dtype=torch.float64)
    lam[-1] = -1e-4                                    # what float32 rounding leaves below a low-rank covariance
    L = _cholesky((Q * lam) @ Q.T)
    assert bool(torch.isfinite(L).all())
    lam[-1] = -50.0                                    # a real negative direction: not a covariance
    with pytest.raises(InputError, match="not positive semi-definite"):
        _cholesky((Q * lam) @ Q.T)
