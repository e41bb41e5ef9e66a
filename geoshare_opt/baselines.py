"""Heuristic colourings from the literature, in the result format, so every comparison goes through the same
``apply``/``evaluate`` path as a solved colouring (torch-free: part of the solver core).

Within each type the nodes are put in layer order (``layer`` index, then node order) and numbered l = 0..L−1;
with N classes for that type (formulations/heuristics.md):

=========  ==================================================================================================
all        0 for every layer (ALBERT); always one class
sequence   ⌊l·N/L⌋: N contiguous blocks of near-equal size (Takase & Kiyono "sequence")
cycle      l mod N
cycle-rev  l mod N, except the last N layers take the classes in reverse (0 1 2 2 1 0)
adjacent   adjacent pairs (0,1), (2,3), … merged until N classes remain, the rest unique (MiniViT, Basis
           Sharing); when N < L/2 pairs cannot reach N, so contiguous blocks as in ``sequence``
sandwich   first and last layer unique, the middle layers cycle through the remaining N−2 classes (Subformer;
           0 1 2 1 2 3 at N=4); N=2 keeps the first unique and shares the rest
random     a seeded uniform partition with exactly N non-empty classes
none       every layer its own class (no sharing: the per-layer low-rank reference in basis mode)
=========  ==================================================================================================

The number of classes per type comes from ``classes`` (one N for every type, or a mapping type -> N), else from
``ratio`` (fraction of stored parameters removed), else from the instance budget: the largest uniform N that the
budget allows. A type with fewer than N layers uses all its layers.
"""
from __future__ import annotations

import time
from typing import Mapping

import numpy as np

from .checker import canonical, evaluate
from .errors import InputError
from .instance import Instance
from .options import check_ratio, check_seed
from .provenance import __version__
from .result import Result, Status, Termination

KINDS = ("all", "sequence", "cycle", "cycle-rev", "adjacent", "sandwich", "random", "none")


