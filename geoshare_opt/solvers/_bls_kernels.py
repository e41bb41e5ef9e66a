"""Breakout Local Search (Benlic & Hao 2013) on the anneal backend's gain tables (numba, ``cache=True``).

Same state and conventions as ``_anneal_kernels`` (local classes ``loc``, gain tables ``G``/``H``, the exact
parameter-cap bookkeeping, the xorshift generator). One BLS iteration = a perturbation of ``L`` moves followed by
a steepest descent to a local optimum:

- the best move of every movable node (the allowed class with the largest gain ``G[v, a] - G[v, b]``; a class
  holding a hard neighbour or a move over ``max_params`` is never allowed) sits in a max-heap keyed on
  (gain, random priority) — tabu nodes in a second one — so the descent and the directed perturbation pick the best move in O(log n) and a move
  updates only the moved node and its neighbours (O(degree · (K + log n)));
- directed perturbation: the best move of a node that is not tabu (aspiration: a tabu move that would beat the
  best objective is allowed); the moved node stays tabu for a random tenure in [tenure_min, tenure_max] moves;
- random perturbation: random allowed moves (also made tabu);
- adaptive strength: ``L`` grows by one when the descent returns to the local optimum it started from (same
  objective), else resets to ``L0``; the directed type is chosen with probability max(exp(-ω/T), P0), where ω counts
  descents since the best improved; after ``T`` such descents a strong random perturbation of ``Lmax`` moves.

The parameter cap is global (a move changes which other moves fit), so a heap entry may go stale: a popped move
is re-checked against the current stored parameters and recomputed when it no longer fits; never taken over the cap.
"""
from __future__ import annotations

import numpy as np
from ._jit import njit

from ._anneal_kernels import _below, _move, _params_delta, _params_move, _uniform

NEG = -1e300
# slots of the control array that carries the search state between calls (time is checked between calls)
C_OMEGA, C_L, C_IT, C_LAST, C_DESCENTS, C_SINCE_BEST = 0, 1, 2, 3, 4, 5


@njit(inline="always")
def _above(key, prio, i, j):
    """Heap order: larger gain first, then larger random priority."""
    return key[i] > key[j] or (key[i] == key[j] and prio[i] > prio[j])


@njit()
def _sift_up(heap, pos, key, prio, i):
    v = heap[i]
    while i > 0:
        p = (i - 1) >> 1
        u = heap[p]
        if not _above(key, prio, v, u):
            break
        heap[i] = u
        pos[u] = i
        i = p
    heap[i] = v
    pos[v] = i


@njit()
def _sift_down(heap, pos, key, prio, i, size):
    v = heap[i]
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and _above(key, prio, heap[c + 1], heap[c]):
            c += 1
        u = heap[c]
        if not _above(key, prio, u, v):
            break
        heap[i] = u
        pos[u] = i
        i = c
    heap[i] = v
    pos[v] = i


@njit()
def _best_move(v, loc, kk, lo, G, H, use_params, prank, pvals, cnt, cmax, stored, max_params, bclass, key):
    """The allowed class with the largest gain for v (``key[v] = NEG`` when no class is allowed)."""
    a = loc[v]
    ga = G[v, a]
    best = NEG
    bb = -1
    for b in range(kk[v]):
        if b == a or H[v, b] > 0:
            continue
        g = ga - G[v, b]
        if g > best:
            if use_params:
                pd = _params_delta(v, a, b, lo, prank, pvals, cnt, cmax)
                if pd > 0 and stored[0] + pd > max_params:
                    continue
            best = g
            bb = b
    key[v] = best
    bclass[v] = bb


@njit()
def _fits(v, b, loc, lo, use_params, prank, pvals, cnt, cmax, stored, max_params):
    if not use_params:
        return True
    pd = _params_delta(v, loc[v], b, lo, prank, pvals, cnt, cmax)
    return pd <= 0 or stored[0] + pd <= max_params


@njit()
def _heap_insert(heaps, sz, h, pos, inh, key, prio, v):
    i = sz[h]
    sz[h] += 1
    heaps[h, i] = v
    pos[v] = i
    inh[v] = h
    _sift_up(heaps[h], pos, key, prio, i)


@njit()
def _heap_remove(heaps, sz, pos, inh, key, prio, v):
    h = inh[v]
    i = pos[v]
    sz[h] -= 1
    last = heaps[h, sz[h]]
    pos[v] = -1
    inh[v] = -1
    if last != v:
        heaps[h, i] = last
        pos[last] = i
        _sift_up(heaps[h], pos, key, prio, i)
        _sift_down(heaps[h], pos, key, prio, pos[last], sz[h])


