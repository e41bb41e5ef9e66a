"""Compiled inner loops of the local-search backend (numba, ``cache=True``).

State shared by every kernel (local class indices, so a node only ever moves inside its own type):
  ``loc[v]``  the class of v among its type's ``kk[v]`` classes; the global label is ``lo[v] + loc[v]``;
  ``G[v, c]`` total soft weight from v to its neighbours in class c (the gain table of problem.md);
  ``H[v, c]`` number of hard neighbours of v in class c;
  CSR adjacency ``indptr/nbr/wt`` (soft, same-type, both directions) and ``hptr/hnbr`` (hard).
Moving v from a to b changes the objective by ``G[v, b] - G[v, a]`` (O(1)) and updates the tables in O(degree).

The class-parameter cap (``max_params``) is tracked exactly: ``cnt[g, r]`` counts members of global class g whose
parameter count has rank r (``pvals`` ascending), ``cmax[g]`` the largest such rank (-1 empty), ``stored[0]`` the
sum over classes of ``pvals[cmax]``. Kernels reject a move that would exceed the cap; with ``use_params`` false
these arrays are dummies and never touched.

The random generator is a xorshift64* in a one-element uint64 array, so runs are reproducible from the seed and
independent of numba's global generator.
"""
from __future__ import annotations

import numpy as np
from ._jit import njit

_M = np.uint64(2685821657736338717)
_S12 = np.uint64(12)
_S25 = np.uint64(25)
_S27 = np.uint64(27)
_S11 = np.uint64(11)
_S33 = np.uint64(33)
_INV53 = 1.0 / 9007199254740992.0


@njit(inline="always")
def _next(rng):
    x = rng[0]
    x ^= x >> _S12
    x ^= x << _S25
    x ^= x >> _S27
    rng[0] = x
    return x * _M


@njit(inline="always")
def _uniform(rng):
    return np.float64(_next(rng) >> _S11) * _INV53


@njit(inline="always")
def _accepts(x, rng):
    """Metropolis test of an uphill move with d / T = ``x`` by ``exp``; no random number drawn when x > 40."""
    return x <= 40.0 and _uniform(rng) < np.exp(-x)


@njit(inline="always")
def _below(rng, m):
    return np.int64((_next(rng) >> _S33) % np.uint64(m))


@njit()
def build_tables(loc, indptr, nbr, wt, hptr, hnbr, kmax):
    n = loc.shape[0]
    G = np.zeros((n, kmax), dtype=np.float64)
    H = np.zeros((n, kmax), dtype=np.int32)
    for v in range(n):
        for p in range(indptr[v], indptr[v + 1]):
            G[v, loc[nbr[p]]] += wt[p]
        for p in range(hptr[v], hptr[v + 1]):
            H[v, loc[hnbr[p]]] += 1
    return G, H


@njit()
def objective(loc, indptr, nbr, wt):
    s = 0.0
    for v in range(loc.shape[0]):
        for p in range(indptr[v], indptr[v + 1]):
            if loc[nbr[p]] == loc[v]:
                s += wt[p]
    return 0.5 * s


@njit()
def hard_conflicts(loc, H):
    c = 0
    for v in range(loc.shape[0]):
        c += H[v, loc[v]]
    return c // 2


@njit()
def params_state(loc, lo, prank, n_classes, n_ranks, pvals):
    cnt = np.zeros((n_classes, n_ranks), dtype=np.int32)
    for v in range(loc.shape[0]):
        cnt[lo[v] + loc[v], prank[v]] += 1
    cmax = np.full(n_classes, -1, dtype=np.int64)
    stored = np.zeros(1, dtype=np.int64)
    for g in range(n_classes):
        for r in range(n_ranks - 1, -1, -1):
            if cnt[g, r] > 0:
                cmax[g] = r
                stored[0] += pvals[r]
                break
    return cnt, cmax, stored


@njit(inline="always")
def _params_delta(v, a, b, lo, prank, pvals, cnt, cmax):
    ga = lo[v] + a
    gb = lo[v] + b
    r = prank[v]
    d = 0
    if cmax[ga] == r and cnt[ga, r] == 1:
        nr = r - 1
        while nr >= 0 and cnt[ga, nr] == 0:
            nr -= 1
        d -= pvals[r] - (pvals[nr] if nr >= 0 else 0)
    if cmax[gb] < r:
        d += pvals[r] - (pvals[cmax[gb]] if cmax[gb] >= 0 else 0)
    return d


