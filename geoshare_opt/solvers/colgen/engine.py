"""Branch and price for one type at a class budget k, over one column pool that serves every k
(formulations/colgen.md).

``TypeEngine`` holds what the points of one type share: the scaled costs, the column pool, the master LP and the
pricer. ``TypeEngine.solve(k, deadline, hint)`` runs column generation at the root (heuristic pricing first, exact
pricing at Wentges-smoothed duals to prove that no column is left), then Ryan–Foster branch and price with best-bound
node selection, incumbents from integral node LPs, the restricted-master MIP and the caller's hint. Every exact
pricing gives a Lagrangian bound ``Σ_v π_v + k · min(0, min_S r(S))`` that is valid whatever the LP's state, so a
deadline leaves a valid bound. A time-limited call that branch and price leaves open gets a tabu search on its
incumbent (_local_search.py) and, with a gap above 2 %, the type's SDP bound with its cutting planes (sdp_bound.py;
resumed by the next call at that k until it converges, valid at every smaller k); once it has converged within 1 %,
probing fixes pairs together and the contracted problem is solved exactly (probing.py). Where that settled the
budget above, a call does it before branch and price instead of after. Ctrl-C
(``KeyboardInterrupt``) ends the call with the incumbent and no bound (``PointResult.interrupted``).
"""
from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .master import INF, ColumnPool, MasterLP, restricted_mip
from .pricing import ENUM_MAX_ITEMS, NodeProblem, Priced, QuadraticPricer, Rules, TablePricer, WorkMeter
from ._local_search import iterated_tabu_search
from .probing import contract, probe_pairs
from .sdp_bound import MAX_ROUNDS, SdpBound

#: relative optimality tolerance, the package's (``decompose.Curve.exact``: lo >= hi − 1e-9 · max(1, |hi|));
#: the engine closes at half of it so that the curve sees the point as exact
GAP_TOL = 0.5e-9
#: a column enters only if its reduced cost (scaled units, max |w| = 1) is below −RC_TOL
RC_TOL = 1e-9
#: a node LP value counts as integral when every pair's "together" value is this close to 0 or 1
INTEGRAL_TOL = 1e-6
#: oracle pricing without a subset table: how many of the surrogate's proposals are improved by single moves
ORACLE_STARTS = 4
#: the share of a time-limited call's time kept back from branch and price for a point it leaves open: a tabu
#: search on the incumbent, then the SDP bound (sdp_bound.py); what they leave goes back to branch and price
FINISH_SHARE = 0.2
#: the SDP bound starts only if the relative gap after the tabu search is above this (once started, later calls
#: at that k continue its cutting planes until they converge)
SDP_MIN_GAP = 0.02
#: probing (probing.py) runs on a point whose converged SDP bound is within this relative gap of the incumbent
PROBE_MAX_GAP = 0.01
#: probing stops at this many groups: the contracted problem is small enough for branch and price to prove
EXACT_GROUPS = 24
#: the iterated tabu search (_local_search.py): rounds × steps (about 0.1 s at 48 nodes)
TABU_ROUNDS, TABU_STEPS = 300, 1000


@dataclass
class Settings:
    """Tuning of the engine (native options of the ``colgen`` backend, see backend.py)."""
    keep: int = 24                  # classes kept per pricing call
    smoothing: float = 0.5          # Wentges: exact pricing at α·π_centre + (1 − α)·π_LP (0 = off)
    mip_nodes: int = 50             # branch-and-bound nodes of the restricted-master MIP (0 = none)
    enum_max: int = ENUM_MAX_ITEMS  # exact pricing by enumeration up to this many groups
    work_limit: float = 0.0         # deterministic work budget of a run (pricing.WorkMeter units; 0 = none)
    oracle_steps: int = 3           # oracle pricing without a subset table: add / drop moves per class (0 = none)
    stop_at_keep: int = 1           # 1: branch-and-bound pricing stops at `keep` negative classes; 0: searches all
    sdp_cuts: int = 1               # 1: the SDP bound adds triangle and clique cuts; 0: the plain relaxation


