"""A global lower bound on one type's optimum at k classes from the Frieze–Jerrum semidefinite relaxation
(formulations/colgen.md, "The SDP bound").

Give every node a unit vector; nodes in one class share a vertex of the regular simplex in R^(k−1), so two nodes
have inner product X_ij = 1 in one class and −1/(k−1) apart, and "together" is s_ij = ((k−1) X_ij + 1) / k. Then

    f(k) ≥ (ΣW + (k−1) · SDP) / k,   SDP = min ⟨C, X⟩  s.t.  X ⪰ 0, X_ii = 1, X_ij ≥ −1/(k−1)  (= on hard pairs)

with ΣW = Σ_{i<j} W_ij and C = W / 2. Weak duality gives, for any y (free) and symmetric Z ≥ 0 off the diagonal
(free on hard pairs),

    SDP ≥ Σ_i y_i − 2/(k−1) · Σ_{i<j} Z_ij + n · λ_min(C − Diag(y) − Z)

(⟨M, X⟩ ≥ n · λ_min(M) for every X ⪰ 0 of trace n), so the bound holds whatever y and Z the ascent reaches and a
deadline cannot make it invalid. The ascent maximises that concave function by L-BFGS-B and keeps the best value
seen, less a margin for the eigenvalue's rounding.

On the deep tiny-gpt types (32-48 nodes, positive weights) it is within 0.2-2 % of the best colouring at k = 2-6,
where the column-generation Lagrangian bound is still 3-65 % away when a sweep's time runs out.
"""
from __future__ import annotations

import time

import numpy as np
from scipy.optimize import minimize

#: L-BFGS-B iterations of one ascent (about a second at 48 nodes)
ITERATIONS = 3000
#: eigenvalue rounding margin, relative to n · max |C − Diag(y) − Z| (eigh is backward stable to ~1e-16 of that)
EIGEN_MARGIN = 1e-11


class _OutOfTime(Exception):
    pass


def sdp_bound(W: np.ndarray, hard: np.ndarray, k: int, deadline: float | None = None,
              iterations: int = ITERATIONS) -> float:
    """A proven lower bound on min Σ_{i<j same class} W_ij over colourings with at most ``k`` classes and no hard
    pair in a class (−inf when k < 2 or nothing valid was computed before ``deadline``)."""
    W = np.asarray(W, dtype=np.float64)
    n = len(W)
    if k < 2 or n < 2:
        return -np.inf
    top = float(np.abs(W).max())
    scale = top if top > 0 else 1.0
    ascent = _DualAscent(W / scale, np.asarray(hard, dtype=bool), k, deadline)
    try:
        minimize(ascent.negative_value, ascent.start(), jac=True, method="L-BFGS-B", bounds=ascent.bounds(),
                 options={"maxiter": int(iterations), "maxfun": 2 * int(iterations), "gtol": 0.0, "ftol": 0.0})
    except _OutOfTime:
        pass
    if not np.isfinite(ascent.best):
        return -np.inf
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

    def negative_value(self, v: np.ndarray) -> tuple[float, np.ndarray]:
        """−(dual value) and its (super)gradient; records the best valid value seen."""
        n, iu = self.n, self.iu
        y, z = v[:n], v[n:]
        M = self.C.copy()
        M[iu] -= z
        M.T[iu] -= z
        M[np.diag_indices(n)] -= y
        values, vectors = np.linalg.eigh(M)
        u = vectors[:, 0]
        value = y.sum() - 2.0 / (self.k - 1) * z.sum() + n * values[0]
        margin = n * EIGEN_MARGIN * float(np.abs(M).max())
        if np.isfinite(value):
            self.best = max(self.best, float(value) - margin)
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise _OutOfTime        # after one evaluation at least: a bound even when the time is already up
        grad_y = 1.0 - n * u * u
        grad_z = -2.0 / (self.k - 1) - 2.0 * n * u[iu[0]] * u[iu[1]]
        return -float(value), -np.concatenate([grad_y, grad_z])