@njit(inline="always")
def _params_move(v, a, b, lo, prank, pvals, cnt, cmax, stored):
    stored[0] += _params_delta(v, a, b, lo, prank, pvals, cnt, cmax)
    ga = lo[v] + a
    gb = lo[v] + b
    r = prank[v]
    cnt[ga, r] -= 1
    cnt[gb, r] += 1
    if cmax[ga] == r and cnt[ga, r] == 0:
        nr = r - 1
        while nr >= 0 and cnt[ga, nr] == 0:
            nr -= 1
        cmax[ga] = nr
    if cmax[gb] < r:
        cmax[gb] = r


@njit(inline="always")
def _move(v, a, b, loc, G, H, indptr, nbr, wt, hptr, hnbr):
    for p in range(indptr[v], indptr[v + 1]):
        u = nbr[p]
        w = wt[p]
        G[u, a] -= w
        G[u, b] += w
    for p in range(hptr[v], hptr[v + 1]):
        u = hnbr[p]
        H[u, a] -= 1
        H[u, b] += 1
    loc[v] = b


@njit()
def anneal_sweeps(movable, loc, kk, lo, G, H, indptr, nbr, wt, hptr, hnbr,
                  use_params, prank, pvals, cnt, cmax, stored, max_params,
                  t_a, t_b, n_sweeps, rng, obj, best_obj, best_loc, etab):
    """``n_sweeps`` Metropolis sweeps over ``movable`` at temperatures falling geometrically from ``t_a`` to
    ``t_b``, inside the feasible region (a move into a class holding a hard neighbour, or over the parameter cap,
    is rejected). ``obj[0]`` is the running objective; the best state seen at a sweep end goes to ``best_loc``.

    ``etab``: empty, or (integer weights, so every gain is an integer) a scratch array: the acceptance
    probabilities exp(-d/T) of the sweep's temperature for d below its length are tabulated once per sweep instead
    of one ``exp`` per uphill attempt (measured: benchmarks/solvers/gset/kernel_speed.py); larger gains use ``exp``."""
    nm = movable.shape[0]
    ratio = t_b / t_a
    ne = etab.shape[0]
    has_hard = hnbr.shape[0] > 0
    for s in range(n_sweeps):
        inv_t = 1.0 / (t_a * ratio ** (s / n_sweeps))
        for j in range(ne):
            etab[j] = np.exp(-j * inv_t)
        for i in range(nm):
            v = movable[i]
            k = kk[v]
            a = loc[v]
            if k == 2:
                b = 1 - a
            else:
                b = _below(rng, k - 1)
                if b >= a:
                    b += 1
            if has_hard and H[v, b] > 0:
                continue
            d = G[v, b] - G[v, a]
            if d > 0.0:
                if d < ne:
                    if _uniform(rng) >= etab[np.int64(d)]:
                        continue
                elif not _accepts(d * inv_t, rng):
                    continue
            if use_params:
                pd = _params_delta(v, a, b, lo, prank, pvals, cnt, cmax)
                if pd > 0 and stored[0] + pd > max_params:
                    continue
                _params_move(v, a, b, lo, prank, pvals, cnt, cmax, stored)
            _move(v, a, b, loc, G, H, indptr, nbr, wt, hptr, hnbr)
            obj[0] += d
        if obj[0] < best_obj[0] - 1e-9 * max(1.0, abs(best_obj[0])):
            best_obj[0] = obj[0]
            best_loc[:] = loc


@njit()
def descend(movable, loc, kk, lo, G, H, indptr, nbr, wt, hptr, hnbr,
            use_params, prank, pvals, cnt, cmax, stored, max_params, obj, max_passes):
    """Best-improvement moves node by node until no move improves (a local optimum), at most ``max_passes``."""
    for _ in range(max_passes):
        improved = False
        for i in range(movable.shape[0]):
            v = movable[i]
            a = loc[v]
            ga = G[v, a]
            best_b = -1
            best_d = -1e-12 * max(1.0, abs(ga))
            for b in range(kk[v]):
                if b == a or H[v, b] > 0:
                    continue
                d = G[v, b] - ga
                if d < best_d:
                    if use_params:
                        pd = _params_delta(v, a, b, lo, prank, pvals, cnt, cmax)
                        if pd > 0 and stored[0] + pd > max_params:
                            continue
                    best_d = d
                    best_b = b
            if best_b >= 0:
                if use_params:
                    _params_move(v, a, best_b, lo, prank, pvals, cnt, cmax, stored)
                _move(v, a, best_b, loc, G, H, indptr, nbr, wt, hptr, hnbr)
                obj[0] += best_d
                improved = True
        if not improved:
            break


