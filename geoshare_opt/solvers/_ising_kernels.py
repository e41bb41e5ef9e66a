"""Compiled annealing sweep for the plain K = 2 case (numba, ``cache=True``): one type, two classes, no hard edges,
no parameter cap, i.e. an Ising spin glass / Max-Cut. ``anneal`` dispatches here only for exactly that structure.

Instead of the generic (n, K) gain table it keeps one flip gain per node, ``gain[v]`` = objective change if v
changes class (= G[v, other] - G[v, own] of ``_anneal_kernels``), so an attempt reads one contiguous entry and a flip
updates each neighbour with one add. With integer weights the gains are integers (``gain`` is then an int64 array)
and the acceptance test compares 53 random bits against a per-sweep table of exp(-d/T) * 2^53, with no float
conversion and no ``exp`` per attempt. The random stream is the same xorshift64* as ``_anneal_kernels`` (seeded,
reproducible); attempts with gain <= 0 draw no random number, as in the generic sweep.
"""
from __future__ import annotations

import numpy as np
from ._jit import njit

from ._anneal_kernels import _accepts, _next

_S11 = np.uint64(11)
_TWO53 = 9007199254740992.0


@njit()
def flip_gains(loc, indptr, nbr, wt, gain):
    """gain[v] = sum of w(v, u) over u in the other class - over u in v's class (the flip's objective change)."""
    for v in range(loc.shape[0]):
        s = 0
        a = loc[v]
        for p in range(indptr[v], indptr[v + 1]):
            if loc[nbr[p]] == a:
                s -= wt[p]
            else:
                s += wt[p]
        gain[v] = s


@njit(inline="always")
def _flip(v, loc, gain, indptr, nbr, wt):
    a = loc[v]
    for p in range(indptr[v], indptr[v + 1]):
        u = nbr[p]
        # v leaves class a: an edge to u in a stops counting (moving u later would cost w more), an edge to u in
        # the other class starts counting (moving u later saves w more)
        # (branch-free: the class test is a coin flip at high temperature and mispredicts)
        gain[u] += 2 * wt[p] * (1 - 2 * (loc[u] ^ a))
    gain[v] = -gain[v]
    loc[v] = 1 - a


@njit()
def ising_sweeps(loc, gain, indptr, nbr, wt, t_a, t_b, n_sweeps, rng, obj, best_obj, best_loc, thr, hub_scale):
    """``n_sweeps`` Metropolis sweeps over all nodes in index order at temperatures falling geometrically from
    ``t_a`` to ``t_b`` (same schedule and bookkeeping as ``_anneal_kernels.anneal_sweeps``). ``thr``: empty (real
    weights: one ``exp`` per uphill attempt) or, for integer gains, a scratch array: gains below its length read
    the table, larger ones (hubs) use ``exp`` as the generic sweep does. ``hub_scale``: empty, or per node the
    factor on the temperature that node sees (1 for all but hubs; see ``hubs.hub_scales``)."""
    n = loc.shape[0]
    ratio = t_b / t_a
    ne = thr.shape[0]
    scaled = hub_scale.shape[0] > 0
    for s in range(n_sweeps):
        inv_t = 1.0 / (t_a * ratio ** (s / n_sweeps))
        for j in range(ne):
            thr[j] = np.int64(np.exp(-j * inv_t) * _TWO53)
        for v in range(n):
            d = gain[v]
            if d > 0:
                if scaled and hub_scale[v] != 1.0:
                    if not _accepts(d * inv_t / hub_scale[v], rng):
                        continue
                elif d < ne:
                    if np.int64(_next(rng) >> _S11) >= thr[np.int64(d)]:
                        continue
                elif not _accepts(d * inv_t, rng):
                    continue
            _flip(v, loc, gain, indptr, nbr, wt)
            obj[0] += d
        if obj[0] < best_obj[0] - 1e-9 * max(1.0, abs(best_obj[0])):
            best_obj[0] = obj[0]
            best_loc[:] = loc
