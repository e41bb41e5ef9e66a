"""The true class cost of a tie-mode colouring under the diagonal curvature model (torch-free).

Tying a class C moves every member to the curvature-weighted mean ``w̄ = Σ_l h_l w_l / Σ_l h_l`` (element-wise), and
the diagonal quadratic model charges

    cost(C) = ½ Σ_p [ Σ_{l∈C} h_lp w_lp² − (Σ_{l∈C} h_lp w_lp)² / Σ_{l∈C} h_lp ]

(``materialize.tie.class_cost`` computes the same number with torch, member by member). For a pair this is exactly the
pair weight the front end writes; for larger classes the instance's graph objective (the sum of pair weights) only
models it (formulations/sweep-and-classcost.md): with equal curvature the class cost is ``2/|C|`` times that sum.

Each node keeps ``h_l`` and ``h_l w_l`` (float64 vectors) and the scalar ``q_l = Σ_p h_lp w_lp²``; a class is then
three running sums (``Σh``, ``Σhw``, ``Σq``), so adding or removing a member and pricing the result cost a few
vectorised passes over one tensor. Entries where every member's curvature is 0 cost nothing (the merge there is the
plain mean, which the model does not charge). Negative curvature entries are clipped to 0, as the merge does.

The front end's first-order term ``g·δ`` (instance ``meta.first_order``) is not part of this cost: the sidecar holds
no gradient.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .checker import labels_from_assignment
from .errors import InputError
from .instance import Instance
from .sidecar_ref import file_sha256, sidecar_for, sidecar_ref, verified_sidecar  # noqa: F401 (re-exported)

SIDECAR_SUFFIX = ".curvature.safetensors"


@dataclass(frozen=True)
class ClassSums:
    """The sufficient statistics of one class: element-wise ``Σh`` and ``Σhw``, the scalar ``Σq``, its size."""
    h: np.ndarray
    hw: np.ndarray
    q: float
    size: int


@dataclass(frozen=True)
class TrueCost:
    total: float
    per_type: dict[str, float]

    def to_dict(self) -> dict:
        return {"total": self.total, "per_type": dict(self.per_type)}


class ClassCost:
    """Evaluates the true class cost of any colouring of ``instance`` from per-node curvature and weights.

    ``curvature`` and ``weights`` map node id -> array of the tensor's shape (any float dtype)."""

    def __init__(self, instance: Instance, curvature: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray]):
        self.instance = instance
        self._h: list[np.ndarray] = []
        self._hw: list[np.ndarray] = []
        q = np.zeros(len(instance.nodes))
        shapes: dict[str, tuple] = {}
        for i, node in enumerate(instance.nodes):
            if node.id not in curvature or node.id not in weights:
                what = "curvature" if node.id not in curvature else "weight"
                raise InputError(f"class cost: no {what} for node {node.id!r}")
            h = np.asarray(curvature[node.id], dtype=np.float64)
            w = np.asarray(weights[node.id], dtype=np.float64)
            if h.shape != w.shape:
                raise InputError(f"class cost: curvature of {node.id!r} has shape {list(h.shape)}, its weight "
                                 f"{list(w.shape)}")
            if shapes.setdefault(node.type, h.shape) != h.shape:
                raise InputError(f"class cost: type {node.type!r} mixes tensor shapes {list(shapes[node.type])} and "
                                 f"{list(h.shape)}; tying needs one shape per type")
            if not (np.all(np.isfinite(h)) and np.all(np.isfinite(w))):
                raise InputError(f"class cost: curvature or weight of {node.id!r} is not finite")
            h = np.maximum(h.reshape(-1), 0.0)
            hw = h * w.reshape(-1)
            self._h.append(h)
            self._hw.append(hw)
            q[i] = float(np.dot(hw, w.reshape(-1)))
        self._q = q

    # ------------------------------------------------------------------ sums and costs
    def sums(self, members: Sequence[int]) -> ClassSums:
        members = list(members)
        if not members:
            raise InputError("class cost: an empty class")
        h = self._h[members[0]].copy()
        hw = self._hw[members[0]].copy()
        for i in members[1:]:
            h += self._h[i]
            hw += self._hw[i]
        return ClassSums(h, hw, float(self._q[members].sum()), len(members))

    def node_statistics(self, nodes: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per node (rows, in the order given): ``h``, ``h ⊙ w`` (flattened) and the scalar ``q``."""
        nodes = [int(i) for i in nodes]
        return (np.stack([self._h[i] for i in nodes]), np.stack([self._hw[i] for i in nodes]),
                np.asarray(self._q[nodes], dtype=np.float64))

    def tensor_size(self, node: int) -> int:
        return len(self._h[int(node)])

    def add(self, s: ClassSums, i: int) -> ClassSums:
        return ClassSums(s.h + self._h[i], s.hw + self._hw[i], s.q + float(self._q[i]), s.size + 1)

    def remove(self, s: ClassSums, i: int) -> ClassSums | None:
        if s.size <= 1:
            return None
        return ClassSums(s.h - self._h[i], s.hw - self._hw[i], s.q - float(self._q[i]), s.size - 1)

    def merge(self, a: ClassSums, b: ClassSums) -> ClassSums:
        return ClassSums(a.h + b.h, a.hw + b.hw, a.q + b.q, a.size + b.size)

    def restrict(self, instance: Instance, nodes: Sequence[int]) -> "ClassCost":
        """The same statistics for ``instance``, whose node i is this instance's node ``nodes[i]`` (no copies)."""
        if len(instance.nodes) != len(nodes):
            raise InputError("class cost: restrict needs one source node per node")
        out = object.__new__(ClassCost)
        out.instance = instance
        out._h = [self._h[int(i)] for i in nodes]
        out._hw = [self._hw[int(i)] for i in nodes]
        out._q = self._q[np.asarray(nodes, dtype=np.int64)]
        return out

    def swap(self, s: ClassSums, out: int, into: int) -> ClassSums:
        """The class with member ``out`` replaced by ``into``."""
        return ClassSums(s.h - self._h[out] + self._h[into], s.hw - self._hw[out] + self._hw[into],
                         s.q - float(self._q[out]) + float(self._q[into]), s.size)

    @staticmethod
    def cost_of(s: ClassSums | None) -> float:
        """``½ (Σq − Σ_p (Σhw)² / Σh)``; 0 for a singleton or an empty class, never below 0 (rounding)."""
        if s is None or s.size <= 1:
            return 0.0
        # where Σh = 0 also Σhw = 0: the tiny shift makes those terms 0/tiny = 0 without a masked copy, and changes
        # no other term (h ≥ 1e-45 in float32, so the relative shift is below 1e-250)
        explained = float(np.dot(s.hw, s.hw / (s.h + 1e-300)))
        return max(0.0, 0.5 * (s.q - explained))

    def class_cost(self, members: Sequence[int]) -> float:
        """The cost of tying the nodes ``members`` (global indices) into one class."""
        members = list(members)
        if len(members) <= 1:
            return 0.0
        return self.cost_of(self.sums(members))

    def classes(self, labels: np.ndarray) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for i, c in enumerate(np.asarray(labels).tolist()):
            out.setdefault(c, []).append(i)
        return out

    def cost(self, assignment) -> TrueCost:
        """Total and per-type true cost of a colouring (labels in node order or ``{node id: class}``). Classes that
        mix types are not tyings: the checker rejects such colourings, and so does this."""
        labels = labels_from_assignment(self.instance, assignment)
        type_of = self.instance.type_of
        per_type = {t: 0.0 for t in self.instance.types}
        for members in self.classes(labels).values():
            types = set(type_of[members].tolist())
            if len(types) > 1:
                raise InputError("class cost: a class mixes node types")
            per_type[self.instance.types[types.pop()]] += self.class_cost(members)
        return TrueCost(float(sum(per_type.values())), per_type)

    def __call__(self, assignment) -> float:
        return self.cost(assignment).total


# ---------------------------------------------------------------------- the sidecar
def load_class_cost(instance: Instance, instance_path: str | os.PathLike | None = None,
                    sidecar: str | os.PathLike | None = None) -> ClassCost:
    """A ``ClassCost`` from the curvature sidecar of an instance written by ``analyze``.

    The sidecar is ``sidecar`` if given, else the one the instance's meta names beside ``instance_path``; either way
    its sha256 must be the one the instance records. Raises ``InputError`` (exit 2 on the command line) when the
    instance names no sidecar, the file is missing, does not match, is unreadable, or lacks the weights (sidecars
    written before ``weight/<param>`` was added: rerun analyze), and for sharing modes other than tie."""
    sidecar_ref(instance)
    mode = instance.meta.get("mode", "tie") if isinstance(instance.meta, dict) else "tie"
    if mode != "tie":
        raise InputError(f"the true class cost is defined for tie mode; instance {instance.name!r} was analysed for "
                         f"mode {mode!r}")
    path = verified_sidecar(instance, sidecar if sidecar is not None else sidecar_for(instance, instance_path))
    try:
        from safetensors import safe_open
        with safe_open(str(path), framework="np") as fh:
            keys = set(fh.keys())
            ids = [n.id for n in instance.nodes]
            missing_w = [i for i in ids if f"weight/{i}" not in keys]
            missing_h = [i for i in ids if f"diag/{i}" not in keys]
            if missing_h:
                raise InputError(f"curvature sidecar {path} has no diagonal curvature for {missing_h[0]!r}")
            if missing_w:
                raise InputError(f"curvature sidecar {path} holds no weights (weight/{missing_w[0]}): it was written "
                                 "with --sidecar diag (or predates the true class cost); rerun `geoshare-opt analyze "
                                 "... -o` with --sidecar full")
            curvature = {i: fh.get_tensor(f"diag/{i}") for i in ids}
            weights = {i: fh.get_tensor(f"weight/{i}") for i in ids}
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"curvature sidecar {path} cannot be read: {exc}") from None
    return ClassCost(instance, curvature, weights)


def has_sidecar(instance: Instance) -> bool:
    """Whether the instance's meta names a curvature sidecar (it may still be missing, lack weights, or be named
    by a path that ``sidecar_ref`` refuses: using it says which)."""
    ref = instance.meta.get("curvature") if isinstance(instance.meta, dict) else None
    return isinstance(ref, dict) and "file" in ref


def annotate_true_cost(result, class_cost: ClassCost):
    """``result`` with its declared ``true_cost`` field set to ``class_cost``'s total and per-type cost of its
    assignment (left None when the result holds no assignment). Returns the result."""
    if result.feasible:
        result.true_cost = class_cost.cost(result.assignment).to_dict()
    return result
