"""Measured class costs: what sharing one class does to the spec's loss, measured on the network.

``cost(S)`` = the mean calibration loss with only the class ``S`` shared (every other node keeps its trained weight)
minus the trained network's, over a fixed set of calibration batches. It is the class-cost oracle
(``geoshare_opt.oracle.ClassCostOracle``) the set-partitioning engine and the per-type dynamic programme below price
classes with: not exact (a loss on a calibration subset) and not additive. Costs are cached on disk, keyed by the
network's weights, the batches, the sharing mode and merge, and the loss, so a second run measures nothing again.

For a type with few layers every class can be measured (``subset_costs``: MiniLM has 6 layers per role, 57 classes of
two or more); ``best_partitions`` then gives the colouring of that type with the lowest summed measured cost at every
class count, exactly, and ``allocate_types`` the class counts per type under the instance's budget.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ..errors import InputError
from ..instance import Instance
from ..oracle import ClassCostOracle

CACHE_VERSION = 1
#: largest type whose every class ``subset_costs`` measures (2^n − n − 1 forward passes over the cost batches)
SUBSET_MAX_NODES = 7


def cache_root() -> Path:
    env = os.environ.get("GEOSHARE_OPT_CACHE") or os.environ.get("GEOSHARE_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "geoshare-opt") / "measured"


def tensor_digest(obj: Any, digest) -> None:
    """Feed every tensor (and plain value) of a nested batch into ``digest``, in a fixed order."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        digest.update(f"{tuple(t.shape)}{t.dtype}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, Mapping):
        for k in sorted(obj, key=str):
            digest.update(str(k).encode())
            tensor_digest(obj[k], digest)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            tensor_digest(v, digest)
    else:
        digest.update(repr(obj).encode())


class CostCache:
    """Measured costs on disk (``<cache>/measured/<key>.json``): one JSON object ``{"a|b|c": cost}`` per context.
    An unreadable file is ignored (measured again); writes are atomic; ``path=None`` keeps costs in memory only."""

    def __init__(self, path: Path | None):
        self.path = path
        self.costs: dict[str, float] = {}
        self._dirty = False
        if path is not None and path.is_file():
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                self.costs = {str(k): float(v) for k, v in raw.get("costs", {}).items()}
            except (OSError, ValueError, AttributeError):
                self.costs = {}

    @staticmethod
    def for_context(context: Mapping[str, Any], enabled: bool = True) -> "CostCache":
        key = hashlib.sha256(json.dumps(dict(context), sort_keys=True).encode()).hexdigest()[:24]
        return CostCache(cache_root() / f"{key}.json" if enabled else None)

    def get(self, key: str) -> float | None:
        return self.costs.get(key)

    def put(self, key: str, value: float) -> None:
        self.costs[key] = float(value)
        self._dirty = True

    def flush(self) -> None:
        if self.path is None or not self._dirty:
            return
        from ..atomic import write_json_atomic
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.path, {"format": "geoshare-measured-costs", "version": CACHE_VERSION,
                                          "costs": self.costs})
            self._dirty = False
        except OSError:          # an unwritable cache only costs measuring again next time
            pass


def cost_context(evaluator, indices: Sequence[int], curvature: Mapping[str, torch.Tensor] | None) -> dict:
    """What a measured cost depends on: weights, data, mode and merge, loss."""
    from ..frontend import fingerprint
    data = hashlib.sha256()
    for i in indices:
        tensor_digest(evaluator.batches[i], data)
    merge = hashlib.sha256()
    prefix = "diag/" if evaluator.mode == "tie" else "in_cov/"
    for nid in evaluator.ids:
        if curvature is not None and prefix + nid in curvature:
            tensor_digest(curvature[prefix + nid], merge)
    w = evaluator.weights
    evaluator.reset()                  # the trained weights, which the fingerprint names
    return {"version": CACHE_VERSION, "weights": fingerprint(evaluator.model, evaluator.ids),
            "data": data.hexdigest(), "mode": evaluator.mode, "merge": merge.hexdigest(), "ratio": w.ratio,
            "rank": w.rank, "side": w.side, "spec": evaluator.spec.name,
            "loss": str((evaluator.spec.meta or {}).get("loss", "")), "torch": torch.__version__}


class MeasuredClassCost(ClassCostOracle):
    """The measured class-cost oracle over ``evaluator``'s batches ``indices`` (default: all of them)."""

    exact = False
    additive = False

    def __init__(self, evaluator, indices: Sequence[int] | None = None, *,
                 curvature: Mapping[str, torch.Tensor] | None = None, cache: bool = True,
                 progress: Callable[[dict], None] | None = None):
        self.evaluator = evaluator
        self.indices = list(range(len(evaluator.batches)) if indices is None else indices)
        self.cache = CostCache.for_context(cost_context(evaluator, self.indices, curvature), cache)
        self.progress = progress
        self.measured = 0           # forward passes spent here (cache hits cost none)
        from .refine import hard_pairs
        self._hard = hard_pairs(evaluator.instance)
        evaluator.reset()
        self.base = evaluator.loss(indices=self.indices)

    def _key(self, members: Sequence[int]) -> str:
        return "|".join(self.evaluator.ids[i] for i in sorted(members))

    def cost(self, members: Sequence[int]) -> float:
        members = sorted(int(i) for i in members)
        if not members or (len(members) == 1 and self.evaluator.mode == "tie"):
            return 0.0
        if self._holds_hard_pair(members):
            return float("inf")
        key = self._key(members)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        self.evaluator.share_only(members)
        value = self.evaluator.loss(indices=self.indices) - self.base
        self.measured += len(self.indices)
        self.cache.put(key, value)
        return value

    def _holds_hard_pair(self, members: list[int]) -> bool:
        from .refine import holds_hard_pair
        inst = self.evaluator.instance
        pairs = self._hard.get(inst.types[int(inst.type_of[members[0]])])
        return bool(pairs) and holds_hard_pair(pairs, members)

    def singleton_cost(self, node: int) -> float:
        return self.cost([node])

    def subset_costs(self, nodes: Sequence[int]) -> np.ndarray | None:
        """Every subset of ``nodes`` measured (bit mask order; singletons at their ``singleton_cost``), or None for
        more than ``SUBSET_MAX_NODES`` nodes."""
        nodes = [int(i) for i in nodes]
        if len(nodes) > SUBSET_MAX_NODES:
            return None
        out = np.zeros(2 ** len(nodes))
        masks = list(range(1, 2 ** len(nodes)))
        started = time.perf_counter()
        for done, mask in enumerate(masks, 1):
            out[mask] = self.cost([nodes[b] for b in range(len(nodes)) if mask >> b & 1])
            if self.progress is not None:
                self.progress({"step": "class costs", "done": done, "total": len(masks),
                               "elapsed": time.perf_counter() - started})
        self.cache.flush()
        return out

    def close(self) -> None:
        self.cache.flush()
        self.evaluator.reset()


# ---------------------------------------------------------------------- exact use of a subset table
def best_partitions(table: np.ndarray, n: int) -> list[tuple[float, list[int]] | None]:
    """For ``k = 0..n``: the lowest summed cost of a partition of the ``n`` nodes into exactly ``k`` classes and the
    partition (one bit mask per class), from ``table[mask]`` = the cost of the class ``mask``. Dynamic programme over
    sub-masks holding the lowest node (3^n steps)."""
    full = (1 << n) - 1
    best: list[dict[int, tuple[float, tuple[int, ...]]]] = [{0: (0.0, ())}] + [{} for _ in range(n)]
    for mask in range(1, full + 1):
        low = mask & -mask
        rest = mask ^ low
        sub = rest
        while True:
            cls = sub | low
            remain = mask ^ cls
            for k in range(1, n + 1):
                prev = best[k - 1].get(remain)
                if prev is None:
                    continue
                value = prev[0] + float(table[cls])
                cur = best[k].get(mask)
                if cur is None or value < cur[0]:
                    best[k][mask] = (value, prev[1] + (cls,))
            if sub == 0:
                break
            sub = (sub - 1) & rest
    return [None if full not in best[k] else (best[k][full][0], list(best[k][full][1])) for k in range(n + 1)]


def allocate_types(instance: Instance, curves: Mapping[str, list]) -> dict[str, int] | None:
    """Class counts per type minimising the summed curve values under the instance's class and parameter budgets
    (``solvers.decompose.allocate``); None when no choice fits. ``curves[t][k]`` is ``(value, partition)`` or None."""
    from ..solvers.curves import allocate
    types = list(instance.types)
    values, penalties, params = [], [], []
    for t in types:
        curve = curves[t]
        cap = instance.type_cap(t)
        values.append(np.array([np.inf] + [c[0] if c is not None and k <= cap else np.inf
                                           for k, c in enumerate(curve[1:], 1)]))
        penalties.append(np.zeros(len(curve), dtype=np.int64))
        members = instance.type_members(t)
        params.append(int(instance.params[members].max()))
    best, choice = allocate(values, penalties, instance.budget.max_classes, params, instance.budget.max_params)
    if choice is None:
        return None
    return dict(zip(types, choice))


def colouring_from_curves(instance: Instance, curves: Mapping[str, list], counts: Mapping[str, int]) -> np.ndarray:
    """Labels in node order: type t partitioned as ``curves[t][counts[t]]``."""
    labels = np.empty(len(instance.nodes), dtype=np.int64)
    offset = 0
    for t in instance.types:
        members = instance.type_members(t)
        for c, mask in enumerate(curves[t][counts[t]][1]):
            for b in range(len(members)):
                if mask >> b & 1:
                    labels[members[b]] = offset + c
        offset += counts[t]
    return labels
