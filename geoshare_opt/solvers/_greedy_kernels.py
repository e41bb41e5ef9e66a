"""Compiled core of the weighted, budgeted DSatur (numba, ``cache=True``); the Python side is ``dsatur.py``.

The whole graph is coloured in one pass (all types together, so the global class budget is shared as nodes
arrive). Selection: the unplaced node with the most distinct classes among its placed hard neighbours
(saturation), ties by the absolute soft weight it has towards placed nodes, then by degree. A lazy max-heap keeps
this O((n + m) log n): priorities only grow, so stale heap entries are skipped when popped. Placement: the allowed
class of the node's type with the smallest added weight; a new class (cost 0) only when that is strictly cheaper
or nothing else is allowed, and only if enough budget is left for what the other types still need (``need`` classes
each, and their largest tensor's parameters).
"""
from __future__ import annotations

import numpy as np
from ._jit import njit


@njit(inline="always")
def _higher(k1, k2, k3, hv, i, j):
    if k1[i] != k1[j]:
        return k1[i] > k1[j]
    if k2[i] != k2[j]:
        return k2[i] > k2[j]
    if k3[i] != k3[j]:
        return k3[i] > k3[j]
    return hv[i] < hv[j]


@njit()
def _push(k1, k2, k3, hv, size, a, b, c, v):
    i = size
    k1[i] = a
    k2[i] = b
    k3[i] = c
    hv[i] = v
    while i > 0:
        p = (i - 1) >> 1
        if _higher(k1, k2, k3, hv, i, p):
            k1[i], k1[p] = k1[p], k1[i]
            k2[i], k2[p] = k2[p], k2[i]
            k3[i], k3[p] = k3[p], k3[i]
            hv[i], hv[p] = hv[p], hv[i]
            i = p
        else:
            break
    return size + 1


@njit()
def _pop(k1, k2, k3, hv, size):
    """Remove the top entry (moved to index ``size - 1``); returns the new size."""
    last = size - 1
    k1[0], k1[last] = k1[last], k1[0]
    k2[0], k2[last] = k2[last], k2[0]
    k3[0], k3[last] = k3[last], k3[0]
    hv[0], hv[last] = hv[last], hv[0]
    size = last
    i = 0
    while True:
        l = 2 * i + 1
        if l >= size:
            break
        c = l
        r = l + 1
        if r < size and _higher(k1, k2, k3, hv, r, l):
            c = r
        if _higher(k1, k2, k3, hv, c, i):
            k1[i], k1[c] = k1[c], k1[i]
            k2[i], k2[c] = k2[c], k2[i]
            k3[i], k3[c] = k3[c], k3[i]
            hv[i], hv[c] = hv[c], hv[i]
            i = c
        else:
            break
    return size


