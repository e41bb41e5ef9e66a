"""Random tiny instances shared by the exact-backend tests (brute force is their reference).

Each seed gives one instance of 3-8 nodes that mixes what breaks MILPs silently: signed (float or small integer)
weights, 1-3 types, hard edges, every combination of the three caps (global, per type, parameters), uniform and
non-uniform parameter counts, and budgets that are infeasible.
"""
from __future__ import annotations

import functools

import numpy as np

from geoshare_opt.instance import Instance
from geoshare_opt.solvers.bruteforce import brute_force

N_CASES = 500


def random_instance(seed: int) -> Instance:
    rng = np.random.default_rng(10_000 + seed)
    n = int(rng.integers(3, 9))
    n_types = int(rng.integers(1, min(3, n) + 1))
    types = [f"t{int(rng.integers(0, n_types))}" for _ in range(n)]
    uniform = rng.random() < 0.5
    type_params = {t: int(rng.integers(1, 5)) for t in set(types)}
    nodes = [{"id": f"v{i}", "type": types[i],
              "params": type_params[types[i]] if uniform else int(rng.integers(0, 5))} for i in range(n)]
    p_edge, p_hard = rng.uniform(0.3, 1.0), rng.uniform(0.0, 0.3)
    integer_weights = rng.random() < 0.3
    edges = []
    for i in range(n):
        for j in range(i + 1, n):
            if rng.random() >= p_edge:
                continue
            if rng.random() < p_hard:
                edges.append((f"v{i}", f"v{j}", "hard"))
            else:
                w = float(rng.integers(-3, 4)) if integer_weights else float(rng.normal())
                edges.append((f"v{i}", f"v{j}", w if w != 0 else 0.5))
    present = sorted(set(types))
    max_classes = int(rng.integers(len(present), n + 1)) if rng.random() < 0.3 else min(n, len(present) + int(rng.integers(0, 3)))
    per_type = {t: int(rng.integers(1, 4)) for t in present if rng.random() < 0.6} if rng.random() < 0.4 else {}
    max_params = None
    if rng.random() < 0.4:
        need = sum(max(nd["params"] for nd in nodes if nd["type"] == t) for t in present)
        max_params = need + int(rng.integers(0, 8))
    return Instance.build(nodes, edges, max_classes, max_classes_per_type=per_type or None,
                          max_params=max_params, name=f"tiny{seed}")


@functools.lru_cache(maxsize=None)
def case(seed: int) -> tuple[Instance, float | None]:
    """The instance and its brute-force optimum (None = infeasible budget)."""
    inst = random_instance(seed)
    bf = brute_force(inst)
    return inst, None if bf is None else bf[0]


def all_cases(count: int = N_CASES) -> list[tuple[Instance, float | None]]:
    return [case(s) for s in range(count)]
