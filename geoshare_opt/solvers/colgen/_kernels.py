"""Compiled pricing kernels of the set-partitioning engine (numba through ``solvers._jit``; formulations/colgen.md).

Each kernel minimises the quadratic reduced cost of a class over the subsets ``S`` of ``m`` items,

    r(S) = Σ_{a<b ∈ S} Q_ab + Σ_{a ∈ S} d_a        (no conflicting pair inside S, S non-empty),

and keeps the ``keep`` best sets with ``r(S) < thresh`` (rows of ``sets``, values in ``vals``, ascending; unused
rows have value +inf). ``Q`` is symmetric with a zero diagonal, ``conf`` the symmetric conflict matrix (uint8).
Both exact kernels also return ``least``, a lower bound on the minimum that is exact when below ``thresh`` (with
``thresh = +inf``: the exact minimum, the number a Lagrangian bound needs).

All three keep ``g_j = d_j + Σ_{a ∈ S} Q_aj`` (the change of ``r`` when ``j`` joins ``S``) up to date, so adding or
dropping an item costs O(m).
"""
from __future__ import annotations

import numpy as np
from .._jit import njit


@njit()
def _insert(vals, sets, in_set, value, thresh):
    """Put the current set into the sorted keep-list if it beats the worst kept one. Returns the new cut-off (the
    worst kept value once the list is full, else ``thresh``)."""
    keep = len(vals)
    if value >= vals[keep - 1]:
        return min(thresh, vals[keep - 1])
    pos = keep - 1
    while pos > 0 and vals[pos - 1] > value:
        vals[pos] = vals[pos - 1]
        sets[pos, :] = sets[pos - 1, :]
        pos -= 1
    vals[pos] = value
    sets[pos, :] = in_set
    return min(thresh, vals[keep - 1])


@njit()
def _flip(j, add, Q, conf, g, cc, in_set):
    """Add (``add``) or drop item ``j``: update the marginals ``g`` and the conflict counts ``cc``."""
    m = len(g)
    s = 1.0 if add else -1.0
    c = 1 if add else -1
    in_set[j] = 1 if add else 0
    for a in range(m):
        g[a] += s * Q[j, a]
        if conf[j, a]:
            cc[a] += c


@njit()
def enumerate_best(Q, d, conf, keep, thresh):
    """Every subset in Gray-code order (one flip per step): exact, 2^m · m operations (m ≤ 30)."""
    m = len(d)
    vals = np.full(keep, np.inf)
    sets = np.zeros((keep, m), dtype=np.uint8)
    in_set = np.zeros(m, dtype=np.uint8)
    g = d.copy()
    cc = np.zeros(m, dtype=np.int64)
    value = 0.0
    clashes = 0
    size = 0
    least = np.inf
    cut = thresh
    for step in range(1, 1 << m):
        j = 0
        while not (step >> j) & 1:
            j += 1
        if in_set[j]:
            _flip(j, False, Q, conf, g, cc, in_set)
            value -= g[j]
            clashes -= cc[j]
            size -= 1
        else:
            value += g[j]
            clashes += cc[j]
            _flip(j, True, Q, conf, g, cc, in_set)
            size += 1
        if clashes == 0 and size > 0:
            if value < least:
                least = value
            if value < cut:
                cut = _insert(vals, sets, in_set, value, thresh)
    return vals, sets, least


@njit()
def _bound(depth, order, value, g, cc, neg_suffix):
    """A lower bound on ``r`` over every completion of the current set with items ``order[depth:]``: each free item
    adds at least ``min(0, g_j)`` plus its share of the negative ``Q`` among the undecided items."""
    b = value + neg_suffix[depth]
    for p in range(depth, len(order)):
        j = order[p]
        if cc[j] == 0 and g[j] < 0.0:
            b += g[j]
    return b


