"""Sparse adjacency of an instance for the heuristics: same-type edges only (cross-type pairs can never share a
class, so they never matter), split into soft (weighted) and hard, in CSR form with both directions.

Built from ``Instance.edge_arrays`` (never from the dense per-type blocks, which would be O(n^2) on big graphs).
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from ..instance import Instance


@dataclass(frozen=True)
class Adjacency:
    n: int
    type_of: np.ndarray       # int64, type index per node
    n_types: int
    indptr: np.ndarray        # soft CSR
    nbr: np.ndarray
    wt: np.ndarray
    hptr: np.ndarray          # hard CSR
    hnbr: np.ndarray
    params: np.ndarray        # int64
    pos_weight: np.ndarray    # per type: total positive soft weight
    neg_weight: np.ndarray    # per type: total negative soft weight
    hard_edges: np.ndarray    # per type: number of hard edges


def _csr(n: int, u: np.ndarray, v: np.ndarray, w: np.ndarray | None):
    src = np.concatenate([u, v])
    dst = np.concatenate([v, u])
    order = np.argsort(src, kind="stable")
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    nbr = np.ascontiguousarray(dst[order], dtype=np.int64)
    if w is None:
        return indptr, nbr, None
    return indptr, nbr, np.ascontiguousarray(np.concatenate([w, w])[order], dtype=np.float64)


def adjacency(instance: Instance) -> Adjacency:
    n = len(instance.nodes)
    u, v, w, hard = instance.edge_arrays
    same = instance.same_type_edge_mask
    soft = same & ~hard & (w != 0.0)
    hsel = same & hard
    indptr, nbr, wt = _csr(n, u[soft], v[soft], w[soft])
    hptr, hnbr, _ = _csr(n, u[hsel], v[hsel], None)
    t = instance.type_of
    nt = len(instance.types)
    ws = w[soft]
    pos = np.bincount(t[u[soft]], weights=np.maximum(ws, 0.0), minlength=nt)
    neg = np.bincount(t[u[soft]], weights=np.minimum(ws, 0.0), minlength=nt)
    hcount = np.bincount(t[u[hsel]], minlength=nt)
    return Adjacency(n, np.ascontiguousarray(t, dtype=np.int64), nt, indptr, nbr, wt, hptr, hnbr,
                     np.ascontiguousarray(instance.params, dtype=np.int64), pos, neg, hcount)
