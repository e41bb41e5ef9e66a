"""A global lower bound on one type's optimum at k classes from the Frieze–Jerrum semidefinite relaxation,
tightened by triangle and clique inequalities (formulations/colgen.md, "The SDP bound").

Give every node a unit vector; nodes in one class share a vertex of the regular simplex in R^(k−1), so two nodes
have inner product X_ij = 1 in one class and −1/(k−1) apart, and "together" is s_ij = ((k−1) X_ij + 1) / k. Then

    f(k) ≥ (ΣW + (k−1) · SDP) / k,   SDP = min ⟨C, X⟩  s.t.  X ⪰ 0, X_ii = 1, X_ij ≥ −1/(k−1)  (= on hard pairs),
                                                      ⟨a_c, X⟩ ≥ b_c for every cut c

with ΣW = Σ_{i<j} W_ij, C = W / 2 and ⟨a, X⟩ = Σ_{i<j} a_ij X_ij. Every colouring with at most k classes meets
the cuts: the triangle inequalities X_ij + X_jl − X_il ≤ 1 (together is transitive) and the clique inequalities
Σ_{i<j ∈ Q} X_ij ≥ −k/2 for k + 1 nodes Q (two of them share a class). Weak duality gives, for any y (free),
symmetric Z ≥ 0 off the diagonal (free on hard pairs) and t ≥ 0,

    SDP ≥ Σ_i y_i − 2/(k−1) · Σ_{i<j} Z_ij + Σ_c t_c b_c + n · λ_min(C − Diag(y) − Z − Σ_c t_c A_c)

(A_c the symmetric matrix with a_c / 2 on both sides; ⟨M, X⟩ ≥ n · λ_min(M) for every X ⪰ 0 of trace n), so the
bound holds whatever point the ascent reaches and a deadline cannot make it invalid. λ_min is not smooth, so the
ascent maximises the smooth under-estimate that replaces it by the soft minimum −τ · log Σ_i exp(−λ_i / τ) ≤ λ_min,
by L-BFGS-B for a falling sequence of τ (each stage warm from the last); every point it visits is scored with the
true λ_min, and the best score, less a margin for the eigenvalue's rounding, is the bound. The cutting-plane loop
reads the primal estimate X ≈ n · Σ_i p_i u_i u_iᵀ (the soft minimum's gradient) after each ascent, adds the most
violated cuts, drops those whose multiplier fell to 0, and ascends again from where it stood.
"""
from __future__ import annotations

import copy
import time

import numpy as np
from scipy import sparse
from scipy.optimize import minimize

#: the soft-minimum temperatures, one L-BFGS-B stage each (weights scaled to max |W| = 1); measured on the 48-layer
#: tiny-gpt types: the last stage ends within 1e-4 of what twice as many stages and iterations reach
TEMPERATURES = (3e-2, 3e-3, 3e-4, 3e-5)
#: L-BFGS-B iterations per stage (a stage usually converges first; about 0.5 s in all at 48 nodes)
ITERATIONS = 1000
#: after a round of cuts the ascent restarts from its last point: the two coldest stages, fewer iterations
CUT_TEMPERATURES, CUT_ITERATIONS = TEMPERATURES[-2:], 300
#: cuts added per round (the most violated), the least violation that counts (in X units), at most this many rounds
CUTS_PER_ROUND, CUT_VIOLATION, MAX_ROUNDS = 1500, 1e-3, 30
#: the loop has converged when a round raises the bound by less than this share of the bound's size
STALL = 2e-6
#: eigenvalue rounding margin, relative to n · max |C − Diag(y) − Z − Σ t A| (eigh is backward stable to ~1e-16)
EIGEN_MARGIN = 1e-11


class _OutOfTime(Exception):
    pass


def sdp_bound(W: np.ndarray, hard: np.ndarray, k: int, deadline: float | None = None,
              iterations: int = ITERATIONS, cuts: bool = True) -> float:
    """A proven lower bound on min Σ_{i<j same class} W_ij over colourings with at most ``k`` classes and no hard
    pair in a class (−inf when k < 2 or n < 2); ``cuts`` False: the plain relaxation, no cutting planes."""
    return SdpBound(W, hard, k, iterations, max_rounds=MAX_ROUNDS if cuts else 0).improve(deadline)


