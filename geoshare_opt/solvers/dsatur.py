"""``dsatur``: the weighted, budgeted DSatur greedy (Brélaz 1979), deterministic, milliseconds on thousands of nodes.

Two passes of the compiled kernel (``_greedy_kernels.dsatur``):
1. plain DSatur on the hard edges of each type (soft weights ignored, no budget) gives ``need[t]``, the classes
   type t needs for its conflicts; it is what the main pass reserves for types not yet reached;
2. the weighted pass: the node with the highest saturation goes to the allowed class of its type with the least
   added weight (negative weights attract), a new class only when strictly cheaper and the global budget, the
   per-type caps and ``max_params`` leave room after the reservations.
If the weighted pass cannot place a node it says so (status none); every "feasible" answer is re-checked by the
driver's checker anyway.
"""
from __future__ import annotations

import numpy as np

from ..instance import Instance
from ..options import SolveOptions
from ..result import Termination
from .base import Backend, Outcome, SolveContext


def _caps(instance: Instance) -> np.ndarray:
    return np.array([instance.type_cap(t) for t in instance.types], dtype=np.int64)


def greedy_labels(instance: Instance, seed: int = 0) -> np.ndarray | None:
    """Feasible labels (global classes, node order) from the weighted budgeted DSatur, or None if it fails.
    ``seed`` > 0 breaks degree ties randomly (a different greedy order); 0 is the plain deterministic order."""
    labels, ok, _ = _run(instance, seed)
    return labels if ok else None


def unbounded_labels(instance: Instance, seed: int = 0) -> np.ndarray:
    """Plain DSatur on the hard edges with no budget (soft weights ignored): always a proper colouring, the
    start the annealing backend repairs with TabuCol when the budgeted greedy fails."""
    return _run(instance, seed, unbounded=True)[0]


def _run(instance: Instance, seed: int = 0, unbounded: bool = False):
    from ._csr import adjacency
    from ._greedy_kernels import dsatur

    adj = adjacency(instance)
    n = adj.n
    if n == 0:
        return np.zeros(0, dtype=np.int64), True, {}
    tiebreak = np.zeros(n) if seed == 0 else np.random.default_rng(seed).random(n) * 0.5
    cap = _caps(instance)
    big = np.full(adj.n_types, n, dtype=np.int64)
    ones = np.ones(adj.n_types, dtype=np.int64)
    b = instance.budget
    max_params = -1 if b.max_params is None else int(b.max_params)
    # pass 1: classes each type needs for its hard edges alone
    if adj.hptr[-1] > 0:
        hlab, _ = dsatur(adj.type_of, adj.n_types, adj.indptr, adj.nbr, adj.wt, adj.hptr, adj.hnbr, adj.params,
                         tiebreak, big, ones, n, -1, False)
        need = np.zeros(adj.n_types, dtype=np.int64)
        for t in range(adj.n_types):
            need[t] = len(np.unique(hlab[adj.type_of == t]))
        if unbounded:
            return hlab, True, {}
        need = np.maximum(np.minimum(need, cap), 1)
    else:
        if unbounded:
            return adj.type_of.copy(), True, {}
        need = ones
    lab, ok = dsatur(adj.type_of, adj.n_types, adj.indptr, adj.nbr, adj.wt, adj.hptr, adj.hnbr, adj.params,
                     tiebreak, cap, need, int(b.max_classes), max_params, True)
    return lab, bool(ok), {"need_per_type": need.tolist()}


class DsaturBackend(Backend):
    name = "dsatur"
    summary = "weighted, budgeted DSatur greedy (fast warm start, no bound)"
    exact = False
    gives_bound = False
    determinism = "deterministic"
    modules = ("numba",)
    distributions = ("numba",)

    def run(self, instance: Instance, options: SolveOptions, ctx: SolveContext) -> Outcome:
        unknown = set(options.native) - {"seed_order"}
        if unknown:  # a misspelt option must not be silently ignored (conformance suite)
            from ..errors import InputError
            raise InputError(f"dsatur: unknown native option {sorted(unknown)[0]!r} (known: seed_order)")
        seed = options.native.get("seed_order", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**63 - 1:
            from ..errors import InputError
            raise InputError(f"dsatur: native option seed_order must be a non-negative integer, got {seed!r}")
        labels, ok, stats = _run(instance, seed)
        if not ok:
            return Outcome(Termination.COMPLETED, None, None,
                           "greedy found no colouring within the budget (the instance may still be feasible)", stats)
        ctx.offer(labels)
        return Outcome(Termination.COMPLETED, labels, None, "", stats)
