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
def _pair_bound(depth, order, g, cc, Qp, rowsort, free, mark, hv, cum):
    """A lower bound on the positive pair costs plus the marginals of every completion ``T`` of the current set
    (items ``order[depth:]`` without a conflict), by its size ``t``: each member ``j`` pays ``g_j`` and half of its
    ``Q⁺`` to the other ``t − 1`` members, at least half the ``t − 1`` smallest ``Q⁺_jl`` among the free items
    (Gilmore–Lawler). Returns ``min_t`` of the sum of the ``t`` smallest such shares (0 for the empty completion)."""
    m = len(g)
    nf = 0
    for p in range(depth, m):
        j = order[p]
        if cc[j] == 0:
            free[nf] = j
            mark[j] = 1
            nf += 1
    for a in range(nf):           # cum[a, r]: the r smallest Q⁺ from free item a to the other free items
        j = free[a]
        r = 0
        total = 0.0
        for q in range(m):
            other = rowsort[j, q]
            if mark[other] and other != j:
                total += Qp[j, other]
                r += 1
                cum[a, r] = total
    best = 0.0
    for t in range(1, nf + 1):
        negatives = 0
        negative_sum = 0.0
        for a in range(nf):
            hv[a] = g[free[a]] + 0.5 * cum[a, t - 1]
            if hv[a] < 0.0:
                negatives += 1
                negative_sum += hv[a]
        if negatives < t:
            # shares only grow with t: no larger completion pays less than the negative shares at this t
            best = min(best, negative_sum)
            break
        best = min(best, np.sum(np.sort(hv[:nf])[:t]))
    for a in range(nf):
        mark[free[a]] = 0
    return best


@njit()
def branch_and_bound_best(Q, d, conf, keep, thresh, node_limit, pair_bound=True, enough=False):
    """Depth-first search over include / exclude decisions (items by increasing ``d``), pruned by ``_bound`` and,
    where that fails, by the stronger ``_pair_bound`` (``pair_bound``). Exact unless ``node_limit`` (> 0) work units
    are exceeded (a search node is 1, a pair bound ``m``: about its cost in multiples of a node's), or, with
    ``enough``, once ``keep`` sets below ``thresh`` are found (column generation needs negative columns, not the
    best ones, until the last round, which finds none and so searches everything). Returns ``(vals, sets, least,
    complete, work)`` where ``least`` is a valid lower bound on the minimum below ``thresh`` even when the search
    stopped early (the bounds of the subtrees it left are in it)."""
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
    Qp = np.maximum(Q, 0.0)
    rowsort = np.empty((m, m), dtype=np.int64)
    for j in range(m):
        rowsort[j, :] = np.argsort(Qp[j])
    free = np.zeros(m, dtype=np.int64)
    mark = np.zeros(m, dtype=np.uint8)
    hv = np.zeros(m)
    cum = np.zeros((m, m + 1))
    g = d.copy()
    cc = np.zeros(m, dtype=np.int64)
    action = np.zeros(m + 1, dtype=np.int64)
    included = np.zeros(m + 1, dtype=np.uint8)
    value = 0.0
    best = np.inf
    cut = thresh
    open_bound = np.inf        # least bound of a subtree abandoned at the node limit
    work = 0
    depth = 0
    while depth >= 0:
        if action[depth] == 0:
            work += 1
            if depth == m:
                depth -= 1
                continue
            lower = _bound(depth, order, value, g, cc, neg_suffix)
            if lower < cut and pair_bound:
                work += m
                lower = max(lower, value + neg_suffix[depth]
                            + _pair_bound(depth, order, g, cc, Qp, rowsort, free, mark, hv, cum))
            if lower >= cut:
                depth -= 1
                continue
            if (node_limit > 0 and work > node_limit) or (enough and vals[keep - 1] < thresh):
                open_bound = min(open_bound, lower)
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
    return vals, sets, least, open_bound == np.inf, work


@njit()
def _best_move(Q, conf, g, cc, in_set, pinned):
    """The most improving single move: add ``j`` (``g_j``), drop ``i`` (``−g_i``) or swap ``i`` out for ``j``
    (``g_j − g_i − Q_ij``, allowed when ``i`` is ``j``'s only conflict in the set). Returns (delta, out, in)."""
    m = len(g)
    best, out, inn = -1e-12, -1, -1
    for j in range(m):
        if in_set[j]:
            if j != pinned and -g[j] < best:
                best, out, inn = -g[j], j, -1
        elif cc[j] == 0 and g[j] < best:
            best, out, inn = g[j], -1, j
    for i in range(m):
        if not in_set[i] or i == pinned:
            continue
        for j in range(m):
            if in_set[j] or cc[j] - conf[i, j] != 0:
                continue
            delta = g[j] - g[i] - Q[i, j]
            if delta < best:
                best, out, inn = delta, i, j
    return best, out, inn


@njit()
def local_search_best(Q, d, conf, starts, pins, keep, thresh, budget):
    """From each start set (rows of ``starts``, in order; a start with a conflict inside is skipped):
    best-improvement add / drop / swap moves until none improves (at most ``4 m`` moves), never dropping the start's
    pinned item (``pins``, −1 for none). No further move once ``budget`` operations are spent (a move scan costs
    ``m · (1 + |S|)``): on large dense problems swaps would otherwise take seconds per call. Heuristic; duplicates
    are dropped. Returns ``(vals, sets, work)``."""
    m = len(d)
    work = 0
    vals = np.full(keep, np.inf)
    sets = np.zeros((keep, m), dtype=np.uint8)
    in_set = np.zeros(m, dtype=np.uint8)
    g = np.empty(m)
    cc = np.zeros(m, dtype=np.int64)
    for r in range(starts.shape[0]):
        if work > budget:
            break
        in_set[:] = 0
        cc[:] = 0
        g[:] = d
        value = 0.0
        clash = False
        for j in range(m):
            if starts[r, j]:
                clash = clash or cc[j] > 0
                value += g[j]
                _flip(j, True, Q, conf, g, cc, in_set)
        if clash:
            continue
        size = in_set.sum()
        for _ in range(4 * m):
            if work > budget:       # this start's class so far is still a class, priced right
                break
            work += m * (1 + size)
            delta, out, inn = _best_move(Q, conf, g, cc, in_set, pins[r])
            if out < 0 and inn < 0:
                break
            if out >= 0:
                _flip(out, False, Q, conf, g, cc, in_set)
                value -= g[out]
                size -= 1
            if inn >= 0:
                value += g[inn]
                _flip(inn, True, Q, conf, g, cc, in_set)
                size += 1
        if value < min(thresh, vals[keep - 1]) and size > 0 and not _kept(vals, sets, in_set):
            _insert(vals, sets, in_set, value, thresh)
    return vals, sets, work


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
