"""Compile (or load) every numba kernel of the solvers once, outside any time limit.

The kernels are cached on disk (``cache=True``) but compiled on first use after installation or an upgrade, and a
compile cannot be interrupted by a deadline: on a cold cache the first 10 s solve of a Gset graph took 17 s and
never started annealing (benchmarks/solvers/gset/TUNING.md). ``scripts/setup.sh`` runs this once
(``geoshare-opt warm-up``), so installed that way the first timed solve keeps its limit.
"""
from __future__ import annotations

import time

import numpy as np

from ..instance import Instance
from ..options import SolveOptions
from .base import SolveContext


def _spin_glass(n: int, rng: np.random.Generator, hubs: int = 0, k: int = 2, **budget) -> Instance:
    edges = {}
    for i, j in rng.integers(0, n, size=(4 * n, 2)):
        if i != j:
            edges[(min(i, j), max(i, j))] = float(rng.choice([-1.0, 1.0]))
    for h in range(hubs):   # nodes joined to half the graph: the hubs' temperature and the population
        for j in range(hubs, n, 2):
            edges[(h, j)] = float(rng.choice([-1.0, 1.0]))
    nodes = [{"id": str(i), "type": "t" if k == 2 or i % 2 else "u", "params": 1 + i % 3} for i in range(n)]
    return Instance.build(nodes, [(str(i), str(j), w) for (i, j), w in edges.items()], k, name="warm-up", **budget)


def compile_kernels(seed: int = 0) -> float:
    """Solve a few small instances so that every kernel path runs once: the plain K = 2 sweep (one chain, hubs and
    a population, time-driven and counted rounds, descent, kick, BLS), the generic sweep with hard edges and a
    parameter cap, TabuCol, the greedy colourings, colgen's kernels (tests/test_cli.py checks that each kernel got
    compiled). Returns the seconds it took (a few seconds on a warm cache). The backends run directly (no checking of their answers:
    only the compiling matters here)."""
    from .anneal import AnnealBackend
    from .dsatur import DsaturBackend
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    plain = _spin_glass(300, rng)
    counted = {"sweeps": 40, "rounds": 2, "bls_iters": 20}
    _run(AnnealBackend, plain, seed, native=counted)
    _run(AnnealBackend, plain, seed, time_limit=0.3)
    _run(AnnealBackend, _spin_glass(300, rng, hubs=3), seed, time_limit=0.3)
    generic = _spin_glass(120, rng, k=4, max_params=40)
    nodes = [{"id": n.id, "type": n.type, "params": n.params} for n in generic.nodes]
    edges = [(e.u, e.v, "hard" if e.w > 0 and i % 5 == 0 else e.w) for i, e in enumerate(generic.edges)]
    hard = Instance.build(nodes, edges, 4, max_params=40, name="warm-up")
    _run(AnnealBackend, hard, seed, native=counted)
    _run(AnnealBackend, hard, seed, time_limit=0.3)
    _run(DsaturBackend, hard, seed)
    # a hard 5-clique in 3 classes: no greedy start is conflict-free, so TabuCol runs (and finds none)
    clique = Instance.build([{"id": str(i), "type": "t"} for i in range(5)],
                            [(str(i), str(j), "hard") for i in range(5) for j in range(i + 1, 5)], 3, name="warm-up")
    _run(AnnealBackend, clique, seed, native={"tabu_iters": 1000})
    _compile_colgen(rng)
    return time.perf_counter() - t0


def _compile_colgen(rng: np.random.Generator) -> None:
    """colgen's pricing kernels (enumeration up to 12 groups, branch and bound beyond: 16 nodes) and the tabu
    search it runs on open points."""
    from .colgen import TypeEngine
    from .colgen._local_search import iterated_tabu_search
    W = np.triu(rng.random((16, 16)), 1)
    W, hard = W + W.T, np.zeros((16, 16), dtype=bool)
    engine = TypeEngine(W, hard)
    for k in (4, 3):
        engine.solve(k)
    iterated_tabu_search(W, hard, np.arange(16, dtype=np.int64) % 3, 3, 2, 10, 0)


def _run(backend_cls, instance: Instance, seed: int, time_limit: float | None = None, native: dict | None = None):
    options = SolveOptions(time_limit=time_limit, seed=seed, threads=1, native=dict(native or {}))
    return backend_cls().run(instance, options, SolveContext(instance, options))