@njit()
def _refresh(v, heaps, sz, pos, inh, loc, kk, lo, G, H, use_params, prank, pvals, cnt, cmax, stored, max_params,
             bclass, key, prio):
    """Recompute v's best move and restore its position in whichever heap holds it."""
    old = key[v]
    _best_move(v, loc, kk, lo, G, H, use_params, prank, pvals, cnt, cmax, stored, max_params, bclass, key)
    h = inh[v]
    if h < 0:
        return
    if key[v] > old:
        _sift_up(heaps[h], pos, key, prio, pos[v])
    else:
        _sift_down(heaps[h], pos, key, prio, pos[v], sz[h])


@njit()
def _apply(v, b, heaps, sz, pos, inh, loc, kk, lo, G, H, indptr, nbr, wt, hptr, hnbr,
           use_params, prank, pvals, cnt, cmax, stored, max_params, bclass, key, prio, rng, obj):
    a = loc[v]
    obj[0] += G[v, b] - G[v, a]
    if use_params:
        _params_move(v, a, b, lo, prank, pvals, cnt, cmax, stored)
    _move(v, a, b, loc, G, H, indptr, nbr, wt, hptr, hnbr)
    prio[v] = _uniform(rng)
    _refresh(v, heaps, sz, pos, inh, loc, kk, lo, G, H, use_params, prank, pvals, cnt, cmax, stored, max_params,
             bclass, key, prio)
    for p in range(indptr[v], indptr[v + 1]):
        u = nbr[p]
        if kk[u] >= 2:
            _refresh(u, heaps, sz, pos, inh, loc, kk, lo, G, H, use_params, prank, pvals, cnt, cmax, stored,
                     max_params, bclass, key, prio)
    for p in range(hptr[v], hptr[v + 1]):
        u = hnbr[p]
        if kk[u] >= 2:
            _refresh(u, heaps, sz, pos, inh, loc, kk, lo, G, H, use_params, prank, pvals, cnt, cmax, stored,
                     max_params, bclass, key, prio)


@njit()
def _top_fitting(heaps, sz, h, pos, inh, loc, kk, lo, G, H, use_params, prank, pvals, cnt, cmax, stored,
                 max_params, bclass, key, prio):
    """Heap h's top after re-checking stale entries against the parameter cap (-1 when it holds no move)."""
    while sz[h] > 0:
        v = heaps[h, 0]
        if key[v] <= NEG:
            return -1
        if _fits(v, bclass[v], loc, lo, use_params, prank, pvals, cnt, cmax, stored, max_params):
            return v
        _refresh(v, heaps, sz, pos, inh, loc, kk, lo, G, H, use_params, prank, pvals, cnt, cmax, stored,
                 max_params, bclass, key, prio)
    return -1


