"""Exact pricing: Gray-code enumeration against branch and bound, by the number of items (``pricing.ENUM_MAX_ITEMS``).

    python benchmarks/solvers/colgen/pricing_crossover.py

Pricing problems: tiny-gpt's ``attn.q`` (24 layers), the root master LP's duals at every k = 23..2 after the
engine has solved that k (so the duals are the ones exact pricing meets when it proves a root), each cut to its m
items of least linear term, m = 8..24; and dense signed random problems (N(0, 1) weights, linear term
``−0.3 · Σ|Q| + N(0, 1)``). Each kernel runs once per problem (after a warm-up call); mean milliseconds per call.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from geoshare_opt import Instance
from geoshare_opt.solvers.colgen import TypeEngine
from geoshare_opt.solvers.colgen import _kernels
from geoshare_opt.solvers.colgen.pricing import NodeProblem, Rules

REAL = Path(__file__).resolve().parents[1] / "real" / "instances" / "tiny-gpt-tie.json"


def tiny_gpt_problems() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    block = Instance.load(REAL).part("attn.q:64x64")
    engine = TypeEngine(block.W, block.hard)
    out = []
    for k in range(block.n - 1, 1, -1):
        engine.solve(k)
        engine.lp.set_k(k)
        engine.lp.set_allowed(np.ones(len(engine.pool), dtype=bool))
        _, _, _, pi, _ = engine.lp.solve()
        node = NodeProblem(engine.W, engine.hard, Rules())
        out.append((node.Q, node.linear(pi), node.conflict))
    return out


def signed_problems(m: int, count: int = 10, seed: int = 1) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        Q = np.triu(rng.normal(size=(m, m)), 1)
        Q = Q + Q.T
        out.append((Q, -0.3 * np.abs(Q).sum(1) + rng.normal(size=m), np.zeros((m, m), dtype=np.uint8)))
    return out


def timed(problems, m: int | None) -> tuple[float, float, float]:
    """Mean ms of enumeration and branch and bound, and mean search nodes, on ``problems`` cut to ``m`` items."""
    te = tb = nodes = 0.0
    for Q, d, conf in problems:
        idx = np.argsort(d)[:m] if m is not None else np.arange(len(d))
        Qm, dm, cm = Q[np.ix_(idx, idx)].copy(), d[idx].copy(), conf[np.ix_(idx, idx)].copy()
        t0 = time.perf_counter()
        _, _, least = _kernels.enumerate_best(Qm, dm, cm, 24, np.inf)
        te += time.perf_counter() - t0
        t0 = time.perf_counter()
        _, _, least_bb, _, n = _kernels.branch_and_bound_best(Qm, dm, cm, 24, np.inf, 0)
        tb += time.perf_counter() - t0
        nodes += n
        assert abs(least - least_bb) <= 1e-9 * max(1.0, abs(least))
    k = len(problems)
    return 1000 * te / k, 1000 * tb / k, nodes / k


def main() -> None:
    real = tiny_gpt_problems()
    timed(real[:1], 4)                      # compile / load the kernels outside the measurement
    print("| problems | items m | enumeration ms | branch and bound ms | search nodes |")
    print("|---|---|---|---|---|")
    for m in (8, 12, 14, 16, 20, 24):
        e, b, n = timed(real, m)
        print(f"| tiny-gpt attn.q duals | {m} | {e:.2f} | {b:.2f} | {n:.0f} |")
    for m in (8, 12, 14, 16, 20, 24):
        e, b, n = timed(signed_problems(m), None)
        print(f"| signed random | {m} | {e:.2f} | {b:.2f} | {n:.0f} |")


if __name__ == "__main__":
    main()