@dataclass
class PointResult:
    """The answer at one budget k, in the caller's cost units: ``status`` optimal | infeasible | feasible |
    unknown; ``labels`` (local, at most k classes) with ``value``; ``bound`` a proven lower bound (−inf if none)."""
    status: str
    labels: np.ndarray | None
    value: float
    bound: float
    stats: dict = field(default_factory=dict)
    interrupted: bool = False


class TypeEngine:
    """One type's branch and price, local indices. ``W`` (symmetric, zero diagonal, 0 on hard pairs) are the pair
    weights: the class cost itself when ``cost_of`` is None (additive), else the surrogate whose quadratic pricing
    proposes classes for the oracle ``cost_of`` (local members -> costs). ``table`` (every subset's cost, bit
    masks) makes a non-additive oracle's pricing exact; ``exact_costs`` False marks the costs as estimates."""

    def __init__(self, W: np.ndarray, hard: np.ndarray, *, cost_of: Callable[[list], np.ndarray] | None = None,
                 table: np.ndarray | None = None, exact_costs: bool = True, settings: Settings | None = None,
                 work: WorkMeter | None = None):
        self.settings = settings or Settings()
        self.work = work if work is not None else WorkMeter(self.settings.work_limit)
        self.n = n = len(W)
        self.hard = np.asarray(hard, dtype=bool)
        self.additive = cost_of is None
        self._cost_of = cost_of
        self._oracle_costs: dict[bytes, float] = {}
        self.exact_costs = exact_costs
        self.scale = _cost_scale(W, table)
        self.W = W / self.scale
        self.proposer = QuadraticPricer(self.settings.enum_max, self.work)
        w = self.W[np.triu_indices(n, 1)]
        if self.additive:
            self.pricer = self.proposer
            # every partition costs at most the positive weights: a node bound above that has no feasible colouring
            self.virtual_ub = float(w[w > 0].sum()) + 1.0
        else:
            self.pricer = TablePricer(table / self.scale, self.hard) if table is not None else None
            top_cost = float(np.max(table, initial=0.0)) / self.scale if table is not None else INF
            self.virtual_ub = n * max(top_cost, 0.0) + 1.0     # at most n classes, each at most the dearest
        # the artificial column (count-row slack) costs more than any colouring can: an integral node that needs
        # it has a bound above virtual_ub and is pruned as infeasible
        self.penalty = 2.0 * self.virtual_ub + 2.0 * float(np.abs(w).sum()) if np.isfinite(self.virtual_ub) \
            else 1e6
        self.pool = ColumnPool(n)
        self.add_classes([np.array([i]) for i in range(n)])
        self.lp = MasterLP(self.pool, n, self.penalty)
        self._unfinished: dict[int, _Run] = {}     # k -> the search a deadline stopped, resumed by the next call
        self._bounds: dict[int, float] = {}         # k -> a bound proven outside branch and price (SDP, probing)
        self._sdp_ascents: dict[int, SdpBound] = {}  # k -> its ascent and cuts, resumed by the next call
        self._sdp_finished: set[int] = set()        # the budgets whose cutting-plane loop has converged
        self._probed: set[int] = set()              # the budgets probed (once each)
        self._bounds_led: set[int] = set()          # budgets whose call ended with the bound from SDP or probing
        self.probing = True                         # off in the engine of a contracted problem
        self._searched: set[int] = set()            # the budgets whose incumbent the tabu search has improved

    @property
    def proves(self) -> bool:
        """Whether pricing is exact and the costs are true costs (bounds and optimality can be claimed)."""
        return self.pricer is not None and self.exact_costs

    # ------------------------------------------------------------------ columns
    def costs(self, classes: list[np.ndarray]) -> np.ndarray:
        """Scaled costs of classes (local members). An oracle is asked once per class: its answers are kept, so
        pricing rounds that meet a class again (every k of the type) cost nothing."""
        if self.additive:
            return np.array([float(np.triu(self.W[np.ix_(c, c)], 1).sum()) for c in classes])
        keys = [np.unique(c).tobytes() for c in classes]
        new = {key: np.unique(c) for key, c in zip(keys, classes) if key not in self._oracle_costs}
        if new:
            values = np.asarray(self._cost_of(list(new.values())), dtype=np.float64) / self.scale
            self._oracle_costs.update(zip(new, values.tolist()))
        return np.array([self._oracle_costs[key] for key in keys])

    def add_classes(self, classes: list[np.ndarray], costs: list[float] | None = None) -> int:
        """Add the classes not yet in the pool (hard pairs never); ``costs`` (scaled) when already known."""
        keep = [i for i, c in enumerate(classes) if len(c) and self.pool.find(np.unique(c)) is None
                and not np.any(self.hard[np.ix_(c, c)])]
        if not keep:
            return 0
        new = [np.unique(classes[i]) for i in keep]
        values = self.costs(new) if costs is None else [costs[i] for i in keep]
        added = 0
        for c, cost in zip(new, values):
            added += self.pool.add(c, cost) is not None
        return added

    def add_labels(self, labels: np.ndarray) -> None:
        self.add_classes([np.flatnonzero(labels == c) for c in np.unique(labels)])

    def value_of(self, labels: np.ndarray) -> float:
        """Scaled cost of a labelling (sum of its classes' pool costs)."""
        total = 0.0
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            j = self.pool.find(members)
            total += self.pool.costs[j] if j is not None else float(self.costs([members])[0])
        return total

    # ------------------------------------------------------------------ one budget
    def solve(self, k: int, deadline: float | None = None, hint: np.ndarray | None = None) -> PointResult:
        """Branch and price at budget ``k`` (at most k classes). A search that an earlier call's deadline stopped
        at this k resumes where it stopped (its open nodes, bounds and incumbent), so time given to a point in
        several calls adds up."""
        run = self._unfinished.pop(k, None)
        if run is None:
            run = _Run(self, k, deadline)
        else:
            run.resume(deadline)
        if k <= 1 or self.n <= 1:
            return run.one_class()
        try:
            if hint is not None and self._breaks_hard(hint):
                hint = None
            if hint is None or len(np.unique(hint)) > k:
                hint = merged_labels(self.W, self.hard, k, hint)
                if hint is None:
                    hint = merged_labels(self.W, self.hard, k)
            if hint is not None:
                self.add_labels(hint)
                run.offer(hint, self.value_of(hint), "greedy merge")
            if self.keeps_time_back(k, deadline):
                out = self._solve_with_bounds(run, deadline)
            else:
                out = run.branch_and_price()
            if run.heap and out.status not in ("optimal", "infeasible"):
                self._unfinished[k] = run
            return out
        except (KeyboardInterrupt, SystemError) as exc:     # Ctrl-C: the incumbent stands, nothing is proven
            # a Ctrl-C that lands while numba hands a kernel's result back surfaces as a SystemError caused by it
            if not isinstance(exc, KeyboardInterrupt) and not isinstance(exc.__cause__, KeyboardInterrupt):
                raise
            out = run.result(-INF)
            out.status = "feasible" if out.labels is not None else "unknown"
            out.bound, out.interrupted = -INF, True
            return out

    def global_bound(self, k: int) -> float:
        """The best bound known for budget ``k`` from outside branch and price (SDP, probing; scaled units):
        f(k) ≥ f(k') for k' ≥ k (at most k classes), so a bound at a larger budget holds here too; −inf if none."""
        return max((b for kk, b in self._bounds.items() if kk >= k), default=-INF)

    def keeps_time_back(self, k: int, deadline: float | None) -> bool:
        """Whether a call at ``k`` keeps time back for an open point (tabu search, SDP bound): a time-limited call
        (an unlimited one proves optimality itself) on the graph objective, 2 ≤ k < n, not both done yet."""
        return deadline is not None and self.additive and 2 <= k < self.n and \
            (k not in self._searched or k not in self._sdp_finished)

    def compute_sdp(self, k: int, deadline: float | None) -> float:
        """Improve the SDP bound at ``k`` until its cutting planes converge or ``deadline``; the best SDP bound
        known at ``k`` (scaled units)."""
        if k not in self._sdp_ascents:
            rounds = MAX_ROUNDS if self.settings.sdp_cuts else 0
            self._sdp_ascents[k] = SdpBound(self.W, self.hard, k, max_rounds=rounds)
        ascent = self._sdp_ascents[k]
        self._bounds[k] = max(self.global_bound(k), ascent.improve(deadline))
        if ascent.converged:
            self._sdp_finished.add(k)
        return self._bounds[k]

    def _solve_with_bounds(self, run: "_Run", deadline: float) -> PointResult:
        """A time-limited call that keeps time back: where branch and price did not settle k + 1 (its call ended on
        the SDP or probing bound), the bounds of ``_bound_open_point`` first and branch and price with what they
        leave; else branch and price with ``1 − FINISH_SHARE`` of the time, then ``_finish_open_point``."""
        if (run.k + 1) in self._bounds_led and run.labels is not None:
            self._bound_open_point(run, deadline, always=True)
            out = run.branch_and_price()
        else:
            run.deadline = time.monotonic() + (1.0 - FINISH_SHARE) * max(0.0, deadline - time.monotonic())
            out = self._finish_open_point(run, run.branch_and_price(), deadline)
        if self._bounds.get(run.k, -INF) >= run.tree_bound() - run.tol():
            self._bounds_led.add(run.k)
        return out

    def _finish_open_point(self, run: "_Run", out: PointResult, deadline: float) -> PointResult:
        """After branch and price stopped at its share of the time with the point open: the tabu search on its
        incumbent, the SDP bound and probing (``_bound_open_point``); whatever time is left goes back to branch
        and price."""
        run.deadline = deadline
        if out.status != "feasible":
            return run.branch_and_price() if out.status == "unknown" and run.heap else out
        self._bound_open_point(run, deadline)
        return run.branch_and_price()

    def _bound_open_point(self, run: "_Run", deadline: float, always: bool = False) -> None:
        """The tabu search on the run's incumbent; the SDP bound if the relative gap is above ``SDP_MIN_GAP``,
        an earlier call started it, or ``always``; probing once the SDP bound has converged within
        ``PROBE_MAX_GAP``."""
        if run.k not in self._searched:
            self._improve_incumbent(run)
        started = run.k in self._sdp_ascents
        wide = run.upper - run.lower() > SDP_MIN_GAP * max(abs(run.upper), 1e-12)
        if run.k not in self._sdp_finished and (started or wide or always):
            t0 = time.monotonic()
            run.stats["sdp_bound"] = self.compute_sdp(run.k, deadline) * self.scale
            run.stats["sdp_s"] = round(time.monotonic() - t0, 4)
            run.stats["sdp_cuts"] = self._sdp_ascents[run.k].cut_count
        gap = run.upper - run.lower()
        if self.probing and run.k in self._sdp_finished and run.k not in self._probed and \
                run.tol() < gap <= PROBE_MAX_GAP * max(abs(run.upper), 1e-12):
            self._probe(run, deadline)

    def _probe(self, run: "_Run", deadline: float) -> None:
        """Probing (probing.py) from the converged SDP bound at the run's k, then the contracted problem by a
        branch and price of its own; the bound min(probe bounds, contracted bound) joins the global bounds and
        the contracted optimum, if better, the incumbent."""
        t0 = time.monotonic()
        self._probed.add(run.k)
        probed = probe_pairs(self._sdp_ascents[run.k], self.hard, run.upper, EXACT_GROUPS, deadline)
        run.stats["probes"], run.stats["probe_fixed"] = probed.probes, probed.fixed
        if probed.fixed and probed.groups.max() + 1 <= EXACT_GROUPS:
            Wc, hard_c, inside = contract(self.W, self.hard, probed.groups)
            small = TypeEngine(Wc, hard_c, settings=self.settings, work=self.work)
            small.probing = False
            res = small.solve(run.k, deadline)
            if res.interrupted:
                raise KeyboardInterrupt     # the contracted solve caught a Ctrl-C meant for this call
            if res.labels is not None:
                labels = np.asarray(res.labels)[probed.groups]
                if not self._breaks_hard(labels) and len(np.unique(labels)) <= run.k:
                    self.add_labels(labels)
                    run.offer(labels, self.value_of(labels), "probing")
            bound = min(probed.bound, res.bound + inside)
            if bound > self._bounds.get(run.k, -INF):
                self._bounds[run.k] = bound
            run.stats["contracted"] = {"nodes": len(Wc), "status": res.status}
        run.stats["probe_s"] = round(time.monotonic() - t0, 4)

    def _improve_incumbent(self, run: "_Run") -> None:
        """The iterated tabu search (_local_search.py) from the run's incumbent; a better colouring is offered."""
        t0 = time.monotonic()
        start = np.unique(run.labels, return_inverse=True)[1].astype(np.int64)
        labels, _ = iterated_tabu_search(self.W, self.hard, start, run.k, TABU_ROUNDS, TABU_STEPS, 0)
        labels = np.unique(labels, return_inverse=True)[1]
        self._searched.add(run.k)
        if not self._breaks_hard(labels):       # the search keeps hard pairs apart; checked, not assumed
            self.add_labels(labels)
            run.offer(labels, self.value_of(labels), "tabu search")
        run.stats["tabu_s"] = round(time.monotonic() - t0, 4)

    def _breaks_hard(self, labels: np.ndarray) -> bool:
        return bool(np.any(self.hard & (labels[:, None] == labels[None, :])))


