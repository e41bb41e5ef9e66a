"""Exhaustive enumeration of set partitions for tiny instances: the reference the exact backends are tested against.

Restricted growth strings (node i joins one of the classes opened by nodes 0..i-1, or opens the next one) visit every
partition exactly once. The search is monolithic on purpose: it shares no code with the per-type decomposition, so
agreement tests the decomposition too. Not a registered backend (its cost is Bell(n)).
"""
from __future__ import annotations

import math

import numpy as np

from ..instance import Instance

MAX_NODES = 10


def brute_force(instance: Instance) -> tuple[float, np.ndarray] | None:
    """``(optimal objective, labels)``, or None when no assignment satisfies the hard edges and the budget.
    Honours types, hard edges, ``max_classes``, ``max_classes_per_type`` and ``max_params``."""
    n = len(instance.nodes)
    if n > MAX_NODES:
        raise ValueError(f"brute force is for at most {MAX_NODES} nodes, got {n}")
    type_of = instance.type_of.tolist()
    params = instance.params.tolist()
    W = [[0.0] * n for _ in range(n)]
    H = [[False] * n for _ in range(n)]
    u, v, w, hard = instance.edge_arrays
    for a, b, wt, h in zip(u.tolist(), v.tolist(), w.tolist(), hard.tolist()):
        if h:
            H[a][b] = H[b][a] = True
        else:
            W[a][b] = W[b][a] = wt
    b = instance.budget
    type_cap = [b.max_classes_per_type.get(t, n) for t in instance.types]
    max_params = math.inf if b.max_params is None else b.max_params
    labels = [0] * n
    class_type: list[int] = []
    class_params: list[int] = []
    per_type = [0] * len(instance.types)
    best = [math.inf, None]

    def stored() -> int:
        return sum(class_params)

    def go(i: int, cost: float) -> None:
        if i == n:
            if cost < best[0] and stored() <= max_params:
                best[0], best[1] = cost, list(labels)
            return
        t = type_of[i]
        for c in range(len(class_type) + 1):
            if c == len(class_type):  # open a new class
                if len(class_type) >= b.max_classes or per_type[t] >= type_cap[t]:
                    continue
                class_type.append(t)
                class_params.append(params[i])
                per_type[t] += 1
                labels[i] = c
                go(i + 1, cost)
                class_type.pop()
                class_params.pop()
                per_type[t] -= 1
                continue
            if class_type[c] != t:
                continue
            if any(labels[j] == c and H[i][j] for j in range(i)):
                continue
            add = sum(W[i][j] for j in range(i) if labels[j] == c)
            old = class_params[c]
            class_params[c] = max(old, params[i])
            labels[i] = c
            go(i + 1, cost + add)
            class_params[c] = old

    go(0, 0.0)
    if best[1] is None:
        return None
    return best[0], np.array(best[1], dtype=np.int64)