@njit()
def perturb(movable, loc, kk, lo, G, H, indptr, nbr, wt, hptr, hnbr,
            use_params, prank, pvals, cnt, cmax, stored, max_params, n_moves, rng, obj):
    """``n_moves`` random feasible moves regardless of cost (the kick between annealing rounds)."""
    nm = movable.shape[0]
    if nm == 0:
        return
    for _ in range(n_moves):
        v = movable[_below(rng, nm)]
        k = kk[v]
        a = loc[v]
        b = _below(rng, k - 1)
        if b >= a:
            b += 1
        if H[v, b] > 0:
            continue
        if use_params:
            pd = _params_delta(v, a, b, lo, prank, pvals, cnt, cmax)
            if pd > 0 and stored[0] + pd > max_params:
                continue
            _params_move(v, a, b, lo, prank, pvals, cnt, cmax, stored)
        obj[0] += G[v, b] - G[v, a]
        _move(v, a, b, loc, G, H, indptr, nbr, wt, hptr, hnbr)


@njit()
def tabucol(loc, kk, lo, G, H, indptr, nbr, wt, hptr, hnbr,
            use_params, prank, pvals, cnt, cmax, stored, max_params,
            tabu, it0, max_iters, rng, best_loc, best_conf):
    """TabuCol (Hertz & de Werra 1987) on the hard conflicts: each iteration makes the best non-tabu move of a
    conflicting node (aspiration: a tabu move is allowed if it beats the best count); the reverse move stays
    tabu for 0.6 * conflicts + rand(10) iterations. Returns the iteration counter; stops at zero conflicts.
    ``best_conf[0]`` / ``best_loc`` keep the least-conflicting state."""
    n = loc.shape[0]
    pos = np.full(n, -1, dtype=np.int64)
    clist = np.empty(n, dtype=np.int64)
    nc = 0
    conf = 0
    for v in range(n):
        h = H[v, loc[v]]
        if h > 0:
            pos[v] = nc
            clist[nc] = v
            nc += 1
            conf += h
    conf //= 2
    if conf < best_conf[0]:
        best_conf[0] = conf
        best_loc[:] = loc
    it = it0
    end = it0 + max_iters
    while it < end and conf > 0:
        it += 1
        bd = 1 << 30
        bv = -1
        bb = -1
        ties = 0
        for idx in range(nc):
            v = clist[idx]
            a = loc[v]
            ha = H[v, a]
            for b in range(kk[v]):
                if b == a:
                    continue
                d = H[v, b] - ha
                if d > bd:
                    continue
                if tabu[v, b] > it and conf + d >= best_conf[0]:
                    continue
                if use_params:
                    pd = _params_delta(v, a, b, lo, prank, pvals, cnt, cmax)
                    if pd > 0 and stored[0] + pd > max_params:
                        continue
                if d < bd:
                    bd = d
                    bv = v
                    bb = b
                    ties = 1
                else:
                    ties += 1
                    if _below(rng, ties) == 0:
                        bv = v
                        bb = b
        if bv < 0:
            continue
        a = loc[bv]
        if use_params:
            _params_move(bv, a, bb, lo, prank, pvals, cnt, cmax, stored)
        _move(bv, a, bb, loc, G, H, indptr, nbr, wt, hptr, hnbr)
        tabu[bv, a] = it + int(0.6 * conf) + _below(rng, 10) + 1
        conf += bd
        # conflict list: only bv and its hard neighbours can change status
        for q in range(hptr[bv], hptr[bv + 1] + 1):
            u = bv if q == hptr[bv + 1] else hnbr[q]
            inside = H[u, loc[u]] > 0
            if inside and pos[u] < 0:
                pos[u] = nc
                clist[nc] = u
                nc += 1
            elif not inside and pos[u] >= 0:
                last = clist[nc - 1]
                clist[pos[u]] = last
                pos[last] = pos[u]
                pos[u] = -1
                nc -= 1
        if conf < best_conf[0]:
            best_conf[0] = conf
            best_loc[:] = loc
    return it

