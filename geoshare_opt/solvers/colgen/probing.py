"""Pairs fixed together by SDP probing, so that the rest is a small exact problem (formulations/colgen.md,
"Probing").

With an incumbent of value U, a pair of groups A, B (nodes already fixed together) is probed by the SDP bound of
the problem with every pair between A and B apart, warm from the converged ascent with the fixes so far: if that
bound reaches U, no colouring that separates A and B beats the incumbent, so A and B are fixed together. By
induction over the fixes, f ≥ min(the probe bounds, f of the contracted problem), and the contracted problem
(groups as nodes) is a restriction of the original, so its colourings are colourings of the original. Probes
try the pairs the SDP's primal estimate X puts together most firmly first.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .sdp_bound import SdpBound

#: seconds a probe may take at most (a probe that reaches U usually does so within a few evaluations)
PROBE_SECONDS = 0.5
#: probing stops after this many probes in a row that did not reach U
MAX_FAILURES = 12


@dataclass
class Probed:
    """``groups`` (node -> group, 0..m−1): the nodes fixed together; ``bound``: the least probe bound (inf if no
    pair was fixed); ``probes``, ``fixed``: how many probes ran and how many fixed a pair."""
    groups: np.ndarray
    bound: float
    probes: int
    fixed: int


def probe_pairs(root: SdpBound, hard: np.ndarray, upper: float, target_groups: int,
                deadline: float | None) -> Probed:
    """Fix pairs together while probes reach ``upper`` (the scaled incumbent value, in ``root``'s units) until at
    most ``target_groups`` groups are left, ``MAX_FAILURES`` probes in a row fail, or ``deadline``. ``root``: a
    converged ``SdpBound``; ``hard``: the pairs no group may join."""
    n = len(hard)
    group = np.arange(n)
    base, bound, probes, fixed, failures = root, np.inf, 0, 0, 0
    X = root.primal_estimate()
    iu = np.triu_indices(n, 1)
    for p in np.argsort(-X[iu], kind="stable"):
        if len(np.unique(group)) <= target_groups or failures >= MAX_FAILURES or _expired(deadline):
            break
        a, b = group[iu[0][p]], group[iu[1][p]]
        A, B = group == a, group == b
        if a == b or np.any(hard[np.ix_(A, B)]):
            continue
        cross = np.outer(A, B) | np.outer(B, A)
        stop = time.monotonic() + PROBE_SECONDS
        value = base.restricted(apart=cross, max_rounds=0).improve(stop if deadline is None else min(stop, deadline),
                                                                    target=upper)
        probes += 1
        if value < upper:
            failures += 1
            continue
        failures, fixed, bound = 0, fixed + 1, min(bound, value)
        group[B] = a
        joined = A | B
        base = base.restricted(together=np.outer(joined, joined) & ~np.eye(n, dtype=bool), max_rounds=0)
    return Probed(np.unique(group, return_inverse=True)[1], bound, probes, fixed)


def contract(W: np.ndarray, hard: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The problem with each group as one node: (pair weights between groups, hard pairs between groups, the
    weight inside the groups, which every colouring of the contracted problem pays)."""
    m = int(groups.max()) + 1
    P = np.zeros((len(groups), m))
    P[np.arange(len(groups)), groups] = 1.0
    Wc = P.T @ W @ P
    inside = float(np.trace(Wc)) / 2.0
    np.fill_diagonal(Wc, 0.0)
    hardc = (P.T @ hard.astype(np.float64) @ P) > 0
    np.fill_diagonal(hardc, False)
    return Wc, hardc, inside


def _expired(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline
