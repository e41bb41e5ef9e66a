"""Per-type curves under any class-cost oracle, and their combination under a budget (formulations/colgen.md).

``class_cost_curves(instance, oracle)`` runs one ``TypeEngine`` per type over every class budget
``k = cap_t .. 1`` (largest first: each answer, merged greedily, starts the next): the best colouring of the type
alone with at most k classes under the oracle's class costs, its cost and a proven lower bound. What is proven
depends on the oracle (``oracle.py``): additive costs and non-additive costs with a subset table are priced exactly,
so the points are proven optima of the set-partitioning model; other oracles are priced heuristically (the
surrogate proposes classes, the oracle prices them, the pool MIP picks) and their points say ``proven: false``.
An oracle is asked once per distinct class (``TypeEngine.costs`` keeps its answers); for an expensive one,
``Settings(oracle_steps=0, keep=...)`` limits how many classes a pricing round sends it.
``combine_curves`` then picks the class counts per type under a class and parameter budget by the exact DP of
decomposition.md.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ...instance import Instance
from ...oracle import ClassCostOracle, GraphObjective
from ..curves import INF, allocate
from .engine import Settings, TypeEngine


def type_engine(instance: Instance, t: str, oracle: ClassCostOracle, surrogate: ClassCostOracle | None = None,
                settings: Settings | None = None) -> TypeEngine:
    """The engine of type ``t`` under ``oracle`` (``surrogate``: the additive oracle that proposes classes for a
    non-additive one; default the instance's graph objective)."""
    nodes = instance.type_members(t)
    hard = instance.part(t).hard
    if oracle.additive:
        return TypeEngine(oracle.pair_matrix(nodes), hard, exact_costs=oracle.exact, settings=settings)
    proposer = surrogate if surrogate is not None else GraphObjective(instance)
    if not proposer.additive:
        from ...errors import InputError
        raise InputError("class-cost curves: the surrogate must be an additive oracle (it proposes classes by "
                         "quadratic pricing)")

    def cost_of(classes: list[np.ndarray]) -> np.ndarray:
        return oracle.costs([nodes[np.asarray(c, dtype=np.int64)] for c in classes])

    return TypeEngine(proposer.pair_matrix(nodes), hard, cost_of=cost_of, table=oracle.subset_costs(nodes),
                      exact_costs=oracle.exact, settings=settings)


def class_cost_curves(instance: Instance, oracle: ClassCostOracle | None = None, *,
                      surrogate: ClassCostOracle | None = None, time_limit: float | None = None,
                      settings: Settings | None = None, progress: Callable[[dict], None] | None = None
                      ) -> list[dict]:
    """One dict per type: ``type``, ``nodes`` (global indices), ``pricing`` (exact | heuristic) and ``points``,
    one per k = 1..cap_t with ``k``, ``cost`` (best found, None if none), ``bound`` (proven lower bound or None),
    ``proven``, ``infeasible`` and ``labels`` (local, in the order of ``nodes``). ``time_limit`` bounds the whole
    call (shared evenly over the points left); ``progress`` gets ``{"type", "k", "status"}`` per point."""
    oracle = oracle if oracle is not None else GraphObjective(instance)
    deadline = None if time_limit is None else time.monotonic() + time_limit
    caps = {t: min(len(instance.type_members(t)), instance.budget.max_classes_per_type.get(t, INF))
            for t in instance.types}
    left = sum(caps.values())
    out = []
    for t in instance.types:
        engine = type_engine(instance, t, oracle, surrogate, settings)
        points, previous = [], None
        for k in range(int(caps[t]), 0, -1):
            share = None if deadline is None else time.monotonic() + max(0.0, deadline - time.monotonic()) / left
            res = engine.solve(k, share, previous)
            left -= 1
            previous = res.labels if res.labels is not None else previous
            points.append(_point(k, res))
            if progress is not None:
                progress({"type": t, "k": k, "status": res.status})
            if res.interrupted:
                break
        out.append({"type": t, "nodes": instance.type_members(t).tolist(),
                    "pricing": "exact" if engine.proves else "heuristic", "points": _monotone(points[::-1])})
    return out


def _point(k: int, res) -> dict:
    return {"k": k, "cost": None if res.labels is None else float(res.value),
            "bound": None if not np.isfinite(res.bound) else float(res.bound),
            "proven": res.status in ("optimal", "infeasible"), "infeasible": res.status == "infeasible",
            "labels": None if res.labels is None else res.labels.tolist()}


def _monotone(points: list[dict]) -> list[dict]:
    """At most k classes (points in increasing k): a colouring found for k serves every larger k, a bound at k
    holds for every smaller k."""
    best = None
    for p in points:
        if p["cost"] is not None and (best is None or p["cost"] < best["cost"]):
            best = dict(p)
        elif best is not None:
            p.update(cost=best["cost"], labels=best["labels"])
    bound = None
    for p in reversed(points):
        if p["infeasible"]:
            continue
        if p["bound"] is not None and (bound is None or p["bound"] > bound):
            bound = p["bound"]
        p["bound"] = bound
    for p in points:
        if p["cost"] is not None:
            p["proven"] = p["bound"] is not None and p["bound"] >= p["cost"] - 1e-9 * max(1.0, abs(p["cost"]))
    return points


def combine_curves(instance: Instance, curves: list[dict], max_classes: int | None = None,
                   max_params: int | None = None) -> tuple[float, np.ndarray | None]:
    """The best colouring from the curves under ``max_classes`` (default: the instance's) and ``max_params``
    (each class charged its type's largest member): ``(total cost, global labels)`` or ``(inf, None)``."""
    K = instance.budget.max_classes if max_classes is None else max_classes
    values = [np.array([INF] + [INF if p["cost"] is None else p["cost"] for p in c["points"]]) for c in curves]
    penalties = [np.zeros(len(v), dtype=np.int64) for v in values]
    type_params = [int(instance.params[c["nodes"]].max()) for c in curves]
    total, ks = allocate(values, penalties, K, type_params if max_params is not None else None, max_params)
    if ks is None:
        return INF, None
    labels = np.zeros(len(instance.nodes), dtype=np.int64)
    offset = 0
    for c, k in zip(curves, ks):
        local = np.asarray(c["points"][k - 1]["labels"], dtype=np.int64)
        labels[c["nodes"]] = local + offset
        offset += int(local.max()) + 1
    return float(total), labels