@njit()
def dsatur(type_of, n_types, indptr, nbr, wt, hptr, hnbr, params, tiebreak,
           cap, need, max_classes, max_params, soft):
    """Returns ``(labels, ok)``: global class labels (-1 where unplaced) and whether every node was placed
    within every cap. ``soft=False`` ignores soft weights (plain DSatur on the hard edges)."""
    n = type_of.shape[0]
    lab = np.full(n, -1, dtype=np.int64)
    kcap = min(max_classes, n) + 1
    class_type = np.full(kcap, -1, dtype=np.int64)
    class_maxp = np.zeros(kcap, dtype=np.int64)
    next_same = np.full(kcap, -1, dtype=np.int64)
    head = np.full(n_types, -1, dtype=np.int64)
    used = np.zeros(n_types, dtype=np.int64)
    top_p = np.zeros(n_types, dtype=np.int64)       # largest class parameter count of each type so far
    maxp_t = np.zeros(n_types, dtype=np.int64)
    for v in range(n):
        maxp_t[type_of[v]] = max(maxp_t[type_of[v]], params[v])
    reserve_p = 0
    for t in range(n_types):
        reserve_p += maxp_t[t]
    reserve_k = 0
    for t in range(n_types):
        reserve_k += need[t]
    n_classes = 0
    stored = 0
    sat = np.zeros(n, dtype=np.int64)
    attach = np.zeros(n, dtype=np.float64)
    deg = np.zeros(n, dtype=np.float64)
    for v in range(n):
        s = 0.0
        for p in range(indptr[v], indptr[v + 1]):
            s += abs(wt[p])
        deg[v] = (hptr[v + 1] - hptr[v]) + (s if soft else 0.0) + tiebreak[v]
    # scratch per class
    cost = np.zeros(kcap, dtype=np.float64)
    blocked = np.zeros(kcap, dtype=np.int64)    # stamp: == v + 1 when a hard neighbour of v is in the class
    cap_heap = n + indptr[n] + hptr[n] + 1
    k1 = np.empty(cap_heap, dtype=np.int64)
    k2 = np.empty(cap_heap, dtype=np.float64)
    k3 = np.empty(cap_heap, dtype=np.float64)
    hv = np.empty(cap_heap, dtype=np.int64)
    size = 0
    for v in range(n):
        size = _push(k1, k2, k3, hv, size, 0, 0.0, deg[v], v)
    ok = True
    while size > 0:
        size = _pop(k1, k2, k3, hv, size)
        v = hv[size]
        if lab[v] >= 0 or k1[size] != sat[v] or k2[size] != attach[v]:
            continue  # placed already, or a stale entry
        t = type_of[v]
        # added weight and hard blocks per existing class of type t
        for p in range(indptr[v], indptr[v + 1]):
            g = lab[nbr[p]]
            if g >= 0:
                cost[g] += wt[p]
        for p in range(hptr[v], hptr[v + 1]):
            g = lab[hnbr[p]]
            if g >= 0:
                blocked[g] = v + 1
        # budget left for the others if v's type takes one more class / more parameters
        others_k = reserve_k - max(need[t] - used[t], 0)
        best_g = -1
        best_c = 0.0
        best_dp = 0
        g = head[t]
        while g >= 0:
            if blocked[g] != v + 1:
                c = cost[g] if soft else 0.0
                newmax = max(class_maxp[g], params[v])
                dp = newmax - class_maxp[g]
                ok_p = True
                if max_params >= 0 and dp > 0:
                    new_top = max(top_p[t], newmax)
                    res = reserve_p - max(maxp_t[t] - top_p[t], 0) + max(maxp_t[t] - new_top, 0)
                    ok_p = stored + dp + res <= max_params
                if ok_p and (best_g < 0 or c < best_c - 1e-12 or (abs(c - best_c) <= 1e-12 and (
                        dp < best_dp or (dp == best_dp and g < best_g)))):  # ties: the oldest class, as DSatur
                    best_g = g
                    best_c = c
                    best_dp = dp
            g = next_same[g]
        # may we open a new class?
        can_open = used[t] < cap[t] and n_classes + 1 + others_k <= max_classes
        if can_open and max_params >= 0:
            new_top = max(top_p[t], params[v])
            res = reserve_p - max(maxp_t[t] - top_p[t], 0) + max(maxp_t[t] - new_top, 0)
            can_open = stored + params[v] + res <= max_params
        if can_open and (best_g < 0 or best_c > 1e-12 * max(1.0, abs(best_c))):
            g = n_classes
            n_classes += 1
            class_type[g] = t
            next_same[g] = head[t]
            head[t] = g
            reserve_k -= max(need[t] - used[t], 0)
            used[t] += 1
            reserve_k += max(need[t] - used[t], 0)
            best_g = g
            best_dp = params[v]
        # clean the scratch
        for p in range(indptr[v], indptr[v + 1]):
            gg = lab[nbr[p]]
            if gg >= 0:
                cost[gg] = 0.0
        if best_g < 0:
            ok = False
            continue
        g = best_g
        lab[v] = g
        if params[v] > class_maxp[g]:
            old_top = top_p[t]
            class_maxp[g] = params[v]
            stored += best_dp
            if params[v] > old_top:
                reserve_p -= max(maxp_t[t] - old_top, 0)
                top_p[t] = params[v]
                reserve_p += max(maxp_t[t] - top_p[t], 0)
        # neighbours: attachment and saturation grow, re-push them
        for p in range(indptr[v], indptr[v + 1]):
            u = nbr[p]
            if lab[u] < 0 and soft:
                attach[u] += abs(wt[p])
                size = _push(k1, k2, k3, hv, size, sat[u], attach[u], deg[u], u)
        for p in range(hptr[v], hptr[v + 1]):
            u = hnbr[p]
            if lab[u] >= 0:
                continue
            # does u already see class g through another hard neighbour?
            fresh = True
            for q in range(hptr[u], hptr[u + 1]):
                x = hnbr[q]
                if x != v and lab[x] == g:
                    fresh = False
                    break
            if fresh:
                sat[u] += 1
                size = _push(k1, k2, k3, hv, size, sat[u], attach[u], deg[u], u)
    if n_classes > max_classes:
        ok = False
    if max_params >= 0 and stored > max_params:
        ok = False
    return lab, ok
