"""The column pool of one type and its master LP on HiGHS (formulations/colgen.md, "Master").

Columns are classes of the type in local indices (0..n-1) with their cost, kept once each; the LP holds every pool
column (a branch-and-price node switches the ones its rules forbid off by their upper bound), one covering row per
node (``= 1``), the count row ``Σ x_S − a ≤ k`` and the artificial column ``a`` with cost ``penalty``: with it every
node LP is feasible (singletons cover), and it is a relaxation of the node's problem for any penalty, so its value
is always a valid bound.
"""
from __future__ import annotations

import numpy as np

from ..quiet import new_highs, run_highs, stdout_to_stderr

INF = float("inf")
#: primal and dual feasibility tolerances of the master LP: the costs are scaled to max |w| = 1, so the duals are
#: accurate enough for the Lagrangian bound to meet the package's 1e-9 optimality tolerance
LP_TOLERANCE = 1e-9


class ColumnPool:
    """Distinct classes (sorted local members) with their costs and a node-membership matrix."""

    def __init__(self, n: int):
        self.n = n
        self.members: list[np.ndarray] = []
        self.costs: list[float] = []
        self._index: dict[bytes, int] = {}
        self._matrix = np.zeros((64, n), dtype=bool)

    def __len__(self) -> int:
        return len(self.members)

    @property
    def matrix(self) -> np.ndarray:
        """Column × node membership (bool), one row per pool column."""
        return self._matrix[:len(self.members)]

    def find(self, members: np.ndarray) -> int | None:
        return self._index.get(_key(members, self.n))

    def add(self, members, cost: float) -> int | None:
        """Add a class; returns its column index, or None if it was already in the pool."""
        members = np.unique(np.asarray(members, dtype=np.int64))
        key = _key(members, self.n)
        if key in self._index:
            return None
        j = len(self.members)
        if j == len(self._matrix):
            self._matrix = np.concatenate([self._matrix, np.zeros_like(self._matrix)])
        self._matrix[j, members] = True
        self.members.append(members)
        self.costs.append(float(cost))
        self._index[key] = j
        return j


def _key(members: np.ndarray, n: int) -> bytes:
    row = np.zeros(n, dtype=bool)
    row[members] = True
    return np.packbits(row).tobytes()


