"""Shared-basis pair weights (``--mode basis``) on a real model: time per type of the fast path in float32 and in
float64, and of the previous direct algorithm (square roots and d_in × d_in eigenproblems per pair, float64), with
the differences between them.

    python benchmarks/frontend/run_basis_pairs.py                       # minilm, 256 calibration sequences, ratio 0.3
    python benchmarks/frontend/run_basis_pairs.py --samples 64 --ratio 0.5

Input covariances come from one forward pass over the calibration data (the same hooks ``analyze`` uses). Writes
``results/basis-pairs-<model>.json`` and prints one JSON line per type. Uses the public front-end modules only.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from scipy.stats import spearmanr

from geoshare_opt.frontend import discover
from geoshare_opt.frontend.basis_pairs import basis_weights
from geoshare_opt.frontend.discovery import group_by_type
from geoshare_opt.frontend.hooks import LinearCovariances
from geoshare_opt.specs import load_spec

HERE = Path(__file__).resolve().parent


def direct_weights(sub, weights, cov, k) -> list[float]:
    """The previous implementation's algebra, float64, as the exact reference: per pair, the symmetric square root
    of Ḡ (eigendecomposition of d_in × d_in), the basis from the eigenvectors of the d_in × d_in whitened Gram, and
    each member's refit by a linear solve (one matrix at a time: batched LU hangs with several threads)."""
    from geoshare_opt.frontend.basis_pairs import damped, tail_energy

    def sqrt_and_inv(G):
        lam, vec = torch.linalg.eigh(G)
        root = lam.clamp_min(0).sqrt()
        inv = torch.where(root > root.max() * 1e-6, 1 / root.clamp_min(1e-300), torch.zeros_like(root))
        return (vec * root) @ vec.T, (vec * inv) @ vec.T

    def refit(W, G, B):
        A = G @ B
        X = torch.linalg.solve(B.T @ A, (W @ A).T)
        return float(((W @ G) * W).sum() - ((W @ A) * X.T).sum())

    d_out, d_in = sub[0].shape
    r_sep = k * (d_in + 2 * d_out) / (2 * (d_in + d_out))
    W = [weights[n.name].double() for n in sub]
    G = [damped(cov[n.name].double()) for n in sub]
    sep = [tail_energy(torch.linalg.svdvals(w @ sqrt_and_inv(g)[0]).square(), r_sep) for w, g in zip(W, G)]
    out = []
    for a in range(len(sub)):
        for b in range(a + 1, len(sub)):
            S, S_inv = sqrt_and_inv(0.5 * (G[a] + G[b]))
            M = torch.cat([W[a], W[b]]) @ S
            _, vec = torch.linalg.eigh(M.T @ M)
            B = S_inv @ vec[:, -k:]
            out.append(refit(W[a], G[a], B) + refit(W[b], G[b], B) - sep[a] - sep[b])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--ratio", type=float, default=0.3)
    ap.add_argument("--no-direct", action="store_true", help="skip the previous (direct) algorithm")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    spec = load_spec(args.model, **({"n_calib": args.samples} if args.model == "minilm" else {}))
    model = spec.model.eval()
    nodes = discover(model)
    t0 = time.perf_counter()
    with LinearCovariances(model, nodes, inputs=True, why="mode 'basis'") as hooks, torch.no_grad():
        for batch in spec.batches():
            hooks.new_batch()
            spec.loss(model, batch)
        cov = hooks.input_covariances()
    cov_s = time.perf_counter() - t0
    params = dict(model.named_parameters())
    weights = {n.name: params[n.name].detach() for n in nodes}
    rows = []
    for t, idx in group_by_type(nodes).items():
        sub = [nodes[i] for i in idx]
        row = {"type": t, "pairs": len(idx) * (len(idx) - 1) // 2}
        got = {}
        for prec in (torch.float32, torch.float64):
            start = time.perf_counter()
            edges, ranks = basis_weights(sub, weights, cov, ratio=args.ratio, precision=prec)
            row[f"{str(prec)[6:]}_s"] = time.perf_counter() - start
            got[prec] = [w for _, _, w in edges]
        row["rank"] = ranks[t]
        a, b = torch.tensor(got[torch.float32]), torch.tensor(got[torch.float64])
        if not args.no_direct:
            start = time.perf_counter()
            ref = torch.tensor(direct_weights(sub, weights, cov, ranks[t]), dtype=torch.float64)
            row["direct_s"] = time.perf_counter() - start
            row["max_abs_diff_f64_direct"] = float((b - ref).abs().max())
        row["max_abs_diff"] = float((a - b).abs().max())
        row["max_abs_weight"] = float(b.abs().max())
        row["spearman_f32_f64"] = float(spearmanr(a, b).statistic)
        print(json.dumps(row), flush=True)
        rows.append(row)
    report = {"model": args.model, "samples": args.samples, "ratio": args.ratio, "threads": torch.get_num_threads(),
              "covariance_pass_s": cov_s, "rows": rows,
              "total_float32_s": sum(r["float32_s"] for r in rows),
              "total_float64_s": sum(r["float64_s"] for r in rows),
              "total_direct_s": sum(r.get("direct_s", 0.0) for r in rows) if not args.no_direct else None}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"basis-pairs-{args.model.replace('/', '_').replace(':', '_')}.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}))


if __name__ == "__main__":
    main()
