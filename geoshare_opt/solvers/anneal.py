"""``anneal``: simulated annealing on the per-node-per-class gain table, with a TabuCol phase for hard conflicts.

Plan of one run:
1. classes per type are fixed up front (``allocate_classes``): at least what the warm start / greedy uses, then the
   rest of the global budget goes one class at a time to the type with the largest expected saving
   (soft positive weight + hard edges) / (k (k + 1)), within the per-type caps;
2. start from the warm start, else the budgeted DSatur, else an unbudgeted DSatur colouring with the classes
   beyond the budget folded in at random; if hard edges conflict, TabuCol (Hertz & de Werra) drives the conflict
   count to zero (no feasible state → status none);
3. annealing rounds inside the feasible region (moves into a class with a hard neighbour or over ``max_params``
   are rejected), each a schedule (``schedule``) calibrated from the gain distribution of the start state, ended by a
   best-improvement descent; later rounds restart from the best state after a random kick. Without a time limit
   the move budget is split into ``rounds`` doubling rounds; with one, a short round measures the speed and one long
   round fills the time (its temperature follows the elapsed fraction of the time, so it always ends cold), then
   more rounds while they improve. The best state of each round is offered to the context (feasible only).
   On the plain K = 2 structure, hubs (``hubs``) see a temperature scaled by their degree early in each schedule,
   and where the largest hub is far above the mean degree the long round anneals a population of copies with
   resampling (``population``);
4. Breakout Local Search (Benlic & Hao 2013; ``_bls_kernels``) from the best annealed state: steepest descent with
   the best move of every node in a heap, then tabu-directed or random jumps of adaptive strength. With a time
   limit it gets the last ``bls`` share of the time (or stops after ``BLS_STALE`` descents without a new best);
   without one it runs ``bls_iters`` iterations (default 0), so untimed runs stay reproducible and fast.

The sweeps, TabuCol, the descent and BLS are numba kernels (``_anneal_kernels``, ``_ising_kernels``,
``_bls_kernels``; the plain K = 2 structure, one type, two classes, no hard edges, no parameter cap, anneals with the
one-flip-gain Ising sweep): a Python Metropolis loop is over 300x slower, and the Gset target needs ~1e8-1e9 move
attempts. Integer weights get a table of acceptance probabilities per sweep. The measurements behind every default
here (speeds, schedules, start temperature, BLS sizes, hubs, population) are in benchmarks/solvers/gset/TUNING.md.
Kernels are cached on disk (``cache=True``); ``warmup.compile_kernels`` compiles them outside any time limit.

Reproducibility: the same seed and the same move budget give the same labels. Without a time limit the budget is
the default move count (below) or ``native["sweeps"]``; with a time limit the round lengths adapt to the measured
speed, so results can differ between runs.

Native options: ``sweeps`` (total sweeps over the movable nodes), ``rounds`` (annealing rounds, default 1),
``reheat`` (start temperature of later rounds relative to the first, default 0.5),
``t_start`` / ``t_end`` (temperatures; default calibrated), ``init`` ("greedy" | "random"), ``tabu_iters``
(TabuCol iteration budget), ``classes_per_type`` ({type: k} overriding the allocation), ``kick`` (fraction of
movable nodes moved at random between rounds, default 0.05), ``p_start`` (acceptance probability of a typical
uphill move at the calibrated start temperature), ``schedule`` ("auto" | "geometric" | "linear_beta"; auto: see
``DEFAULT_SCHEDULE``), ``bls`` (share of a
time limit given to BLS), ``bls_iters`` (BLS iterations without a time limit), ``bls_l0`` / ``bls_lmax`` / ``bls_t``
(BLS jump sizes and the stagnation count before a strong jump), ``kernel`` ("auto": the plain K = 2 sweep where the
structure allows it; "generic": always the generic sweep, for comparisons), ``population`` ("auto" | number of
copies; more than 1 needs the plain K = 2 structure), ``hub_temperature`` (true | false: hubs' scaled temperature).
"""
from __future__ import annotations

import heapq
import math
import time

import numpy as np

from ..errors import InputError
from ..instance import Instance
from ..options import SolveOptions
from ..result import Termination
from .base import Backend, Outcome, SolveContext
from .hubs import HUB_FADE, hub_scales
from .population import population_round