class MasterLP:
    """The restricted master LP over a ``ColumnPool``; re-solved warm (HiGHS keeps its basis between runs)."""

    def __init__(self, pool: ColumnPool, k: int, penalty: float):
        import highspy
        self.pool = pool
        self.n = pool.n
        self.h = h = new_highs()
        for key, value in (("primal_feasibility_tolerance", LP_TOLERANCE),
                           ("dual_feasibility_tolerance", LP_TOLERANCE), ("threads", 1)):
            h.setOptionValue(key, value)
        self._inf = highspy.kHighsInf
        lower = np.concatenate([np.ones(self.n), [-self._inf]])
        upper = np.concatenate([np.ones(self.n), [float(k)]])
        none = np.zeros(0, dtype=np.int32)
        h.addRows(self.n + 1, lower, upper, 0, none, none, np.zeros(0))
        h.addCol(float(penalty), 0.0, self._inf, 1, np.array([self.n], dtype=np.int32), np.array([-1.0]))
        self.n_cols = 0          # pool columns already in the LP (the artificial is LP column 0)
        self.last_iterations = 0
        self.k = k
        self.sync()

    def sync(self) -> None:
        """Add the pool columns the LP does not hold yet."""
        pool = self.pool
        new = range(self.n_cols, len(pool))
        if not len(new):
            return
        starts, index, value = [], [], []
        for j in new:
            starts.append(len(index))
            rows = pool.members[j].tolist() + [self.n]
            index += rows
            value += [1.0] * len(rows)
        self.h.addCols(len(new), np.array([pool.costs[j] for j in new]), np.zeros(len(new)),
                       np.full(len(new), self._inf), len(index), np.array(starts, dtype=np.int32),
                       np.array(index, dtype=np.int32), np.array(value))
        self.n_cols = len(pool)

    def set_k(self, k: int) -> None:
        if k != self.k:
            self.h.changeRowBounds(self.n, -self._inf, float(k))
            self.k = k

    def set_allowed(self, allowed: np.ndarray) -> None:
        """Upper bound 1 for the allowed pool columns, 0 for the others (a node's branching rules)."""
        import highspy
        self.sync()        # columns the pool gained since the last solve must exist in the LP before their bounds
        allowed = np.asarray(allowed, dtype=bool)
        if len(allowed) != self.n_cols:
            raise ValueError(f"set_allowed: {len(allowed)} flags for {self.n_cols} pool columns")
        cols = np.arange(1, len(allowed) + 1, dtype=np.int32)
        status = self.h.changeColsBounds(len(cols), cols, np.zeros(len(cols)), np.where(allowed, self._inf, 0.0))
        if status == highspy.HighsStatus.kError:
            raise RuntimeError("HiGHS refused the column bounds of a branch-and-price node")

    def solve(self, time_limit: float | None = None) -> tuple[float, np.ndarray, float, np.ndarray, float]:
        """``(value, x over pool columns, artificial a, π over nodes, μ)``; value +inf if HiGHS stops without an
        optimum (e.g. at ``time_limit``)."""
        import highspy
        self.sync()
        # HiGHS compares its time limit with the run time accumulated over every run() of this object
        limit = self._inf if time_limit is None else self.h.getRunTime() + max(float(time_limit), 1e-3)
        self.h.setOptionValue("time_limit", limit)
        run_highs(self.h)
        self.last_iterations = int(self.h.getInfo().simplex_iteration_count)
        if self.h.getModelStatus() == highspy.HighsModelStatus.kUnknown:
            # the warm basis can leave HiGHS without a verdict (numerical trouble at tight tolerances): once more
            # from scratch, which has always ended with an optimum on the benchmark instances
            self.h.clearSolver()
            run_highs(self.h)
            self.last_iterations += int(self.h.getInfo().simplex_iteration_count)
        if self.h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return INF, np.zeros(len(self.pool)), 0.0, np.zeros(self.n), 0.0
        sol = self.h.getSolution()
        col = np.asarray(sol.col_value)
        dual = np.asarray(sol.row_dual)
        value = float(self.h.getInfo().objective_function_value)
        return value, col[1:], float(col[0]), dual[:self.n], float(dual[self.n])


def restricted_mip(pool: ColumnPool, allowed: np.ndarray, k: int, max_nodes: int, time_limit: float | None,
                   cutoff: float) -> tuple[float, np.ndarray | None]:
    """HiGHS MIP on the allowed pool columns (a heuristic for incumbents: the pool may lack the optimum), at most
    ``max_nodes`` branch-and-bound nodes (deterministic) and ``time_limit`` seconds. Returns ``(value, chosen
    column indices)`` or ``(inf, None)``."""
    import highspy
    cols = np.flatnonzero(allowed)
    if len(cols) == 0:
        return INF, None
    h = new_highs()
    settings = {"mip_max_nodes": int(max_nodes), "threads": 1, "mip_rel_gap": 1e-9, "objective_bound": float(cutoff)}
    if time_limit is not None:
        settings["time_limit"] = max(float(time_limit), 1e-3)
    for key, value in settings.items():
        h.setOptionValue(key, value)
    inf = highspy.kHighsInf
    n = pool.n
    none = np.zeros(0, dtype=np.int32)
    h.addRows(n + 1, np.concatenate([np.ones(n), [-inf]]), np.concatenate([np.ones(n), [float(k)]]), 0, none,
              none, np.zeros(0))
    starts, index = [], []
    for j in cols.tolist():
        starts.append(len(index))
        index += pool.members[j].tolist() + [n]
    h.addCols(len(cols), np.array([pool.costs[j] for j in cols]), np.zeros(len(cols)), np.ones(len(cols)),
              len(index), np.array(starts, dtype=np.int32), np.array(index, dtype=np.int32), np.ones(len(index)))
    h.changeColsIntegrality(len(cols), np.arange(len(cols), dtype=np.int32),
                            np.full(len(cols), highspy.HighsVarType.kInteger))
    with stdout_to_stderr():
        run_highs(h)
    info = h.getInfo()
    if info.primal_solution_status != 2:
        return INF, None
    x = np.asarray(h.getSolution().col_value)
    chosen = cols[x > 0.5]
    return float(sum(pool.costs[j] for j in chosen)), chosen