class SdpBound:
    """The bound of one type at one budget, improved in as many calls as the caller likes: the dual point and the
    cuts are kept, so a call continues where the last one's deadline stopped it. ``converged`` once a round finds
    no violated cut, raises the bound by less than ``STALL``, or ``max_rounds`` rounds are done."""

    def __init__(self, W: np.ndarray, hard: np.ndarray, k: int, iterations: int = ITERATIONS,
                 max_rounds: int = MAX_ROUNDS):
        W = np.asarray(W, dtype=np.float64)
        self.n, self.k = len(W), k
        top = float(np.abs(W).max()) if self.n else 0.0
        self.scale = top if top > 0 else 1.0
        self.total = float(W[np.triu_indices(self.n, 1)].sum()) / self.scale
        self.iterations, self.max_rounds = int(iterations), max_rounds
        self.trivial = k < 2 or self.n < 2
        self.converged = self.trivial
        self.rounds = 0              # cut rounds done
        # the ascent stages still to run, [temperature, iterations left]: a deadline inside a stage leaves the rest
        # of its iterations to the next call, so short calls make progress too
        self._stages: list[list] = [[t, self.iterations] for t in TEMPERATURES]
        if not self.trivial:
            self.dual = _DualFunction(W / self.scale, np.asarray(hard, dtype=bool), k)
            self.point = self.dual.start()

    @property
    def value(self) -> float:
        """The best bound so far, in the caller's units (−inf before any evaluation)."""
        if self.trivial or not np.isfinite(self.dual.best):
            return -np.inf
        return self.scale * (self.total + (self.k - 1) * self.dual.best) / self.k

    @property
    def cut_count(self) -> int:
        return 0 if self.trivial else self.dual.cut_count

    def primal_estimate(self) -> np.ndarray:
        """X ≈ n · Σ_i p_i u_i u_iᵀ at the current point and the coldest temperature (the soft minimum's gradient):
        where cuts are separated and probes are ordered."""
        return self.dual.primal(self.point, TEMPERATURES[-1])

    def restricted(self, apart: np.ndarray | None = None, together: np.ndarray | None = None,
                   max_rounds: int | None = None) -> "SdpBound":
        """The bound of the same type with more pairs fixed (boolean n × n masks; a pair in both is an error),
        warm from this one's point and cuts: both stay feasible (the fixed pairs' multipliers become free, and
        every cut holds for every colouring), so its first evaluation is at least this bound (together pairs
        change the value) and the ascent goes on from there. Not converged until its own rounds say so."""
        child = copy.copy(self)
        child.dual = copy.copy(self.dual)
        dual = child.dual
        dual.fixed, dual.level = dual.fixed.copy(), dual.level.copy()
        dual.best, dual._resume_value, dual.resume_point = -np.inf, -np.inf, None
        for mask, level in ((apart, -1.0 / (self.k - 1)), (together, 1.0)):
            if mask is not None:
                pick = np.asarray(mask, dtype=bool)[dual.iu]
                if np.any(dual.fixed[pick] & (dual.level[pick] != level)):
                    raise ValueError("a pair fixed both apart and together")
                dual.fixed[pick], dual.level[pick] = True, level
        child.point = self.point.copy()
        child.rounds, child.converged = 0, False
        child.max_rounds = self.max_rounds if max_rounds is None else max_rounds
        child._stages = _cut_stages()
        return child

    def improve(self, deadline: float | None = None, target: float | None = None) -> float:
        """Ascend (and add cuts) until converged, ``deadline`` (time.monotonic()) or a bound of at least
        ``target`` (caller units); returns ``value``. At least one evaluation happens even when the deadline has
        passed, so a first call always has a bound."""
        if self.converged or (target is not None and self.value >= target):
            return self.value
        self.dual.deadline = deadline
        self.dual.target = np.inf if target is None else (target * self.k / self.scale - self.total) / (self.k - 1)
        try:
            self._ascend()          # the plain relaxation's stages, or what a deadline left of a round's
            while self.rounds < self.max_rounds:
                before = self.value
                if not self._add_cuts():
                    break
                self.rounds += 1
                self._stages = _cut_stages()
                self._ascend()
                if self.value - before < STALL * max(abs(self.value), 1e-300):
                    break
            self.converged = True
        except _OutOfTime:
            if self.dual.resume_point is not None:
                self.point = self.dual.resume_point.copy()
        return self.value

    def _ascend(self) -> None:
        """Run the stages left, each warm from the last."""
        while self._stages:
            temperature, iterations = self._stages[0]
            before = self.dual.evaluations
            try:
                self.point = minimize(self.dual.negative_smooth_value, self.point, args=(temperature,), jac=True,
                                      method="L-BFGS-B", bounds=self.dual.bounds(),
                                      options={"maxiter": iterations, "maxfun": 2 * iterations, "gtol": 0.0,
                                               "ftol": 0.0}).x
            except _OutOfTime:
                self._stages[0][1] -= self.dual.evaluations - before     # an iteration takes one evaluation or more
                if self._stages[0][1] <= 0:
                    self._stages.pop(0)
                raise
            self._stages.pop(0)

    def _add_cuts(self) -> bool:
        """Drop the cuts whose multiplier is 0, add the most violated ones at the current point; False if none is
        violated (the point is then kept as it is)."""
        X = self.primal_estimate()
        rows, rhs = violated_cuts(X, self.k, CUTS_PER_ROUND)
        if rows.shape[0] == 0:
            return False
        self.point = self.dual.set_cuts(self.point, rows, rhs)
        return True


class _DualFunction:
    """The dual function of the SDP in the variables (y, z, t): z the upper-triangle entries of Z, t the cuts'
    multipliers (rows of ``cuts`` over the upper-triangle pairs, right-hand sides ``rhs``)."""

    def __init__(self, W: np.ndarray, hard: np.ndarray, k: int):
        self.n = n = len(W)
        self.C = W / 2.0
        self.iu = np.triu_indices(n, 1)
        self.pairs = len(self.iu[0])
        self.k = k
        # per pair: X_ij ≥ level (multiplier z ≥ 0), or = level where ``fixed`` (z free); level −1/(k−1) apart,
        # 1 for a pair fixed together (``SdpBound.restricted``)
        self.fixed = hard[self.iu].copy()
        self.level = np.full(self.pairs, -1.0 / (k - 1))
        self.deadline: float | None = None
        self.best = -np.inf
        self.target = np.inf            # stop once the dual value reaches this (scaled dual units)
        self.evaluations = 0
        # the best point in the current variables (cuts change them), where a call that a deadline stopped resumes
        self.resume_point: np.ndarray | None = None
        self._resume_value = -np.inf
        self.cuts = sparse.csr_matrix((0, self.pairs))
        self.rhs = np.zeros(0)

    @property
    def cut_count(self) -> int:
        return self.cuts.shape[0]

    def start(self) -> np.ndarray:
        return np.zeros(self.n + self.pairs)

    def bounds(self) -> list[tuple[float | None, float | None]]:
        pair = [(None, None) if f else (0.0, None) for f in self.fixed.tolist()]
        return [(None, None)] * self.n + pair + [(0.0, None)] * self.cut_count

    def set_cuts(self, point: np.ndarray, rows: sparse.csr_matrix, rhs: np.ndarray) -> np.ndarray:
        """Keep the cuts with a positive multiplier, append ``rows``; returns the point in the new variables
        (the kept multipliers, 0 for the new cuts)."""
        base = self.n + self.pairs
        active = point[base:] > 0.0
        self.cuts = sparse.vstack([self.cuts[active], rows]).tocsr()
        self.rhs = np.concatenate([self.rhs[active], rhs])
        point = np.concatenate([point[:base], point[base:][active], np.zeros(rows.shape[0])])
        self.resume_point, self._resume_value = point, -np.inf
        return point

    def _matrix(self, v: np.ndarray) -> tuple[np.ndarray, float]:
        """M = C − Diag(y) − Z − Σ t A and the linear part of the dual value."""
        n, iu = self.n, self.iu
        y, z, t = v[:n], v[n:n + self.pairs], v[n + self.pairs:]
        off = z + 0.5 * (self.cuts.T @ t) if len(t) else z
        M = self.C.copy()
        M[iu] -= off
        M.T[iu] -= off
        M[np.diag_indices(n)] -= y
        linear = y.sum() + 2.0 * float(self.level @ z) + (float(t @ self.rhs) if len(t) else 0.0)
        return M, linear

    def primal(self, v: np.ndarray, temperature: float) -> np.ndarray:
        """The primal estimate n · Σ_i p_i u_i u_iᵀ at ``v`` (p the soft minimum's weights)."""
        values, vectors = np.linalg.eigh(self._matrix(v)[0])
        return self.n * (vectors * _soft_min_weights(values, temperature)) @ vectors.T

    def negative_smooth_value(self, v: np.ndarray, temperature: float) -> tuple[float, np.ndarray]:
        """−(the smoothed dual value) and its gradient; records the true dual value of ``v`` if it is the best."""
        n = self.n
        self.evaluations += 1
        M, linear = self._matrix(v)
        values, vectors = np.linalg.eigh(M)
        true_value = linear + n * values[0] - n * EIGEN_MARGIN * float(np.abs(M).max())
        if np.isfinite(true_value):
            self.best = max(self.best, float(true_value))
            if true_value > self._resume_value:
                self.resume_point, self._resume_value = v.copy(), float(true_value)
        if self.best >= self.target or (self.deadline is not None and time.monotonic() >= self.deadline):
            raise _OutOfTime        # after one evaluation at least: a bound even when the time is already up
        soft_min = values[0] - temperature * np.log(np.exp(-(values - values[0]) / temperature).sum())
        # the soft minimum's gradient in M is Σ_i p_i u_i u_iᵀ, p the softmax weights of −λ / τ
        X = n * (vectors * _soft_min_weights(values, temperature)) @ vectors.T
        Xp = X[self.iu]
        grad_y = 1.0 - np.diag(X)
        grad_z = 2.0 * self.level - 2.0 * Xp
        grad_t = self.rhs - self.cuts @ Xp if self.cut_count else np.zeros(0)
        return -float(linear + n * soft_min), -np.concatenate([grad_y, grad_z, grad_t])