# ---------------------------------------------------------------------- one type's pattern
def pattern(kind: str, n_layers: int, n_classes: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Class of each layer 0..L−1 for one type (exactly ``n_classes`` classes except for ``all``/``none``)."""
    L, N = int(n_layers), int(n_classes)
    if L < 1:
        return np.zeros(0, dtype=np.int64)
    if kind == "all":
        return np.zeros(L, dtype=np.int64)
    if kind == "none":
        return np.arange(L, dtype=np.int64)
    if not 1 <= N <= L:
        raise InputError(f"baseline {kind!r}: {N} classes for a type with {L} layers (need 1..{L})")
    l = np.arange(L)
    if kind == "sequence":
        return (l * N) // L
    if kind == "cycle":
        return l % N
    if kind == "cycle-rev":
        out = l % N
        tail = np.arange(L - N, L)
        out[tail] = N - 1 - (tail - (L - N))
        return out
    if kind == "adjacent":
        merges = L - N
        if merges > L // 2:
            return (l * N) // L
        out, c, i = np.empty(L, dtype=np.int64), 0, 0
        while i < L:
            size = 2 if merges > 0 and i + 1 < L else 1
            if size == 2:
                merges -= 1
            out[i:i + size] = c
            c, i = c + 1, i + size
        return out
    if kind == "sandwich":
        if N == 1:
            return np.zeros(L, dtype=np.int64)
        if N == 2:
            return np.minimum(l, 1)
        out = np.empty(L, dtype=np.int64)
        out[0], out[-1] = 0, N - 1
        out[1:-1] = 1 + (np.arange(L - 2) % (N - 2))
        return out
    if kind == "random":
        rng = rng if rng is not None else np.random.default_rng(0)
        out = rng.integers(0, N, size=L)
        first = rng.permutation(L)[:N]          # guarantee every class is used exactly as requested
        out[first] = np.arange(N)
        return out.astype(np.int64)
    raise InputError(f"unknown baseline kind {kind!r}; choose one of: {', '.join(KINDS)}")


# ---------------------------------------------------------------------- class counts
def layer_order(instance: Instance, t: str) -> np.ndarray:
    """Global node indices of type ``t`` in layer order (``layer`` index, ties by node order)."""
    members = instance.type_members(t)
    keys = [(instance.nodes[i].layer if instance.nodes[i].layer is not None else i, i) for i in members]
    return np.array([i for _, i in sorted(keys)], dtype=np.int64)


def stored_params_for(instance: Instance, counts: Mapping[str, int]) -> int:
    """Stored parameters when type t uses counts[t] classes (a class stores its largest member; for the
    equal-shape types of a network this is exact, otherwise the largest members are assumed to lead classes)."""
    total = 0
    for t in instance.types:
        p = np.sort(instance.params[instance.type_members(t)])[::-1]
        total += int(p[:counts[t]].sum())
    return total


def uniform_counts(instance: Instance, ratio: float | None = None) -> dict[str, int]:
    """The largest N (the same for every type, capped by each type's size and cap) that fits the budget: the
    instance's caps, and ``max_params`` or, with ``ratio``, ``floor((1 − ratio) · total params)``."""
    if ratio is not None:
        check_ratio(ratio)
        limit = int(np.floor((1.0 - ratio) * float(instance.params.sum())))
    else:
        limit = instance.budget.max_params
    caps = {t: instance.type_cap(t) for t in instance.types}
    if not caps:
        return {}                       # no nodes: nothing to count
    best = None
    for n in range(1, max(caps.values()) + 1):
        counts = {t: max(1, min(n, caps[t])) for t in instance.types}
        if sum(counts.values()) > instance.budget.max_classes:
            break
        if limit is not None and stored_params_for(instance, counts) > limit:
            break
        best = counts
    if best is None:
        raise InputError("no uniform number of classes per type fits the budget (even one class per type is too "
                         "many parameters)" if limit is not None else "the budget allows no classes")
    return best


def resolve_counts(instance: Instance, classes: int | Mapping[str, int] | None = None,
                   ratio: float | None = None) -> dict[str, int]:
    if classes is None:
        return uniform_counts(instance, ratio)
    if isinstance(classes, Mapping):
        unknown = set(classes) - set(instance.types)
        if unknown:
            raise InputError(f"classes names unknown type {sorted(unknown)[0]!r}")
        missing = [t for t in instance.types if t not in classes]
        if missing:
            raise InputError(f"classes gives no count for type {missing[0]!r}")
        counts = {t: int(classes[t]) for t in instance.types}
    else:
        if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or classes < 1:
            raise InputError(f"--classes must be a positive integer, got {classes!r}")
        counts = {t: min(int(classes), len(instance.type_members(t))) for t in instance.types}
    for t, c in counts.items():
        if c < 1:
            raise InputError(f"type {t!r} needs at least one class, got {c}")
    return counts


# ---------------------------------------------------------------------- the colouring and its result
def colouring(instance: Instance, kind: str, classes: int | Mapping[str, int] | None = None,
              ratio: float | None = None, seed: int = 0) -> np.ndarray:
    """Labels in node order (global, canonical) for heuristic ``kind``."""
    if kind not in KINDS:
        raise InputError(f"unknown baseline kind {kind!r}; choose one of: {', '.join(KINDS)}")
    counts = resolve_counts(instance, classes, ratio) if kind not in ("all", "none") else None
    rng = np.random.default_rng(check_seed(seed))
    labels = np.empty(len(instance.nodes), dtype=np.int64)
    offset = 0
    for t in instance.types:
        order = layer_order(instance, t)
        local = pattern(kind, len(order), counts[t] if counts else 1, rng)
        labels[order] = local + offset
        offset += int(local.max()) + 1
    return canonical(labels)


def baseline(instance: Instance, kind: str, classes: int | Mapping[str, int] | None = None,
             ratio: float | None = None, seed: int = 0) -> Result:
    """A heuristic colouring as a ``Result`` (solver ``baseline:<kind>``, termination ``completed``), with the
    objective recomputed by the checker. A colouring that breaks the instance's budget or hard edges is
    returned with status ``none`` and the reason in ``message``."""
    t0 = time.perf_counter()
    labels = colouring(instance, kind, classes, ratio, seed)
    ev = evaluate(instance, labels)
    wall = time.perf_counter() - t0
    options = {"kind": kind, "classes": classes if not isinstance(classes, Mapping) else dict(classes),
               "ratio": ratio, "seed": seed}
    assignment = {n.id: int(c) for n, c in zip(instance.nodes, labels)}
    if not ev.feasible:
        return Result(instance_sha256=instance.sha256, instance_name=instance.name, solver=f"baseline:{kind}",
                      solver_version=__version__, termination=Termination.COMPLETED.value,
                      status=Status.NONE.value, objective=None, bound=None, gap=None, wall_time_s=round(wall, 6),
                      assignment=None, options=options,
                      message=f"the {kind} colouring violates the instance: {ev.violations[0]}",
                      stats={"rejected_assignment": assignment})
    return Result(instance_sha256=instance.sha256, instance_name=instance.name, solver=f"baseline:{kind}",
                  solver_version=__version__, termination=Termination.COMPLETED.value,
                  status=Status.FEASIBLE.value, objective=ev.objective, bound=None, gap=None,
                  wall_time_s=round(wall, 6), assignment=assignment, options=options, n_classes=ev.n_classes,
                  classes_per_type=ev.classes_per_type, stored_params=ev.stored_params,
                  objective_per_type=ev.objective_per_type)
