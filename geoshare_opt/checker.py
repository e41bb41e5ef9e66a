"""The independent checker: feasibility and objective of an assignment, recomputed from the instance alone.

Every result the package emits carries numbers from here, never a backend's own objective. Classes are global
integer labels; the canonical form relabels them 0..k-1 in order of first appearance over the node list.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .errors import InputError, ResultError
from .instance import Instance
from .result import Result, Termination, compute_gap


@dataclass(frozen=True)
class Evaluation:
    feasible: bool
    objective: float
    n_classes: int
    classes_per_type: dict[str, int]
    stored_params: int
    objective_per_type: dict[str, float]
    violations: tuple[str, ...] = field(default_factory=tuple)


def labels_from_assignment(instance: Instance, assignment: Mapping[str, int] | Sequence[int] | np.ndarray) -> np.ndarray:
    """Labels as an int array in node order. Accepts a ``{node id: class}`` mapping or a sequence in node order.
    Raises ``ResultError`` if a node is missing or unknown, or a class is not an integer."""
    n = len(instance.nodes)
    if isinstance(assignment, Mapping):
        idx = instance.index
        unknown = [k for k in assignment if k not in idx]
        if unknown:
            raise ResultError(f"assignment names unknown node {unknown[0]!r}")
        if len(assignment) != n:
            missing = next(nd.id for nd in instance.nodes if nd.id not in assignment)
            raise ResultError(f"assignment misses node {missing!r}")
        values = [assignment[nd.id] for nd in instance.nodes]
    else:
        values = list(np.asarray(assignment).tolist())
        if len(values) != n:
            raise ResultError(f"assignment has {len(values)} entries for {n} nodes")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ResultError(f"assignment classes must be integers, got {v!r}")
        if not -2**63 <= v < 2**63:
            raise ResultError(f"assignment class {v} is out of the 64-bit integer range")
    return np.asarray(values, dtype=np.int64).reshape(n)


def canonical(labels: np.ndarray) -> np.ndarray:
    """Relabel classes 0..k-1 in order of first appearance (removes colour symmetry from comparisons)."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse].astype(np.int64)


def evaluate(instance: Instance, assignment) -> Evaluation:
    """Objective and every budget/conflict violation of an assignment."""
    lab = canonical(labels_from_assignment(instance, assignment))
    u, v, w, hard = instance.edge_arrays
    same = lab[u] == lab[v]
    objective = float(np.sum(w[same & ~hard]))
    violations: list[str] = []

    type_of = instance.type_of
    k = int(lab.max()) + 1 if len(lab) else 0
    # type of each class; a class must be single-typed
    class_type = np.full(k, -1, dtype=np.int64)
    class_params = np.zeros(k, dtype=np.int64)
    for i, c in enumerate(lab):
        if class_type[c] == -1:
            class_type[c] = type_of[i]
        elif class_type[c] != type_of[i]:
            violations.append(f"class {c} mixes types {instance.types[class_type[c]]!r} and {instance.types[type_of[i]]!r}")
            break
    np.maximum.at(class_params, lab, instance.params)

    bad = np.flatnonzero(same & hard)
    if len(bad):
        e = instance.edges[bad[0]]
        violations.append(f"hard edge ({e.u!r}, {e.v!r}) is inside one class ({len(bad)} hard edges violated)")

    b = instance.budget
    if k > b.max_classes:
        violations.append(f"{k} classes exceed max_classes={b.max_classes}")
    per_type = {t: int(np.sum(class_type == ti)) for ti, t in enumerate(instance.types)}
    for t, cap in b.max_classes_per_type.items():
        if per_type.get(t, 0) > cap:
            violations.append(f"type {t!r} uses {per_type[t]} classes, above its cap {cap}")
    stored = int(class_params.sum())
    if b.max_params is not None and stored > b.max_params:
        violations.append(f"stored parameters {stored} exceed max_params={b.max_params}")

    obj_t = {t: 0.0 for t in instance.types}
    inside = same & ~hard
    if inside.any():
        sums = np.bincount(type_of[u[inside]], weights=w[inside], minlength=len(instance.types))
        obj_t = {t: float(sums[ti]) for ti, t in enumerate(instance.types)}
    return Evaluation(not violations, objective, k, per_type, stored, obj_t, tuple(violations))


def objective_of_labels(instance: Instance, labels: np.ndarray) -> float:
    """Objective only (no feasibility), for hot paths in tests and benchmarks."""
    u, v, w, hard = instance.edge_arrays
    same = labels[u] == labels[v]
    return float(np.sum(w[same & ~hard]))


def instance_answered(instance: Instance, result: Result) -> Instance | None:
    """The instance ``result`` answers, given the instance file it was solved from: ``instance`` itself, or
    ``instance`` under the budget ``solve --ratio/--max-classes`` set (``stats.budget_override``); None when the
    result answers neither."""
    if instance.sha256 == result.instance_sha256:
        return instance
    override = (result.stats or {}).get("budget_override")
    if isinstance(override, dict):
        try:
            candidate = instance.with_budget_dict(override)
        except InputError:
            return None
        if candidate.sha256 == result.instance_sha256:
            return candidate
    return None


def find_instance(result: Result, *also: str | os.PathLike) -> tuple[Instance, str] | None:
    """``(instance answered, its file)`` for a result, found on disk: the file it records (``instance_path``), then
    each of ``also``. A file counts only if it reads as an instance that the result answers (``instance_answered``;
    the file may have changed since the run); None when none does."""
    for candidate in (result.instance_path, *also):
        if not candidate or not os.path.isfile(candidate):
            continue
        try:
            answered = instance_answered(Instance.load(candidate), result)
        except InputError:
            continue
        if answered is not None:
            return answered, os.fspath(candidate)
    return None


def check_result(instance: Instance, result: Result) -> list[str]:
    """Problems with a result against its instance (empty list = consistent): hash, assignment, objective."""
    problems = []
    if not result.feasible and (result.assignment or result.objective is not None):
        problems.append("status 'none' but an assignment or objective is present")
    if result.termination == Termination.INFEASIBLE.value and result.feasible:
        problems.append("termination 'infeasible' with a feasible assignment")
    if result.instance_sha256 != instance.sha256:
        problems.append(f"result answers instance {result.instance_sha256[:12]}…, not this one ({instance.sha256[:12]}…)")
        return problems
    if result.feasible:
        try:
            ev = evaluate(instance, result.assignment)
        except ResultError as exc:
            return [str(exc)]
        if not ev.feasible:
            problems.append(f"assignment is infeasible: {ev.violations[0]}")
        if result.objective is None or abs(ev.objective - result.objective) > 1e-6 * max(1.0, abs(ev.objective)):
            problems.append(f"objective {result.objective} does not match the recomputed {ev.objective}")
        if result.bound is not None and result.bound > ev.objective + 1e-6 * max(1.0, abs(ev.objective)):
            problems.append(f"bound {result.bound} exceeds the objective {ev.objective}")
        gap = compute_gap(ev.objective, result.bound)
        if (gap is None) != (result.gap is None) or (gap is not None and abs(gap - result.gap) > 1e-6):
            problems.append(f"gap {result.gap} does not match the recomputed {gap}")
    return problems


def checked_labels(instance: Instance, result: Result) -> np.ndarray:
    """Labels (node order) of a feasible result that answers ``instance`` (for applying it); ``ResultError``
    naming the first problem otherwise."""
    if result.instance_sha256 != instance.sha256:
        raise ResultError(f"the result answers instance {result.instance_sha256[:12]}…, not this one "
                          f"({instance.sha256[:12]}…): pass the instance it was solved from")
    if not result.feasible:
        raise ResultError(f"the result holds no feasible assignment (termination {result.termination!r}) — "
                          "nothing to apply")
    problems = check_result(instance, result)
    if problems:
        raise ResultError(f"the result does not fit its instance: {problems[0]}")
    return labels_from_assignment(instance, result.assignment)