class _Run:
    """The state of one ``TypeEngine.solve`` call: incumbent, bounds, counters."""

    def __init__(self, engine: TypeEngine, k: int, deadline: float | None):
        self.e = engine
        self.k = k
        self.deadline = deadline
        self.upper = engine.virtual_ub       # a bound above every feasible value until an incumbent exists
        self.labels: np.ndarray | None = None
        self.stats = {"k": k, "nodes": 0, "lp_solves": 0, "columns_heuristic": 0, "columns_exact": 0,
                      "exact_pricings": 0, "mispricings": 0, "incumbent_from": None, "lp_s": 0.0, "exact_s": 0.0,
                      "mip_s": 0.0, "resumed": 0}
        self.started = time.monotonic()
        self.counter = itertools.count()
        self.heap: list = [(-INF, next(self.counter), Rules())]      # open nodes: (bound, tie-break, rules)

    def resume(self, deadline: float | None) -> None:
        """Continue this search under a new deadline (the counters add up; the wall time is this call's)."""
        self.deadline = deadline
        self.started = time.monotonic()
        self.stats["resumed"] += 1

    def expired(self) -> bool:
        return self.e.work.exhausted or (self.deadline is not None and time.monotonic() >= self.deadline)

    def time_left(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def tol(self) -> float:
        return GAP_TOL * max(1.0 / self.e.scale, abs(self.upper) if self.labels is not None else 0.0)

    def offer(self, labels: np.ndarray, value: float, source: str = "hint") -> None:
        if self.labels is None or value < self.upper:
            self.labels, self.upper = labels.copy(), value
            self.stats["incumbent_from"] = source

    def one_class(self) -> PointResult:
        """k = 1: every node in one class, unless a hard pair forbids it."""
        e = self.e
        if np.any(e.hard):
            self.stats["wall_s"] = 0.0
            return PointResult("infeasible", None, INF, INF, self.stats)
        labels = np.zeros(e.n, dtype=np.int64)
        self.offer(labels, self.e.value_of(labels), "one class")
        return self.result(self.upper)

    # ------------------------------------------------------------------ the tree
    def branch_and_price(self) -> PointResult:
        """Best-bound search over the open nodes until none is left or the deadline; a node the deadline
        stops goes back to the open nodes with its bound, so the search can resume."""
        e, heap = self.e, self.heap
        e.lp.set_k(self.k)
        while heap:
            bound, tie, rules = heapq.heappop(heap)
            if max(bound, e.global_bound(self.k)) >= self.upper - self.tol():
                heap.clear()
                break
            if self.expired():
                heapq.heappush(heap, (bound, tie, rules))
                break
            outcome = self.process(rules, bound)
            if outcome is None:
                continue
            node_bound, pair, complete = outcome
            if not complete:
                heapq.heappush(heap, (max(bound, node_bound), tie, rules))
                break
            if pair is not None and node_bound < self.upper - self.tol():
                for together in (True, False):
                    heapq.heappush(heap, (node_bound, next(self.counter), rules.child(*pair, together)))
            if self.stats["nodes"] % 50 == 1:
                self.mip_incumbent()
        return self.result(self.lower())

    def tree_bound(self) -> float:
        """The least bound of an open node (the incumbent's value when none is open)."""
        return min([b for b, _, _ in self.heap] + [self.upper])

    def lower(self) -> float:
        """The best proven bound: the tree's bound or the type's global bound at this budget (SDP, probing),
        whichever is higher."""
        return max(self.tree_bound(), self.e.global_bound(self.k))

    def process(self, rules: Rules, bound: float):
        """Column generation at one node. Returns None when the node is pruned or integral, else
        ``(node bound, branching pair or None, complete)``."""
        e = self.e
        node = NodeProblem(e.W, e.hard, rules)
        self.stats["nodes"] += 1
        if not node.feasible:
            return None
        e.add_classes(node.group_singletons())
        e.lp.set_allowed(node.allowed(e.pool.matrix))
        node_bound, x, artificial, complete = self.column_generation(node, bound)
        if not complete:
            return node_bound, None, False
        if not e.proves:       # heuristic pricing: the root LP's columns, then the pool MIP; no tree
            self.mip_incumbent()
            return None
        root = not rules.same and not rules.diff
        if root:
            self.stats["root_bound"] = node_bound * e.scale
        if node_bound >= self.upper - self.tol():
            return None
        pair = self.branching_pair(node, x)
        if pair is None:
            if artificial <= INTEGRAL_TOL:
                self.take_integral(x)
            return None
        if root:      # a fractional root: the pool MIP for an incumbent before branching
            self.mip_incumbent()
        return node_bound, pair, True

    def result(self, lower: float) -> PointResult:
        e = self.e
        self.stats["wall_s"] = round(time.monotonic() - self.started, 4)
        self.stats["pool"] = len(e.pool)
        if self.labels is None:
            status = "infeasible" if lower >= e.virtual_ub and self.e.proves else "unknown"
            bound = INF if status == "infeasible" else lower * e.scale
            return PointResult(status, None, INF, bound, self.stats)
        lower = min(lower, self.upper)
        closed = lower >= self.upper - self.tol()
        status = "optimal" if closed and self.e.proves else "feasible"
        bound = lower * e.scale if self.e.proves else -INF
        return PointResult(status, self.labels, self.upper * e.scale, bound, self.stats)

    # ------------------------------------------------------------------ column generation
    def column_generation(self, node: NodeProblem, bound: float):
        """Until exact pricing finds no column: returns ``(bound, x, artificial, complete)``."""
        e, s = self.e, self.e.settings
        centre, centre_value, smooth, enough = None, -INF, True, bool(s.stop_at_keep)
        while True:
            t0 = time.monotonic()
            value, x, artificial, pi, mu = e.lp.solve(self.time_left())
            e.work.spend(e.lp.last_iterations * (e.n + 1))
            self.stats["lp_solves"] += 1
            self.stats["lp_s"] += time.monotonic() - t0
            if self.expired() or not np.isfinite(value):    # no LP optimum: the node stays open
                return bound, x, artificial, False
            if self.heuristic_columns(node, pi, mu, x):
                continue
            if e.pricer is None:        # heuristic pricing only: nothing more can be found or proven
                return bound, x, artificial, True
            smoothed = centre is not None and smooth and s.smoothing > 0
            duals, count_dual = pi, mu
            if smoothed:
                duals = s.smoothing * centre[0] + (1 - s.smoothing) * pi
                count_dual = s.smoothing * centre[1] + (1 - s.smoothing) * mu
            t0 = time.monotonic()
            # only classes of negative reduced cost at these duals are wanted: the search prunes at that threshold,
            # and its ``least`` (the minimum, or the threshold when nothing is below it) still gives a valid bound
            priced = e.pricer.exact(node, duals, count_dual - RC_TOL, s.keep, self.deadline, enough)
            self.stats["exact_pricings"] += 1
            self.stats["exact_s"] += time.monotonic() - t0
            lagrangian = self.lagrangian(duals, priced)
            if lagrangian > centre_value:
                centre, centre_value = (duals, count_dual), lagrangian
            bound = max(bound, lagrangian)
            if bound >= self.upper - self.tol():     # the node cannot beat the incumbent: no need for its LP optimum
                return bound, x, artificial, True
            added = self.add_negative(priced, pi, mu)
            self.stats["columns_exact"] += added
            if added:
                smooth, enough = True, bool(s.stop_at_keep)
                continue
            if smoothed:        # a mispricing: the smoothed duals' classes do not price out at the LP's
                self.stats["mispricings"] += 1
                smooth = False
            elif not priced.exact and priced.classes and not self.expired():
                enough = False      # stopped early on classes the pool holds already: search everything
            else:
                return bound, x, artificial, priced.exact

    def heuristic_columns(self, node: NodeProblem, pi: np.ndarray, mu: float, x: np.ndarray) -> int:
        """Local search on the quadratic reduced cost; for an oracle, the surrogate's best proposals (whatever
        their sign under the surrogate) are priced by the oracle and improved by single add / drop moves."""
        e = self.e
        thresh = mu - RC_TOL if e.additive else INF
        priced = e.proposer.heuristic(node, pi, thresh, e.settings.keep, e.pool.matrix[x > 1e-9])
        if not e.additive:
            priced = self.oracle_moves(node, priced.classes, pi)
        added = self.add_negative(priced, pi, mu)
        self.stats["columns_heuristic"] += added
        return added

    def oracle_moves(self, node: NodeProblem, classes: list[np.ndarray], pi: np.ndarray) -> Priced:
        """Improve the first ``ORACLE_STARTS`` classes by single-group add / drop moves priced by the oracle (in
        one batch per step), for ``settings.oracle_steps`` steps; returns every class priced on the way."""
        e = self.e
        seen: dict[bytes, float] = {}
        out = Priced([], [], costs=[])

        def price(candidates):
            new = list({c.tobytes(): c for c in candidates if c.tobytes() not in seen}.values())
            for c, cost in zip(new, e.costs(new) if new else []):
                seen[c.tobytes()] = cost - float(pi[c].sum())
                out.classes.append(c)
                out.values.append(seen[c.tobytes()])
                out.costs.append(float(cost))
            return [seen[c.tobytes()] for c in candidates]

        price(classes)
        for start in classes[:ORACLE_STARTS]:
            current = start
            for _ in range(e.settings.oracle_steps):
                moves = _neighbours(node, current, e.hard)
                if not moves:
                    break
                values = price(moves)
                best = int(np.argmin(values))
                if values[best] >= seen[current.tobytes()]:
                    break
                current = moves[best]
        return out

    def add_negative(self, priced: Priced, pi: np.ndarray, mu: float) -> int:
        """Add the priced classes whose reduced cost at the LP duals is negative."""
        if not priced.classes:
            return 0
        costs = self.e.costs(priced.classes) if priced.costs is None else priced.costs
        good = [i for i, (c, cost) in enumerate(zip(priced.classes, costs)) if cost - pi[c].sum() - mu < -RC_TOL]
        return self.e.add_classes([priced.classes[i] for i in good], [costs[i] for i in good])

    def lagrangian(self, duals: np.ndarray, priced: Priced) -> float:
        """``Σ π + k · min(0, min_S r(S))``: a lower bound on the node's optimum for any duals, valid while the
        artificial column cannot pay (``min r ≥ −penalty``)."""
        if priced.least is None or priced.least < -self.e.penalty:
            return -INF
        return float(duals.sum()) + self.k * min(0.0, priced.least)

    # ------------------------------------------------------------------ integrality and incumbents
    def branching_pair(self, node: NodeProblem, x: np.ndarray) -> tuple[int, int] | None:
        """The Ryan–Foster pair whose "together" value is most fractional (None when the LP is integral)."""
        used = x > 1e-12
        X = self.e.pool.matrix[used].astype(np.float64)
        together = (X * x[used, None]).T @ X
        frac = np.minimum(together, 1.0 - together)
        same_group = node.group[:, None] == node.group[None, :]
        frac[same_group] = 0.0
        i, j = np.unravel_index(int(np.argmax(frac)), frac.shape)
        if frac[i, j] <= INTEGRAL_TOL:
            return None
        return int(i), int(j)

    def take_integral(self, x: np.ndarray) -> None:
        chosen = np.flatnonzero(x > 0.5)
        labels = np.full(self.e.n, -1, dtype=np.int64)
        for c, j in enumerate(chosen.tolist()):
            labels[self.e.pool.members[j]] = c
        if np.all(labels >= 0) and len(chosen) <= self.k:
            self.offer(labels, float(sum(self.e.pool.costs[j] for j in chosen)), "node LP")

    def mip_incumbent(self) -> None:
        """The restricted-master MIP over every pool column (a heuristic: the pool may lack the optimum)."""
        e = self.e
        limit = None if self.deadline is None else max(0.0, self.deadline - time.monotonic()) / 4
        if (limit is not None and limit <= 1e-3) or e.settings.mip_nodes <= 0:
            return
        t0 = time.monotonic()
        value, chosen = restricted_mip(e.pool, np.ones(len(e.pool), dtype=bool), self.k, e.settings.mip_nodes,
                                       limit, self.upper if self.labels is not None else INF)
        self.stats["mip_s"] += time.monotonic() - t0
        if chosen is None:
            return
        labels = np.full(e.n, -1, dtype=np.int64)
        for c, j in enumerate(chosen.tolist()):
            labels[e.pool.members[j]] = c
        if np.all(labels >= 0):
            self.offer(labels, value, "pool MIP")


def merged_labels(W: np.ndarray, hard: np.ndarray, k: int, start: np.ndarray | None = None) -> np.ndarray | None:
    """A start with at most ``k`` classes: from ``start``'s classes (default singletons), merge the two classes
    with the least weight between them (never across a hard pair) until k remain; None when the hard pairs block
    every merge first."""
    labels = np.arange(len(W)) if start is None else np.unique(start, return_inverse=True)[1]
    m = int(labels.max()) + 1 if len(labels) else 0
    A = np.zeros((len(W), m))
    A[np.arange(len(W)), labels] = 1.0
    between = A.T @ W @ A
    blocked = (A.T @ hard.astype(np.float64) @ A) > 0
    np.fill_diagonal(blocked, True)
    alive = np.ones(m, dtype=bool)
    for _ in range(m - k):
        cost = np.where(blocked | ~alive[:, None] | ~alive[None, :], INF, between)
        a, b = np.unravel_index(int(np.argmin(cost)), cost.shape)
        if not np.isfinite(cost[a, b]):
            return None
        labels[labels == b] = a
        between[a] += between[b]
        between[:, a] += between[:, b]
        blocked[a] |= blocked[b]
        blocked[:, a] |= blocked[:, b]
        alive[b] = False
    return np.unique(labels, return_inverse=True)[1]


def _cost_scale(W: np.ndarray, table: np.ndarray | None) -> float:
    """The unit of the engine's costs: the largest |pair weight| (or subset cost), so that the LP sees O(1)."""
    n = len(W)
    top = float(np.abs(W[np.triu_indices(n, 1)]).max()) if n > 1 else 0.0
    if table is not None and len(table):
        top = max(top, float(np.abs(table).max()))
    return top if top > 0 else 1.0


def _neighbours(node: NodeProblem, members: np.ndarray, hard: np.ndarray) -> list[np.ndarray]:
    """The classes one group away from ``members``: a group added (no conflict, no split group) or removed."""
    inside = np.zeros(node.m, dtype=bool)
    inside[np.unique(node.group[members])] = True
    out = []
    for g in range(node.m):
        if inside[g]:
            if inside.sum() > 1:
                out.append(np.setdiff1d(members, node.members[g]))
        elif not np.any(node.conflict[g, inside]):
            out.append(np.union1d(members, node.members[g]))
    return out