def _cut_stages() -> list[list]:
    """The ascent after a change of the variables (new cuts, fixed pairs): [temperature, iterations left]."""
    return [[t, CUT_ITERATIONS] for t in CUT_TEMPERATURES]


def _soft_min_weights(values: np.ndarray, temperature: float) -> np.ndarray:
    """The softmax of −λ / τ over ascending eigenvalues ``values`` (shifted by λ_min: no overflow)."""
    weights = np.exp(-(values - values[0]) / temperature)
    return weights / weights.sum()


def violated_cuts(X: np.ndarray, k: int, limit: int) -> tuple[sparse.csr_matrix, np.ndarray]:
    """At most ``limit`` triangle and clique inequalities that ``X`` violates by more than ``CUT_VIOLATION``, the
    most violated first, as rows over the upper-triangle pairs with their right-hand sides (⟨a, X⟩ ≥ b)."""
    found = _triangles(X) + _cliques(X, k)
    found = [cut for cut in found if cut[0] > CUT_VIOLATION]
    found.sort(key=lambda cut: -cut[0])
    found = found[:limit]
    n = len(X)
    index = np.zeros((n, n), dtype=np.int64)
    iu = np.triu_indices(n, 1)
    index[iu] = np.arange(len(iu[0]))
    index.T[iu] = np.arange(len(iu[0]))
    rows, cols, data = [], [], []
    for r, (_, pairs, coefficients, _) in enumerate(found):
        for (i, j), a in zip(pairs, coefficients):
            rows.append(r)
            cols.append(index[i, j])
            data.append(a)
    matrix = sparse.csr_matrix((data, (rows, cols)), shape=(len(found), len(iu[0])))
    return matrix, np.array([cut[3] for cut in found], dtype=np.float64)


def _triangles(X: np.ndarray) -> list:
    """The violated triangle inequalities −X_ij − X_jl + X_il ≥ −1 (j the middle node): (violation, pairs,
    coefficients, right-hand side)."""
    n = len(X)
    out = []
    for j in range(n):
        excess = X[:, j, None] + X[None, j, :] - X - 1.0      # (i, l): X_ij + X_jl − X_il − 1
        excess[j, :] = -np.inf
        excess[:, j] = -np.inf
        i_idx, l_idx = np.nonzero(np.triu(excess > CUT_VIOLATION, 1))
        for i, l in zip(i_idx.tolist(), l_idx.tolist()):
            out.append((float(excess[i, l]), ((i, j), (j, l), (i, l)), (-1.0, -1.0, 1.0), -1.0))
    return out


def _cliques(X: np.ndarray, k: int) -> list:
    """Violated clique inequalities Σ_{i<j ∈ Q} X_ij ≥ −k/2 over k + 1 nodes, found greedily: from every pair,
    add the node with the least sum of X to the members until there are k + 1 (exact for k = 2: the best third
    node of each pair)."""
    n = len(X)
    if k + 1 > n:
        return []
    first, second = np.triu_indices(n, 1)
    members = [first, second]
    sums = X[first] + X[second]                        # (starts, n): X from each node to the members
    inside = np.zeros((len(first), n), dtype=bool)
    inside[np.arange(len(first)), first] = True
    inside[np.arange(len(first)), second] = True
    total = X[first, second].copy()
    for _ in range(k - 1):
        candidates = np.where(inside, np.inf, sums)
        pick = np.argmin(candidates, axis=1)
        total += candidates[np.arange(len(pick)), pick]
        inside[np.arange(len(pick)), pick] = True
        sums += X[pick]
        members.append(pick)
    out, seen = [], set()
    for s in np.flatnonzero(-k / 2.0 - total > CUT_VIOLATION).tolist():
        Q = tuple(sorted(int(m[s]) for m in members))
        if Q in seen:
            continue
        seen.add(Q)
        pairs = tuple((Q[a], Q[b]) for a in range(len(Q)) for b in range(a + 1, len(Q)))
        out.append((float(-k / 2.0 - total[s]), pairs, (1.0,) * len(pairs), -k / 2.0))
    return out