@njit()
def bls(movable, loc, kk, lo, G, H, indptr, nbr, wt, hptr, hnbr,
        use_params, prank, pvals, cnt, cmax, stored, max_params,
        obj, best_obj, best_loc, rng, ctl, tabu_until, ring_head, ring_node, ring_next, n_iters,
        L0, Lmax, T, P0, tenure_min, tenure_max):
    """``n_iters`` BLS iterations (perturbation + steepest descent) from the current state, which must be feasible.
    ``ctl`` carries ω, L, the move counter, the last local optimum's objective, the descent count and descents
    since the best improved (see the C_* slots); ``best_obj``/``best_loc`` keep the best local optimum.

    Tabu nodes live in a second heap (heap 1) so that picking the best non-tabu move never wades through them;
    a node's release is queued in a ring of ``len(ring_head)`` > tenure_max buckets keyed by its release move
    (``ring_node/ring_next``: one entry per move, slot = move counter mod ring size, carried between calls)."""
    n = loc.shape[0]
    nm = movable.shape[0]
    if nm == 0:
        return
    R = ring_head.shape[0]
    key = np.full(n, NEG)
    bclass = np.full(n, -1, dtype=np.int64)
    prio = np.zeros(n)
    pos = np.full(n, -1, dtype=np.int64)
    inh = np.full(n, -1, dtype=np.int64)
    heaps = np.empty((2, nm), dtype=np.int64)
    sz = np.zeros(2, dtype=np.int64)
    it = np.int64(ctl[C_IT])
    for i in range(nm):
        v = movable[i]
        prio[v] = _uniform(rng)
        _best_move(v, loc, kk, lo, G, H, use_params, prank, pvals, cnt, cmax, stored, max_params, bclass, key)
        h = 1 if tabu_until[v] > it else 0
        heaps[h, sz[h]] = v
        pos[v] = sz[h]
        inh[v] = h
        sz[h] += 1
    for h in range(2):
        for i in range(sz[h] // 2 - 1, -1, -1):
            _sift_down(heaps[h], pos, key, prio, i, sz[h])
    tol = 1e-12
    for _ in range(n_iters):
        # -- perturbation
        omega = ctl[C_OMEGA]
        directed = False
        if omega > T:
            strength = Lmax
            ctl[C_OMEGA] = 0.0
        else:
            strength = np.int64(ctl[C_L])
            directed = _uniform(rng) < max(np.exp(-omega / T), P0)
        for _j in range(strength):
            it += 1
            # release the nodes whose tabu ends at this move
            slot = it % R
            e = ring_head[slot]
            ring_head[slot] = -1
            while e >= 0:
                u = ring_node[e]
                if tabu_until[u] == it and inh[u] == 1:
                    _heap_remove(heaps, sz, pos, inh, key, prio, u)
                    _heap_insert(heaps, sz, 0, pos, inh, key, prio, u)
                e = ring_next[e]
            if directed:
                v = _top_fitting(heaps, sz, 0, pos, inh, loc, kk, lo, G, H, use_params, prank, pvals, cnt, cmax,
                                 stored, max_params, bclass, key, prio)
                w = _top_fitting(heaps, sz, 1, pos, inh, loc, kk, lo, G, H, use_params, prank, pvals, cnt, cmax,
                                 stored, max_params, bclass, key, prio)
                # aspiration: a tabu move that beats the best objective
                if w >= 0 and obj[0] - key[w] < best_obj[0] - tol * max(1.0, abs(best_obj[0])) and (
                        v < 0 or key[w] > key[v]):
                    v = w
                if v < 0:
                    continue
                b = bclass[v]
            else:
                v = movable[_below(rng, nm)]
                a = loc[v]
                b = _below(rng, kk[v] - 1)
                if b >= a:
                    b += 1
                if H[v, b] > 0 or not _fits(v, b, loc, lo, use_params, prank, pvals, cnt, cmax, stored, max_params):
                    continue
            _apply(v, b, heaps, sz, pos, inh, loc, kk, lo, G, H, indptr, nbr, wt, hptr, hnbr,
                   use_params, prank, pvals, cnt, cmax, stored, max_params, bclass, key, prio, rng, obj)
            until = it + tenure_min + _below(rng, tenure_max - tenure_min + 1)
            tabu_until[v] = until
            if inh[v] == 0:
                _heap_remove(heaps, sz, pos, inh, key, prio, v)
                _heap_insert(heaps, sz, 1, pos, inh, key, prio, v)
            e = it % R               # this move's ring entry (free again: its release moved past long ago)
            ring_node[e] = v
            ring_next[e] = ring_head[until % R]
            ring_head[until % R] = e
        # -- steepest descent to a local optimum (tabu plays no part here)
        while True:
            v = _top_fitting(heaps, sz, 0, pos, inh, loc, kk, lo, G, H, use_params, prank, pvals, cnt, cmax,
                             stored, max_params, bclass, key, prio)
            w = _top_fitting(heaps, sz, 1, pos, inh, loc, kk, lo, G, H, use_params, prank, pvals, cnt, cmax,
                             stored, max_params, bclass, key, prio)
            if w >= 0 and (v < 0 or key[w] > key[v]):
                v = w
            if v < 0 or key[v] <= tol * max(1.0, abs(G[v, loc[v]])):
                break
            _apply(v, bclass[v], heaps, sz, pos, inh, loc, kk, lo, G, H, indptr, nbr, wt, hptr, hnbr,
                   use_params, prank, pvals, cnt, cmax, stored, max_params, bclass, key, prio, rng, obj)
        ctl[C_IT] = it
        ctl[C_DESCENTS] += 1
        eps = 1e-9 * max(1.0, abs(obj[0]))
        if obj[0] < best_obj[0] - eps:
            best_obj[0] = obj[0]
            best_loc[:] = loc
            ctl[C_OMEGA] = 0.0
            ctl[C_SINCE_BEST] = 0.0
        else:
            ctl[C_OMEGA] += 1.0
            ctl[C_SINCE_BEST] += 1.0
        if abs(obj[0] - ctl[C_LAST]) <= eps:
            ctl[C_L] = min(ctl[C_L] + 1.0, float(Lmax))
        else:
            ctl[C_L] = float(L0)
        ctl[C_LAST] = obj[0]
