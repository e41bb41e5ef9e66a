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
def _free_items(decided, cc, g, free):
    """The items still open at a search node (undecided, no conflict with the set) into ``free``; returns their
    number, the open item with the least marginal (−1 if none), that marginal and the sum of the negative ones."""
    nf = 0
    pick = -1
    least = np.inf
    negative = 0.0
    for a in range(len(g)):
        if decided[a] == 0 and cc[a] == 0:
            free[nf] = a
            nf += 1
            if g[a] < least:
                least = g[a]
                pick = a
            if g[a] < 0.0:
                negative += g[a]
    return nf, pick, least, negative


@njit()
def _negative_pairs(Q, free, nf):
    """The negative ``Q`` among the open items: every completion pays at least this much of them."""
    total = 0.0
    for p in range(nf):
        for q in range(p + 1, nf):
            total += min(0.0, Q[free[p], free[q]])
    return total


@njit()
def _pair_bound(free, nf, g, Qp, rowsort, mark, hv, cum, need):
    """A lower bound on the positive pair costs plus the marginals of every completion ``T`` of the current set
    (among the ``nf`` open items ``free``), by its size ``t``: each member ``j`` pays ``g_j`` and half of its
    ``Q⁺`` to the other ``t − 1`` members, at least half the ``t − 1`` smallest ``Q⁺_jl`` among the open items
    (Gilmore–Lawler). Returns ``min_t`` of the sum of the ``t`` smallest such shares (0 for the empty completion),
    or, as soon as one ``t`` is below ``need``, that value (a node that cannot be pruned needs no exact bound)."""
    m = len(g)
    for a in range(nf):
        mark[free[a]] = 1
    for a in range(nf):           # cum[a, r]: the r smallest Q⁺ from open item a to the other open items
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
        if best < need:
            break
    for a in range(nf):
        mark[free[a]] = 0
    return best


@njit()
def _node_bound(Q, g, decided, cc, free, value, size, signed, pair_bound, Qp, rowsort, mark, hv, cum, cut, exact):
    """``(bound, item to branch on, pair bound used)`` at the current node: the least reduced cost of any set in
    its subtree is at least ``bound``; the item is −1 when the node is a leaf (nothing open, or, with ``Q ≥ 0`` and
    a non-empty set, every open item's marginal is ≥ 0, so adding any of them cannot lower ``r``). Without ``exact``
    the pair bound stops as soon as it cannot prune (the bound is then only good for that decision)."""
    nf, pick, least, negative = _free_items(decided, cc, g, free)
    if nf == 0 or (least >= 0.0 and not signed and size > 0):
        return np.inf, -1, False
    negq = _negative_pairs(Q, free, nf) if signed else 0.0
    lower = value + negq + negative
    if lower < cut and pair_bound:
        need = cut - value - negq if not exact else -np.inf
        lower = max(lower, value + negq + _pair_bound(free, nf, g, Qp, rowsort, mark, hv, cum, need))
        return lower, pick, True
    return lower, pick, False


@njit()
def search_branch_and_bound(Q, conf, thresh, enough, pair_bound, chunk, abandon, vals, sets, in_set, g, cc,
                            decided, chosen, action, Qp, rowsort, free, mark, hv, cum, state):
    """Continue the depth-first search whose state the arguments hold (``BranchAndBound`` makes them). At each
    node the open item with the least marginal is included first, then excluded; a subtree is pruned when its
    bound reaches the cut (the worst kept value, at most ``thresh``). It pauses (returns with ``state`` ready to
    resume) once ``chunk`` work units are spent (a node is 1, a pair bound ``m``); with ``abandon`` it visits no
    subtree any more and only lowers ``state[OPEN]`` to the bounds of those it leaves, which makes ``least`` a
    valid bound; with ``enough`` it abandons the rest once ``keep`` sets below ``thresh`` are held. Returns
    ``(paused, work)``; ``state`` = depth, value, best, cut, open bound, signed, size of the set."""
    m = len(g)
    keep = len(vals)
    depth = int(state[0])
    value, best, cut, open_bound = state[1], state[2], state[3], state[4]
    signed = state[5] > 0.0
    size = int(state[6])
    work = 0
    paused = False
    while depth >= 0:
        if action[depth] == 0:
            if work >= chunk and not abandon:
                paused = True
                break
            work += 1
            leaving = abandon or (enough and vals[keep - 1] < thresh)     # its bound must then be valid
            lower, j, paired = _node_bound(Q, g, decided, cc, free, value, size, signed, pair_bound, Qp, rowsort,
                                           mark, hv, cum, cut, leaving)
            work += m if paired else 0
            if j < 0 or lower >= cut:
                depth -= 1
                continue
            if leaving:
                open_bound = min(open_bound, lower)
                depth -= 1
                continue
            chosen[depth] = j
            decided[j] = 1
            action[depth] = 1
            value += g[j]
            _flip(j, True, Q, conf, g, cc, in_set)
            size += 1
            if value < best:
                best = value
            if value < cut:
                cut = _insert(vals, sets, in_set, value, thresh)
            action[depth + 1] = 0
            depth += 1
        elif action[depth] == 1:
            j = chosen[depth]
            _flip(j, False, Q, conf, g, cc, in_set)
            value -= g[j]
            size -= 1
            action[depth] = 2
            action[depth + 1] = 0
            depth += 1
        else:
            decided[chosen[depth]] = 0
            depth -= 1
    state[0], state[1], state[2], state[3], state[4], state[6] = depth, value, best, cut, open_bound, size
    return paused, work


