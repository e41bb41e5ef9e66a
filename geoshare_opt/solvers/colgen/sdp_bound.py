"""A global lower bound on one type's optimum at k classes from the Frieze–Jerrum semidefinite relaxation
(formulations/colgen.md, "The SDP bound").

Give every node a unit vector; nodes in one class share a vertex of the regular simplex in R^(k−1), so two nodes
have inner product X_ij = 1 in one class and −1/(k−1) apart, and "together" is s_ij = ((k−1) X_ij + 1) / k. Then

    f(k) ≥ (ΣW + (k−1) · SDP) / k,   SDP = min ⟨C, X⟩  s.t.  X ⪰ 0, X_ii = 1, X_ij ≥ −1/(k−1)  (= on hard pairs)

with ΣW = Σ_{i<j} W_ij and C = W / 2. Weak duality gives, for any y (free) and symmetric Z ≥ 0 off the diagonal
(free on hard pairs),

    SDP ≥ Σ_i y_i − 2/(k−1) · Σ_{i<j} Z_ij + n · λ_min(C − Diag(y) − Z)

(⟨M, X⟩ ≥ n · λ_min(M) for every X ⪰ 0 of trace n), so the bound holds whatever y and Z the ascent reaches and a
deadline cannot make it invalid. λ_min is not smooth, so the ascent maximises the smooth under-estimate that
replaces it by the soft minimum −τ · log Σ_i exp(−λ_i / τ) ≤ λ_min, by L-BFGS-B for a falling sequence of τ (each
stage warm from the last); every point it visits is scored with the true λ_min, and the best score, less a margin
for the eigenvalue's rounding, is the bound.
"""
from __future__ import annotations

import time

import numpy as np
from scipy.optimize import minimize

#: the soft-minimum temperatures, one L-BFGS-B stage each (weights scaled to max |W| = 1); measured on the 48-layer
#: tiny-gpt types: the last stage ends within 1e-4 of what twice as many stages and iterations reach
TEMPERATURES = (3e-2, 3e-3, 3e-4, 3e-5)
#: L-BFGS-B iterations per stage (a stage usually converges first; about 0.5 s in all at 48 nodes)
ITERATIONS = 1000
#: eigenvalue rounding margin, relative to n · max |C − Diag(y) − Z| (eigh is backward stable to ~1e-16 of that)
EIGEN_MARGIN = 1e-11


class _OutOfTime(Exception):
    pass


def sdp_bound(W: np.ndarray, hard: np.ndarray, k: int, deadline: float | None = None,
              iterations: int = ITERATIONS) -> float:
    """A proven lower bound on min Σ_{i<j same class} W_ij over colourings with at most ``k`` classes and no hard
    pair in a class (−inf when k < 2 or n < 2)."""
    W = np.asarray(W, dtype=np.float64)
    n = len(W)
    if k < 2 or n < 2:
        return -np.inf
    top = float(np.abs(W).max())
    scale = top if top > 0 else 1.0
    ascent = _DualAscent(W / scale, np.asarray(hard, dtype=bool), k, deadline)
    point = ascent.start()
    try:
        for temperature in TEMPERATURES:
            point = minimize(ascent.negative_smooth_value, point, args=(temperature,), jac=True,
                             method="L-BFGS-B", bounds=ascent.bounds(),
                             options={"maxiter": int(iterations), "maxfun": 2 * int(iterations), "gtol": 0.0,
                                      "ftol": 0.0}).x
    except _OutOfTime:
        pass
    total = float(W[np.triu_indices(n, 1)].sum()) / scale
    return scale * (total + (k - 1) * ascent.best) / k


class _DualAscent:
    """The dual function of the SDP in the variables (y, z), z the upper-triangle entries of Z."""

    def __init__(self, W: np.ndarray, hard: np.ndarray, k: int, deadline: float | None):
        self.n = n = len(W)
        self.C = W / 2.0
        self.iu = np.triu_indices(n, 1)
        self.hard_pairs = hard[self.iu]
        self.k = k
        self.deadline = deadline
        self.best = -np.inf

    def start(self) -> np.ndarray:
        return np.zeros(self.n + len(self.iu[0]))

    def bounds(self) -> list[tuple[float | None, float | None]]:
        pair = [(None, None) if h else (0.0, None) for h in self.hard_pairs.tolist()]
        return [(None, None)] * self.n + pair

    def negative_smooth_value(self, v: np.ndarray, temperature: float) -> tuple[float, np.ndarray]:
        """−(the smoothed dual value) and its gradient; records the true dual value of ``v`` if it is the best."""
        n, iu = self.n, self.iu
        y, z = v[:n], v[n:]
        M = self.C.copy()
        M[iu] -= z
        M.T[iu] -= z
        M[np.diag_indices(n)] -= y
        values, vectors = np.linalg.eigh(M)
        linear = y.sum() - 2.0 / (self.k - 1) * z.sum()
        true_value = linear + n * values[0] - n * EIGEN_MARGIN * float(np.abs(M).max())
        if np.isfinite(true_value):
            self.best = max(self.best, float(true_value))
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise _OutOfTime        # after one evaluation at least: a bound even when the time is already up
        weights = np.exp(-(values - values[0]) / temperature)
        soft_min = values[0] - temperature * np.log(weights.sum())
        # the soft minimum's gradient in M is Σ_i p_i u_i u_iᵀ, p the softmax weights of −λ / τ
        P = (vectors * (weights / weights.sum())) @ vectors.T
        grad_y = 1.0 - n * np.diag(P)
        grad_z = -2.0 / (self.k - 1) - 2.0 * n * P[iu]
        return -float(linear + n * soft_min), -np.concatenate([grad_y, grad_z])