DEFAULT_MOVES = 3e7          # move attempts without a time limit (about a second compiled)
MAX_DEFAULT_SWEEPS = 3000
MIN_DEFAULT_SWEEPS = 200
CHUNK_S = 0.05            # seconds per compiled call in a time-driven round (time-check granularity)
STALE_ROUNDS = 3          # with a time limit: stop after this many rounds without improvement
ETAB_MAX = 256            # largest tabulated integer gain (see _State.etab)
# start temperature: a typical uphill move is accepted with this probability (TUNING.md: "start temperature")
P_START = 0.25
SCHEDULES = ("auto", "geometric", "linear_beta")
# "auto": linear in 1/T for one chain of the plain K = 2 sweep (more of the schedule cold, where the Gset tori
# still improve), geometric for a population (its resampling was tuned on it) and for the generic sweep (not
# measured against it); TUNING.md, 4th session section 5
DEFAULT_SCHEDULE = "auto"
DEFAULT_BLS_SHARE = 0.0   # with a time limit: share reserved for BLS; by default BLS gets the time annealing leaves
BLS_L0, BLS_LMAX = 0.01, 0.1   # BLS jump magnitudes as fractions of the movable nodes (Benlic & Hao 2013)
BLS_T, BLS_P0 = 1000.0, 0.8    # descents without improvement before a strong random jump; least P(directed)
BLS_TENURE = 0.1               # tabu tenure drawn in [3, BLS_TENURE * movable nodes]
BLS_STALE = 20000              # with a time limit: stop BLS after this many descents without a new best
_NATIVE = {"sweeps", "rounds", "reheat", "t_start", "t_end", "init", "tabu_iters", "classes_per_type", "kick",
           "bls", "bls_iters", "bls_l0", "bls_lmax", "bls_t", "schedule", "p_start", "kernel", "population",
           "hub_temperature"}
KERNELS = ("auto", "generic")


def allocate_classes(instance: Instance, adj, floor: np.ndarray) -> np.ndarray:
    """Classes per type: ``floor`` (at least 1) then the rest of the global budget by expected saving."""
    caps = np.array([instance.type_cap(t) for t in instance.types], dtype=np.int64)
    k = np.minimum(np.maximum(floor, 1), caps)
    if k.sum() > instance.budget.max_classes:
        k = np.ones_like(k)
    left = instance.budget.max_classes - int(k.sum())
    if adj.n_types == 1:
        return np.array([caps[0]], dtype=np.int64)
    score = adj.pos_weight + adj.hard_edges
    heap = [(-score[t] / (k[t] * (k[t] + 1)), t) for t in range(adj.n_types) if k[t] < caps[t] and score[t] > 0]
    heapq.heapify(heap)
    while left > 0 and heap:
        _, t = heapq.heappop(heap)
        k[t] += 1
        left -= 1
        if k[t] < caps[t]:
            heapq.heappush(heap, (-score[t] / (k[t] * (k[t] + 1)), t))
    return k


def _temperature(t_start: float, t_end: float, frac: float, shape: str) -> float:
    """Temperature after ``frac`` of a schedule: geometric in T, or linear in 1/T (more time cold)."""
    if shape == "linear_beta":
        return 1.0 / (1.0 / t_start + (1.0 / t_end - 1.0 / t_start) * frac)
    return t_start * (t_end / t_start) ** frac


class _State:
    """Arrays shared by the kernels (see ``_anneal_kernels``) for one run."""

    def __init__(self, instance: Instance, adj, k_per_type: np.ndarray, labels: np.ndarray):
        from . import _anneal_kernels as K
        self.adj = adj
        t = adj.type_of
        self.k_per_type = k_per_type
        self.offsets = np.concatenate([[0], np.cumsum(k_per_type)[:-1]]).astype(np.int64)
        self.kk = k_per_type[t].astype(np.int64)
        self.lo = self.offsets[t]
        self.loc = labels.astype(np.int64).copy()
        self.kmax = int(max(1, k_per_type.max()))
        self.movable = np.flatnonzero(self.kk >= 2).astype(np.int64)
        self.G, self.H = K.build_tables(self.loc, adj.indptr, adj.nbr, adj.wt, adj.hptr, adj.hnbr, self.kmax)
        b = instance.budget
        pvals = np.unique(adj.params)
        self.use_params = b.max_params is not None and int(k_per_type.sum()) > 0
        if self.use_params:
            self.pvals = pvals.astype(np.int64)
            self.prank = np.searchsorted(pvals, adj.params).astype(np.int64)
            self.cnt, self.cmax, self.stored = K.params_state(self.loc, self.lo, self.prank, int(k_per_type.sum()),
                                                              len(pvals), self.pvals)
            self.max_params = int(b.max_params)
        else:
            self.pvals = np.zeros(1, dtype=np.int64)
            self.prank = np.zeros(1, dtype=np.int64)
            self.cnt = np.zeros((1, 1), dtype=np.int32)
            self.cmax = np.zeros(1, dtype=np.int64)
            self.stored = np.zeros(1, dtype=np.int64)
            self.max_params = 0
        self.obj = np.array([K.objective(self.loc, adj.indptr, adj.nbr, adj.wt)])
        # integer weights (Gset, colouring): every gain is an integer below the largest weighted degree, so the
        # sweep tabulates its acceptance probabilities (``anneal_sweeps``' etab)
        integral = len(adj.wt) > 0 and bool(np.all(adj.wt == np.round(adj.wt)))
        size = 0
        if integral:
            src = np.repeat(np.arange(adj.n), np.diff(adj.indptr))
            size = int(np.bincount(src, weights=np.abs(adj.wt), minlength=adj.n).max()) + 2
            if size >= 2 ** 52:
                size = 0   # gains no longer exact integers in float64 (nor safe in int64): real-valued path
        # capped: a few hubs (G64: degree 589) must not switch the table off for everyone; gains beyond it fall
        # back to ``exp`` in the sweep
        self.etab = np.zeros(min(size, ETAB_MAX))

    def common(self):
        a = self.adj
        return (self.loc, self.kk, self.lo, self.G, self.H, a.indptr, a.nbr, a.wt, a.hptr, a.hnbr,
                self.use_params, self.prank, self.pvals, self.cnt, self.cmax, self.stored, self.max_params)

    def global_labels(self, loc=None) -> np.ndarray:
        return self.lo + (self.loc if loc is None else loc)

    def params_ok(self) -> bool:
        return not self.use_params or self.stored[0] <= self.max_params

    def reset_to(self, loc: np.ndarray) -> None:
        """Load ``loc`` and rebuild the tables (exact, avoids drift of floating sums over long runs)."""
        from . import _anneal_kernels as K
        a = self.adj
        self.loc[:] = loc
        self.G, self.H = K.build_tables(self.loc, a.indptr, a.nbr, a.wt, a.hptr, a.hnbr, self.kmax)
        if self.use_params:
            self.cnt, self.cmax, self.stored = K.params_state(self.loc, self.lo, self.prank,
                                                              int(self.k_per_type.sum()), len(self.pvals), self.pvals)
        self.obj[0] = K.objective(self.loc, a.indptr, a.nbr, a.wt)