@njit()
def branch_and_bound_best(Q, d, conf, keep, thresh, node_limit):
    """Depth-first search over include / exclude decisions (items by increasing ``d``), pruned by ``_bound``.
    Exact unless ``node_limit`` (> 0) search nodes are exceeded; returns ``(vals, sets, least, complete, nodes)``
    where
    ``least`` is a valid lower bound on the minimum below ``thresh`` even when the search stopped early."""
    m = len(d)
    vals = np.full(keep, np.inf)
    sets = np.zeros((keep, m), dtype=np.uint8)
    in_set = np.zeros(m, dtype=np.uint8)
    order = np.argsort(d)
    neg_suffix = np.zeros(m + 1)
    for p in range(m - 1, -1, -1):
        s = 0.0
        for q in range(p + 1, m):
            s += min(0.0, Q[order[p], order[q]])
        neg_suffix[p] = neg_suffix[p + 1] + s
    g = d.copy()
    cc = np.zeros(m, dtype=np.int64)
    action = np.zeros(m + 1, dtype=np.int64)
    included = np.zeros(m + 1, dtype=np.uint8)
    value = 0.0
    best = np.inf
    cut = thresh
    open_bound = np.inf        # least bound of a subtree abandoned at the node limit
    nodes = 0
    depth = 0
    while depth >= 0:
        if action[depth] == 0:
            nodes += 1
            if depth == m or _bound(depth, order, value, g, cc, neg_suffix) >= cut:
                depth -= 1
                continue
            if node_limit > 0 and nodes > node_limit:
                open_bound = min(open_bound, _bound(depth, order, value, g, cc, neg_suffix))
                depth -= 1
                continue
            j = order[depth]
            included[depth] = 0
            action[depth] = 1 if cc[j] == 0 else 2    # a conflicting item has only the exclude branch
            if cc[j] == 0:
                value += g[j]
                _flip(j, True, Q, conf, g, cc, in_set)
                included[depth] = 1
                if value < best:
                    best = value
                if value < cut:
                    cut = _insert(vals, sets, in_set, value, thresh)
            action[depth + 1] = 0
            depth += 1
        elif action[depth] == 1:
            if included[depth]:
                j = order[depth]
                _flip(j, False, Q, conf, g, cc, in_set)
                value -= g[j]
                included[depth] = 0
            action[depth] = 2
            action[depth + 1] = 0
            depth += 1
        else:
            depth -= 1
    # every set not visited lies in a subtree pruned at a bound >= the cut (>= min(thresh, best)) or abandoned
    least = min(best, thresh, open_bound)
    return vals, sets, least, open_bound == np.inf, nodes


@njit()
def local_search_best(Q, d, conf, starts, keep, thresh):
    """From each start item: greedy growth by the most negative marginal, then single add / drop moves until none
    improves. Heuristic; duplicates are dropped."""
    m = len(d)
    vals = np.full(keep, np.inf)
    sets = np.zeros((keep, m), dtype=np.uint8)
    in_set = np.zeros(m, dtype=np.uint8)
    g = np.empty(m)
    cc = np.zeros(m, dtype=np.int64)
    for s in starts:
        in_set[:] = 0
        cc[:] = 0
        g[:] = d
        value = g[s]
        _flip(s, True, Q, conf, g, cc, in_set)
        improved = True
        while improved:
            improved = False
            best_j, best_delta = -1, -1e-12
            for j in range(m):
                if in_set[j]:
                    delta = -g[j]
                    if delta < best_delta and j != s:
                        best_j, best_delta = j, delta
                elif cc[j] == 0 and g[j] < best_delta:
                    best_j, best_delta = j, g[j]
            if best_j >= 0:
                add = in_set[best_j] == 0
                if add:
                    value += g[best_j]
                    _flip(best_j, True, Q, conf, g, cc, in_set)
                else:
                    _flip(best_j, False, Q, conf, g, cc, in_set)
                    value -= g[best_j]
                improved = True
        if value < min(thresh, vals[keep - 1]) and not _kept(vals, sets, in_set):
            _insert(vals, sets, in_set, value, thresh)
    return vals, sets


@njit()
def _kept(vals, sets, in_set):
    for r in range(len(vals)):
        if vals[r] == np.inf:
            return False
        same = True
        for a in range(len(in_set)):
            if sets[r, a] != in_set[a]:
                same = False
                break
        if same:
            return True
    return False