@njit()
def _sorted_rows(Qp):
    rowsort = np.empty(Qp.shape, dtype=np.int64)
    for j in range(len(Qp)):
        rowsort[j, :] = np.argsort(Qp[j])
    return rowsort


class BranchAndBound:
    """An exact search for the ``keep`` best sets below ``thresh`` that can stop and resume (``run``), so that a
    caller checks its deadline and Ctrl-C between chunks without searching anything twice. ``finish()`` abandons
    what is left and returns ``(vals, sets, least, complete)``: ``least`` is a valid lower bound on the minimum
    below ``thresh`` whether or not the search completed (the bounds of the subtrees it left are in it)."""

    def __init__(self, Q, d, conf, keep, thresh, pair_bound=True, enough=False):
        m = len(d)
        self.Q, self.conf = Q, conf
        self.thresh, self.enough, self.pair_bound = float(thresh), bool(enough), bool(pair_bound)
        self.vals = np.full(keep, np.inf)
        self.sets = np.zeros((keep, m), dtype=np.uint8)
        self.in_set = np.zeros(m, dtype=np.uint8)
        self.g = np.asarray(d, dtype=np.float64).copy()
        self.cc = np.zeros(m, dtype=np.int64)
        self.decided = np.zeros(m, dtype=np.uint8)
        self.chosen = np.zeros(m + 1, dtype=np.int64)
        self.action = np.zeros(m + 1, dtype=np.int64)
        self.Qp = np.maximum(Q, 0.0)
        self.rowsort = _sorted_rows(self.Qp)
        self.free = np.zeros(m, dtype=np.int64)
        self.mark = np.zeros(m, dtype=np.uint8)
        self.hv = np.zeros(m)
        self.cum = np.zeros((m, m + 1))
        signed = 1.0 if m and float(Q.min()) < 0.0 else 0.0
        # depth, value, best, cut, open bound, signed, size
        self.state = np.array([0.0, 0.0, np.inf, self.thresh, np.inf, signed, 0.0])
        self.done = False

    def run(self, chunk: int, abandon: bool = False) -> int:
        """Search on for about ``chunk`` work units (or, with ``abandon``, unwind); returns the work spent."""
        if self.done:
            return 0
        paused, work = search_branch_and_bound(
            self.Q, self.conf, self.thresh, self.enough, self.pair_bound, max(int(chunk), 1), abandon, self.vals,
            self.sets, self.in_set, self.g, self.cc, self.decided, self.chosen, self.action, self.Qp, self.rowsort,
            self.free, self.mark, self.hv, self.cum, self.state)
        self.done = not paused
        return int(work)

    @property
    def full(self) -> bool:
        """Whether ``enough`` is asked for and ``keep`` sets below ``thresh`` are held."""
        return self.enough and self.vals[-1] < self.thresh

    def finish(self):
        work = self.run(1, abandon=True) if not self.done else 0
        open_bound = float(self.state[4])
        least = min(float(self.state[2]), self.thresh, open_bound)
        return self.vals, self.sets, least, open_bound == np.inf, work


def branch_and_bound_best(Q, d, conf, keep, thresh, node_limit, pair_bound=True, enough=False):
    """The whole search in one call: exact unless ``node_limit`` (> 0) work units are exceeded (then the rest is
    abandoned with its bounds), or, with ``enough``, once ``keep`` sets below ``thresh`` are found. Returns
    ``(vals, sets, least, complete, work)``."""
    search = BranchAndBound(Q, d, conf, keep, thresh, pair_bound, enough)
    work = search.run(node_limit if node_limit > 0 else np.iinfo(np.int64).max)
    vals, sets, least, complete, more = search.finish()
    return vals, sets, least, complete, work + more


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