class _Sweeper:
    """The annealing sweep of one run: the plain K = 2 structure (one type, two classes, no hard edges, no
    parameter cap, every node movable) goes to ``_ising_kernels`` (one flip gain per node; measured 1.3-2x more
    attempts per second than the generic table on Gset, TUNING.md), anything else to ``_anneal_kernels``.
    Call ``start()`` after every change of ``st.loc`` made outside the sweeps; the sweeps leave ``st.G`` stale,
    so callers rebuild it (``reset_to``) before using it, as the round loop does."""

    def __init__(self, st: "_State", kernel: str, hubs: bool = True):
        a = st.adj
        self.st = st
        self.ising = (kernel == "auto" and a.n_types == 1 and int(st.k_per_type[0]) == 2 and len(a.hnbr) == 0
                      and not st.use_params and len(st.movable) == a.n)
        if self.ising:
            integral = len(st.etab) > 0   # integer gains, all below 2^52
            self.wt = a.wt.astype(np.int64) if integral else a.wt
            self.gain = np.zeros(a.n, dtype=self.wt.dtype)
            self.thr = np.zeros(len(st.etab), dtype=np.int64)
        self.hub = hub_scales(a) if self.ising and hubs else np.zeros(0)
        self.hub_now = self.hub.copy()
        self.hub_mix = None

    def start(self) -> None:
        if self.ising:
            from . import _ising_kernels as I
            I.flip_gains(self.st.loc, self.st.adj.indptr, self.st.adj.nbr, self.wt, self.gain)

    def sweeps(self, ta, tb, m, seed_rng, obj, round_best, best_loc, frac: float) -> None:
        """``m`` sweeps from temperature ``ta`` to ``tb``; ``frac``: how far into its schedule the round is."""
        st = self.st
        if self.ising:
            self.ising_sweeps(st.loc, self.gain, ta, tb, m, seed_rng, obj, round_best, best_loc, frac)
        else:
            from . import _anneal_kernels as K
            K.anneal_sweeps(st.movable, *st.common(), ta, tb, m, seed_rng, obj, round_best, best_loc, st.etab)

    def ising_sweeps(self, loc, gain, ta, tb, m, seed_rng, obj, round_best, best_loc, frac: float) -> None:
        """Plain K = 2 sweeps on any replica's (labels, flip gains); the population round keeps several."""
        from . import _ising_kernels as I
        a = self.st.adj
        if len(self.hub):
            mix = max(0.0, 1.0 - frac / HUB_FADE)
            if mix != self.hub_mix:
                self.hub_mix = mix
                np.multiply(self.hub - 1.0, mix, out=self.hub_now)
                self.hub_now += 1.0
        I.ising_sweeps(loc, gain, a.indptr, a.nbr, self.wt, ta, tb, m, seed_rng, obj, round_best, best_loc,
                       self.thr, self.hub_now)


_INT_NATIVE = ("sweeps", "rounds", "tabu_iters", "bls_iters", "bls_l0", "bls_lmax")
_FLOAT_NATIVE = ("reheat", "t_start", "t_end", "kick", "bls_t")
#: largest count a native option may ask for (the kernels count in int64)
_MAX_COUNT = 1 << 62


def _check_numbers(native: dict) -> None:
    """Counts are integers in 0 .. 2**62 and the other numeric options finite numbers, checked before any work:
    a value like 1e400 or "x" is bad input, not a failure halfway through the run."""
    for key in _INT_NATIVE:
        if key in native:
            value = native[key]
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_COUNT:
                raise InputError(f"anneal: native option {key} must be an integer from 0 to 2**62, "
                                 f"got {native[key]!r}")
    for key in _FLOAT_NATIVE:
        if key in native:
            value = native[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"anneal: native option {key} must be a finite number, got {value!r}")


def _checked_native(native: dict) -> dict:
    """The options whose values can be checked before any work, checked (bad input fails before the greedy start):
    p_start, schedule, kernel, hub_temperature, population ("auto" or a positive integer), bls, and the numbers."""
    unknown = set(native) - _NATIVE
    if unknown:
        raise InputError(f"anneal: unknown native option {sorted(unknown)[0]!r} (known: {', '.join(sorted(_NATIVE))})")
    _check_numbers(native)
    def number(key, default):
        value = native.get(key, default)
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        except (TypeError, ValueError):
            raise InputError(f"anneal: native option {key} must be a number, got {value!r}") from None

    p_start = number("p_start", P_START)
    if not 0.0 < p_start < 1.0:
        raise InputError(f"anneal: native option p_start must be in (0, 1), got {p_start}")
    shape = str(native.get("schedule", DEFAULT_SCHEDULE))
    if shape not in SCHEDULES:
        raise InputError(f"anneal: schedule must be one of {', '.join(SCHEDULES)}, got {shape!r}")
    kernel = str(native.get("kernel", "auto"))
    if kernel not in KERNELS:
        raise InputError(f"anneal: kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
    hubs = native.get("hub_temperature", True)
    if not isinstance(hubs, bool):
        raise InputError(f"anneal: native option hub_temperature must be true or false, got {hubs!r}")
    pop = native.get("population", "auto")
    if pop != "auto":
        try:
            size = int(pop)
        except (TypeError, ValueError):
            size = 0
        if isinstance(pop, bool) or size != pop or size < 1:
            raise InputError(f"anneal: native option population must be \"auto\" or a positive integer, got {pop!r}")
    bls = number("bls", DEFAULT_BLS_SHARE)
    if not 0.0 <= bls < 1.0:
        raise InputError(f"anneal: native option bls must be in [0, 1), got {bls}")
    return {"p_start": p_start, "schedule": shape, "kernel": kernel, "hub_temperature": hubs, "population": pop,
            "bls": bls}


def _population_size(value, sweeper: _Sweeper) -> int:
    """Copies annealed side by side (``population``, checked by ``_checked_native``): "auto" picks by the graph's
    degrees (``population`` module); an explicit number above 1 needs the plain K = 2 structure (the copies are its
    flip-gain arrays)."""
    from .population import auto_size
    if value == "auto":
        return auto_size(hub_scales(sweeper.st.adj)) if sweeper.ising else 1
    size = int(value)
    if size > 1 and not sweeper.ising:
        raise InputError("anneal: native option population > 1 needs one type, two classes, no hard edges, no "
                         "max_params and every node movable (the plain K = 2 kernel)")
    return size


def _local_labels(instance: Instance, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relabel global classes to 0..k_t-1 inside each type; returns (local labels, classes used per type)."""
    t = instance.type_of
    loc = np.zeros(len(labels), dtype=np.int64)
    used = np.zeros(len(instance.types), dtype=np.int64)
    for ti in range(len(instance.types)):
        m = t == ti
        if m.any():
            _, inv = np.unique(labels[m], return_inverse=True)
            loc[m] = inv
            used[ti] = inv.max() + 1
    return loc, used


def _calibrate(st: _State, rng: np.random.Generator, p_start: float = P_START) -> tuple[float, float]:
    """Temperatures from the gains of random feasible moves at the start state: start where a typical uphill move
    is accepted with probability ``p_start``, end where the smallest uphill move is accepted with probability ~1e-4
    (measured on G62, 3 seeds x 40000 sweeps: final acceptance 1e-3 -> mean ratio 0.9918, 1e-4 -> 0.9953)."""
    mv = st.movable
    if len(mv) == 0:
        return 1.0, 0.01
    v = mv[rng.integers(0, len(mv), size=min(20000, 20 * len(mv)))]
    k = st.kk[v]
    a = st.loc[v]
    b = (a + 1 + (rng.integers(0, 1 << 30, size=len(v)) % np.maximum(k - 1, 1))) % k
    ok = st.H[v, b] == 0
    d = np.abs(st.G[v, b] - st.G[v, a])[ok]
    d = d[d > 1e-12]
    if len(d) == 0:
        w = np.abs(st.adj.wt)
        w = w[w > 0]
        if len(w) == 0:
            return 1.0, 0.01
        d = w
    t_start = float(np.median(d)) / math.log(1.0 / p_start)
    t_end = float(np.quantile(d, 0.02)) / math.log(1e4)
    return t_start, max(min(t_end, t_start / 5), 1e-12)


def _breakout(st: _State, seed_rng, max_iters: int, deadline, native: dict, stats: dict, offer):
    """BLS iterations (``_bls_kernels``) from the current state until ``max_iters``, the deadline, or, with a
    deadline, ``BLS_STALE`` descents without a new best (small instances finish early). Returns (labels,
    objective) of the best local optimum, or None when nothing is movable."""
    from . import _bls_kernels as B
    nm = len(st.movable)
    if nm == 0 or not st.params_ok():
        return None
    n = len(st.loc)
    L0 = int(native.get("bls_l0", max(1, round(BLS_L0 * nm))))
    # small instances: a jump of at least a few moves and strong jumps every ~n descents (the paper's values are
    # for n >= 800; with them BLS alone missed 3 of 20 ten-node optima, with these none)
    Lmax = int(native.get("bls_lmax", max(L0 + 1, round(BLS_LMAX * nm), min(5, nm))))
    T = float(native.get("bls_t", min(BLS_T, max(10.0, nm))))
    tenure_max = max(3, int(BLS_TENURE * nm))
    ctl = np.zeros(6)
    ctl[B.C_L] = L0
    ctl[B.C_LAST] = np.nan
    tabu = np.zeros(n, dtype=np.int64)
    ring = tenure_max + 2
    ring_head = np.full(ring, -1, dtype=np.int64)
    ring_node = np.zeros(ring, dtype=np.int64)
    ring_next = np.full(ring, -1, dtype=np.int64)
    best_obj = np.array([st.obj[0]])
    best_loc = st.loc.copy()
    done, chunk = 0, 1
    offered = float(best_obj[0])
    while done < max_iters:
        m = min(chunk, max_iters - done)
        t0 = time.monotonic()
        B.bls(st.movable, *st.common(), st.obj, best_obj, best_loc, seed_rng, ctl, tabu, ring_head, ring_node,
              ring_next, m, L0, Lmax, T, BLS_P0, 3, tenure_max)
        done += m
        dt = time.monotonic() - t0
        if best_obj[0] < offered - 1e-9 * max(1.0, abs(offered)):
            offered = float(best_obj[0])
            offer(best_loc.copy())   # so a time limit or Ctrl-C during BLS keeps it
        if deadline is not None:
            if time.monotonic() >= deadline or ctl[B.C_SINCE_BEST] >= BLS_STALE:
                break
            # calls of about CHUNK_S seconds: the deadline is checked between calls
            chunk = max(1, min(4 * chunk, int(chunk * CHUNK_S / max(dt, 1e-6))))
        else:
            chunk = max_iters
    stats.update(bls_iterations=int(ctl[B.C_DESCENTS]), bls_moves=int(ctl[B.C_IT]))
    return best_loc, best_obj[0]


class AnnealBackend(Backend):
    name = "anneal"
    summary = "simulated annealing on the gain table, Breakout Local Search, TabuCol for hard conflicts (numba)"
    exact = False
    gives_bound = False
    determinism = "seeded"
    modules = ("numba",)
    distributions = ("numba",)

    def run(self, instance: Instance, options: SolveOptions, ctx: SolveContext) -> Outcome:
        """The four steps of the module docstring; each returns early when it ends the run."""
        run = _Run(instance, options, ctx)
        st = run.start_state()                                 # 1. start labels and classes per type
        stuck = run.remove_conflicts(st)                       # 2. TabuCol on hard conflicts
        if stuck is not None:
            return stuck
        best = run.anneal(st)                                  # 3. annealing rounds
        if best is None:
            return Outcome(Termination.COMPLETED, st.global_labels(), None, "", run.stats)
        best = run.breakout(st, best)                          # 4. Breakout Local Search
        term = Termination.TIME_LIMIT if run.out_of_time() else Termination.COMPLETED
        return Outcome(term, st.global_labels(best[0]), None, "", run.stats)


class _Run:
    """One anneal run: the instance, its options and what the steps share (random streams, deadline, stats)."""

    def __init__(self, instance: Instance, options: SolveOptions, ctx: SolveContext):
        from ._csr import adjacency
        self.instance = instance
        self.native = dict(options.native)
        self.checked = _checked_native(self.native)
        self.warm_start = options.warm_start
        self.ctx = ctx
        self.deadline = ctx.deadline
        self.rng = np.random.default_rng(options.seed)
        self.seed_rng = np.array([np.uint64(options.seed * 0x9E3779B97F4A7C15 % (1 << 64) | 1)], dtype=np.uint64)
        self.adj = adjacency(instance)
        self.stats: dict = {}

    def time_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def out_of_time(self) -> bool:
        return self.deadline is not None and self.time_left() <= 0

    # 1. ------------------------------------------------------------------------------------------ the start
    def start_state(self) -> _State:
        """The warm start, else the budgeted DSatur colouring (``init="greedy"``), else a fold of an unbudgeted
        one; classes per type by ``allocate_classes`` (or native ``classes_per_type``)."""
        from .dsatur import greedy_labels, unbounded_labels
        instance, native, adj = self.instance, self.native, self.adj
        n = len(instance.nodes)
        start = None
        if self.warm_start is not None:
            start, self.stats["init"] = np.asarray(self.warm_start, dtype=np.int64), "warm_start"
        elif native.get("init", "greedy") == "greedy":
            start = greedy_labels(instance)
            self.stats["init"] = "greedy" if start is not None else "random (greedy found no colouring)"
        else:
            self.stats["init"] = "random"
        loc, used = _local_labels(instance, start) if start is not None else (None, np.ones(adj.n_types, np.int64))
        kpt = self._classes_per_type(used)
        if loc is None or np.any(used > kpt):
            if instance.budget.max_params is not None:
                loc = np.zeros(n, dtype=np.int64)   # one class per type: the least parameters
            else:
                # an unbudgeted DSatur colouring with the classes beyond the budget folded in at random:
                # few conflicts left for TabuCol (a random start leaves many more)
                loc, _ = _local_labels(instance, unbounded_labels(instance))
                over = loc >= kpt[adj.type_of]
                loc[over] = (self.rng.random(int(over.sum())) * kpt[adj.type_of[over]]).astype(np.int64)
        self.stats["classes_per_type"] = {t: int(k) for t, k in zip(instance.types, kpt)}
        st = _State(instance, adj, kpt, loc)
        if not st.params_ok():
            # a warm start over the parameter cap: restart from the greedy, else one class per type
            g = greedy_labels(instance) if self.stats["init"] == "warm_start" else None
            gl = _local_labels(instance, g)[0] if g is not None else None
            st.reset_to(gl if gl is not None and np.all(gl < kpt[adj.type_of]) else np.zeros(n, dtype=np.int64))
            self.stats["init"] += " (over max_params: replaced)"
        return st

    def _classes_per_type(self, used: np.ndarray) -> np.ndarray:
        kpt = allocate_classes(self.instance, self.adj, used)
        for t, kt in dict(self.native.get("classes_per_type", {})).items():
            if t not in self.instance.types:
                raise InputError(f"anneal: classes_per_type names unknown type {t!r}")
            kpt[self.instance.types.index(t)] = int(kt)
        return kpt

    # 2. ------------------------------------------------------------------------------------------ TabuCol
    def remove_conflicts(self, st: _State) -> Outcome | None:
        """TabuCol (Hertz & de Werra) until no hard edge is inside a class; the run's final Outcome when it cannot
        (no feasible state), else None with the feasible start offered to the context."""
        from . import _anneal_kernels as K
        n = len(self.instance.nodes)
        conf = K.hard_conflicts(st.loc, st.H)
        self.stats["start_conflicts"] = int(conf)
        if conf > 0:
            tabu = np.zeros((n, st.kmax), dtype=np.int64)
            best_loc = st.loc.copy()
            best_conf = np.array([conf + 1], dtype=np.int64)
            default = max(200_000, 2000 * n) if self.deadline is None else 1 << 62
            budget = int(self.native.get("tabu_iters", default))
            it, chunk = 0, 20_000
            while it < budget and best_conf[0] > 0:
                left = self.time_left()
                if left is not None and left <= 0:
                    break
                it = K.tabucol(*st.common(), tabu, it, min(chunk, budget - it), self.seed_rng, best_loc, best_conf)
            st.reset_to(best_loc)
            self.stats["tabu_iterations"] = int(it)
            if best_conf[0] > 0:
                self.stats["conflicts_left"] = int(best_conf[0])
                term = Termination.TIME_LIMIT if self.out_of_time() else Termination.COMPLETED
                return Outcome(term, None, None,
                               f"no feasible colouring found ({int(best_conf[0])} hard conflicts left)", self.stats)
        if not st.params_ok():
            return Outcome(Termination.COMPLETED, None, None, "start state exceeds max_params", self.stats)
        self.ctx.offer(st.global_labels())
        return None

    # 3. ------------------------------------------------------------------------------------------ annealing
    def anneal(self, st: _State) -> tuple[np.ndarray, float] | None:
        """Annealing rounds from the feasible start (``_Annealing``); the best state and its objective, or None
        when nothing can move (no movable node or no weights: the start is the answer)."""
        if len(st.movable) == 0 or len(self.adj.wt) == 0:
            self.stats["rounds"] = 0
            return None
        return _Annealing(self, st).run()

    # 4. ------------------------------------------------------------------------------------------ BLS
    def breakout(self, st: _State, best: tuple[np.ndarray, float]) -> tuple[np.ndarray, float]:
        """Breakout Local Search from the best annealed state in the time left, or ``bls_iters`` iterations without
        a time limit (default 0) or with a sweep count; the better of its answer and ``best``."""
        default = 0 if self.deadline is None or "sweeps" in self.native else 1 << 62
        bls_iters = int(self.native.get("bls_iters", default))
        if bls_iters <= 0 or (self.deadline is not None and self.time_left() <= 0):
            return best
        st.reset_to(best[0])
        found = _breakout(st, self.seed_rng, bls_iters, self.deadline, self.native, self.stats,
                          lambda labels: self.ctx.offer(st.global_labels(labels)))
        if found is not None and float(found[1]) < best[1] - 1e-9 * max(1.0, abs(best[1])):
            best = found[0], float(found[1])
            self.ctx.progress({"event": "bls", "objective": best[1], "elapsed": self.ctx.elapsed()})
        return best


class _Annealing:
    """The annealing rounds of one run. Without a time limit: ``rounds`` rounds of doubling length splitting the
    sweep budget. With one: a short round measures the speed, one long round fills the time (capped at 100x the
    default budget), then more rounds while they improve. Every round after the first restarts from the best state
    after a random kick; its best state is polished by a descent and offered to the context."""

    def __init__(self, run: _Run, st: _State):
        native, checked = run.native, run.checked
        self.job, self.st = run, st
        self.nm = len(st.movable)
        t_start, t_end = _calibrate(st, run.rng, checked["p_start"])
        self.t_start = float(native.get("t_start", t_start))
        self.t_end = float(native.get("t_end", t_end))
        self.rounds = max(1, int(native.get("rounds", 1)))
        self.reheat = float(native.get("reheat", 0.5))
        self.kick = float(native.get("kick", 0.05))
        self.sweeper = _Sweeper(st, checked["kernel"], checked["hub_temperature"])
        self.pop = _population_size(checked["population"], self.sweeper)
        shape = checked["schedule"]
        if shape == "auto":
            shape = "linear_beta" if self.sweeper.ising and self.pop == 1 else "geometric"
        self.shape = shape
        if "sweeps" in native:
            self.total_sweeps = int(native["sweeps"])
        else:
            self.total_sweeps = int(min(MAX_DEFAULT_SWEEPS, max(MIN_DEFAULT_SWEEPS, DEFAULT_MOVES / self.nm)))
        self.timed = run.deadline is not None and "sweeps" not in native
        bls_share = checked["bls"] if self.timed else 0.0
        # with a time limit, annealing gets the first (1 - bls) of the time left, BLS the rest
        self.sa_deadline = (None if run.deadline is None
                            else time.monotonic() + (1.0 - bls_share) * max(0.0, run.time_left()))
        self.rate = None            # sweeps per second, measured
        sw = self.sweeper
        run.stats.update(hubs=int(np.count_nonzero(sw.hub != 1.0)) if len(sw.hub) else 0,
                         kernel="ising" if sw.ising else "generic", population=self.pop, schedule=shape,
                         t_start=self.t_start, t_end=self.t_end)

    def temperature(self, t_start: float, frac: float) -> float:
        return _temperature(t_start, self.t_end, frac, self.shape)

    def run(self) -> tuple[np.ndarray, float]:
        from . import _anneal_kernels as K
        st, ctx = self.st, self.job.ctx
        best, best_obj = st.loc.copy(), float(st.obj[0])
        self.round_best = np.array([best_obj])
        self.best_loc = st.loc.copy()
        first = max(1, self.total_sweeps // (2 ** self.rounds - 1))
        sweeps_done, stale, r = 0, 0, 0       # stale: rounds since the last improvement
        while True:
            plan = self._round_plan(r, first, stale, sweeps_done)
            if plan is None:
                break
            length, fill = plan
            if r > 0:
                st.reset_to(best)
                K.perturb(st.movable, *st.common(), max(1, int(self.kick * self.nm)), self.job.seed_rng, st.obj)
            ts = self.t_start if r == 0 or (self.timed and r == 1) else self.t_start * self.reheat
            done, stopped = self._round(ts, length, fill)
            sweeps_done += done
            # the round's best state, polished to a local optimum
            st.reset_to(self.best_loc)
            K.descend(st.movable, *st.common(), st.obj, 1000)
            stale += 1
            if st.obj[0] < best_obj - 1e-9 * max(1.0, abs(best_obj)) and st.params_ok():
                best_obj, best = float(st.obj[0]), st.loc.copy()
                ctx.offer(st.global_labels(best))
                stale = 0
            ctx.progress({"event": "round", "round": r, "objective": best_obj, "elapsed": ctx.elapsed()})
            r += 1
            if stopped:
                break
        self.job.stats.update(rounds=r, sweeps=int(sweeps_done), moves_tried=int(sweeps_done) * self.nm)
        return best, best_obj

    def _round_plan(self, r: int, first: int, stale: int, sweeps_done: int) -> tuple[int, bool] | None:
        """(sweeps, whether the round fills the time left) of round ``r``, or None when annealing is over. Round r
        of an untimed run anneals ``first * 2^r`` sweeps; a timed run measures the speed in a short first round,
        then fills the time (one long schedule beat restarts on G62, TUNING.md), then stops once rounds stop
        improving (small instances converge long before the deadline)."""
        if not self.timed:
            return (first * 2 ** r, False) if r < self.rounds else None
        if stale >= STALE_ROUNDS and sweeps_done >= min(1e5, 1e9 / self.nm):
            return None
        if time.monotonic() >= self.sa_deadline:
            return None
        if r == 0:
            return max(1, self.total_sweeps // 8), False
        return 100 * self.total_sweeps, True

    def _round(self, ts: float, length: int, fill: bool) -> tuple[int, bool]:
        """One round from start temperature ``ts``: (sweeps done, stopped by the deadline). ``round_best`` /
        ``best_loc`` collect its best state."""
        st = self.st
        self.round_best[0] = st.obj[0]
        self.best_loc[:] = st.loc
        self.sweeper.start()
        t0 = time.monotonic()
        if self.pop > 1 and (fill or not self.timed):
            # population annealing (``population``): the same schedule, ``pop`` copies resampled per step
            end_time = t0 + max(1e-3, (self.sa_deadline - t0) * 0.97) if fill else None
            done, stopped, self.rate, steps = population_round(
                self.sweeper, self.pop, lambda f: self.temperature(ts, f), length, end_time, self.sa_deadline,
                self.rate, self.job.seed_rng, self.job.rng, st.obj, self.round_best, self.best_loc)
            self.job.stats["population_steps"] = self.job.stats.get("population_steps", 0) + steps
        elif fill:
            done, stopped = self._filling_round(ts, length, t0)
        else:
            done, stopped = self._counted_round(ts, length)
        dt = time.monotonic() - t0
        if dt > 0.01:
            self.rate = done / dt if self.rate is None else 0.5 * (self.rate + done / dt)
        return done, stopped

    def _filling_round(self, ts: float, length: int, t0: float) -> tuple[int, bool]:
        """Sweeps until the time left is used or ``length`` sweeps are done (small instances). The temperature
        follows the larger of the two fractions done, so the schedule always ends cold even when the machine's
        speed changes (a plan of sweeps from a speed measured under load was cut off mid-schedule: TUNING.md)."""
        span = max(1e-3, (self.sa_deadline - t0) * 0.97)
        done, frac = 0, 0.0
        while frac < 1.0:
            rate = self.rate
            m = max(1, int(rate * CHUNK_S)) if rate else 1
            now = time.monotonic()
            f_next = min(1.0, max((now - t0 + m / rate) / span if rate else frac, (done + m) / length))
            ta, tb = self.temperature(ts, frac), self.temperature(ts, max(frac, f_next))
            self.sweeper.sweeps(ta, tb, m, self.job.seed_rng, self.st.obj, self.round_best, self.best_loc, frac)
            done += m
            after = time.monotonic()
            if after > now:
                self.rate = 0.7 * rate + 0.3 * m / (after - now) if rate else m / (after - now)
            frac = min(1.0, max((after - t0) / span, done / length))
            if after >= self.sa_deadline:
                return done, True
        return done, False

    def _counted_round(self, ts: float, length: int) -> tuple[int, bool]:
        """``length`` sweeps in compiled calls of about 2e6 moves (the deadline, if any, checked between calls)."""
        done, chunk = 0, max(1, int(2e6 / self.nm))
        while done < length:
            m = min(chunk, length - done)
            ta, tb = self.temperature(ts, done / length), self.temperature(ts, (done + m) / length)
            self.sweeper.sweeps(ta, tb, m, self.job.seed_rng, self.st.obj, self.round_best, self.best_loc,
                                done / length)
            done += m
            if self.sa_deadline is not None and time.monotonic() >= self.sa_deadline:
                return done, True
        return done, False
