"""The instance: a weighted layer-conflict graph with types and a budget (format ``geoshare-instance``, version 1).

Parsing is strict and every violation is reported as one line naming what is wrong (``InstanceError``).
The JSON Schema in ``schemas/instance-v1.schema.json`` describes the same format for other tools; this module is
the reference validator (it also checks what a schema cannot: unique ids, edges naming known nodes, budgets).

Semantics (formulations/README.md): only nodes of the same type may share a class; an edge weight ``w`` is the
cost of its two ends sharing a class (any finite real); a missing pair costs 0; a ``hard`` edge forbids sharing;
a class stores ``max(params)`` of its members; the objective is the total weight of soft edges inside classes.
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .errors import InstanceError
from .inputs import loads_json, read_input_bytes
from .options import check_ratio

FORMAT = "geoshare-instance"
VERSION = 1
# Largest parameter count / params budget accepted: the JSON-safe integer range, so that sums over many nodes
# stay exact in int64 arithmetic (the checker sums them) and every JSON reader sees the same number.
MAX_INT = 2**53 - 1


@dataclass(frozen=True)
class Node:
    id: str
    type: str
    params: int = 1
    layer: int | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"id": self.id, "type": self.type, "params": self.params}
        if self.layer is not None:
            d["layer"] = self.layer
        if self.meta:
            d["meta"] = dict(self.meta)
        return d


@dataclass(frozen=True)
class Edge:
    u: str
    v: str
    w: float = 0.0
    hard: bool = False

    def to_dict(self) -> dict:
        if self.hard:
            return {"u": self.u, "v": self.v, "hard": True}
        return {"u": self.u, "v": self.v, "w": self.w}


@dataclass(frozen=True)
class Budget:
    max_classes: int
    max_classes_per_type: Mapping[str, int] = field(default_factory=dict)
    max_params: int | None = None

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"max_classes": self.max_classes}
        if self.max_classes_per_type:
            d["max_classes_per_type"] = dict(self.max_classes_per_type)
        if self.max_params is not None:
            d["max_params"] = self.max_params
        return d


@dataclass(frozen=True)
class Part:
    """One type's sub-problem, sparse, in local indices ``0..n-1`` (``nodes`` maps them to global indices).

    ``soft_*`` hold the non-zero soft edges with ``u < v``; ``hard_*`` the hard ones; ``cap`` is the number of class
    slots the part may use in the model at hand (``Instance.part``: the most the instance's budget allows the type).
    ``W`` and ``hard`` are dense views for small parts (computed on first use). The arrays are read-only: an
    instance hands out the same part to every caller.
    """

    type: str
    nodes: np.ndarray
    params: np.ndarray
    soft_u: np.ndarray
    soft_v: np.ndarray
    soft_w: np.ndarray
    hard_u: np.ndarray
    hard_v: np.ndarray
    cap: int

    @property
    def n(self) -> int:
        return len(self.nodes)

    @property
    def uniform_params(self) -> bool:
        return bool(self.n == 0 or np.all(self.params == self.params[0]))

    @property
    def max_param(self) -> int:
        return int(self.params.max()) if self.n else 0

    @property
    def trivial_bound(self) -> float:
        """Every negative edge inside a class: no partition can do better."""
        return float(self.soft_w[self.soft_w < 0].sum())

    def with_cap(self, cap: int) -> "Part":
        return replace(self, cap=int(cap))

    def objective(self, labels: np.ndarray) -> float:
        same = labels[self.soft_u] == labels[self.soft_v]
        return float(self.soft_w[same].sum())

    def feasible(self, labels: np.ndarray, k: int) -> bool:
        """Proper on the hard edges and at most ``k`` distinct classes."""
        if len(labels) != self.n:
            return False
        if np.any(labels[self.hard_u] == labels[self.hard_v]):
            return False
        return len(np.unique(labels)) <= k

    @cached_property
    def W(self) -> np.ndarray:
        """The dense symmetric soft-weight matrix (zero diagonal, zero where hard)."""
        W = np.zeros((self.n, self.n))
        W[self.soft_u, self.soft_v] = self.soft_w
        W[self.soft_v, self.soft_u] = self.soft_w
        return _read_only(W)

    @cached_property
    def hard(self) -> np.ndarray:
        """The dense symmetric boolean matrix of hard edges."""
        H = np.zeros((self.n, self.n), dtype=bool)
        H[self.hard_u, self.hard_v] = True
        H[self.hard_v, self.hard_u] = True
        return _read_only(H)


def _read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _is_int(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def _integral(x: Any) -> Any:
    """``3.0`` -> ``3``: JSON (and its Schema's "integer") does not tell 3 from 3.0, so neither do we."""
    if isinstance(x, float) and math.isfinite(x) and x.is_integer():
        return int(x)
    return x


class Instance:
    """An immutable, validated instance. Build with ``Instance.from_dict``, ``Instance.load``, ``Instance.build``
    or ``Instance.from_networkx``."""

    __slots__ = ("name", "nodes", "edges", "budget", "meta", "__dict__")

    def __init__(self, name: str, nodes: Iterable[Node], edges: Iterable[Edge], budget: Budget,
                 meta: Mapping[str, Any] | None = None):
        self.name = name
        self.nodes: tuple[Node, ...] = tuple(nodes)
        self.edges: tuple[Edge, ...] = tuple(edges)
        self.budget = budget
        self.meta = dict(meta or {})
        self._validate()

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, nodes: Iterable[Mapping | Node], edges: Iterable[Mapping | Edge | tuple], max_classes: int,
              *, max_classes_per_type: Mapping[str, int] | None = None, max_params: int | None = None,
              name: str = "instance", meta: Mapping | None = None) -> "Instance":
        """Construct from Python data. Edges may be dicts, ``Edge``s, ``(u, v, w)`` or ``(u, v, "hard")``."""
        d = {
            "format": FORMAT, "version": VERSION, "name": name,
            "nodes": [n.to_dict() if isinstance(n, Node) else dict(n) for n in nodes],
            "edges": [_edge_to_dict(e) for e in edges],
            "budget": {"max_classes": max_classes},
            "meta": dict(meta or {}),
        }
        if max_classes_per_type:
            d["budget"]["max_classes_per_type"] = dict(max_classes_per_type)
        if max_params is not None:
            d["budget"]["max_params"] = max_params
        return cls.from_dict(d)

    @classmethod
    def from_networkx(cls, graph, max_classes: int, *, weight: str = "weight", hard: str = "hard",
                      node_type: str = "type", default_type: str = "t", params: str = "params",
                      default_weight: float = 1.0, **kwargs) -> "Instance":
        """An instance from a networkx graph: node attributes ``type``/``params``/``layer``, edge attributes
        ``weight`` (default ``default_weight``) and ``hard`` (bool). Node ids become strings."""
        nodes = []
        for v, attrs in graph.nodes(data=True):
            nd = {"id": str(v), "type": str(attrs.get(node_type, default_type)), "params": attrs.get(params, 1)}
            if "layer" in attrs:
                nd["layer"] = attrs["layer"]
            nodes.append(nd)
        edges = []
        for u, v, attrs in graph.edges(data=True):
            if attrs.get(hard, False):
                edges.append({"u": str(u), "v": str(v), "hard": True})
            else:
                edges.append({"u": str(u), "v": str(v), "w": attrs.get(weight, default_weight)})
        return cls.build(nodes, edges, max_classes, name=kwargs.pop("name", getattr(graph, "name", "") or "graph"),
                         **kwargs)

    @classmethod
    def from_dict(cls, d: Any) -> "Instance":
        if not isinstance(d, dict):
            raise InstanceError("instance: top level must be a JSON object")
        if d.get("format") != FORMAT:
            raise InstanceError(f"instance: 'format' must be {FORMAT!r}, got {d.get('format')!r}")
        if d.get("version") != VERSION or isinstance(d.get("version"), bool):  # True == 1 in Python
            raise InstanceError(f"instance: unsupported version {d.get('version')!r} (this build reads version {VERSION})")
        unknown = set(d) - {"format", "version", "name", "nodes", "edges", "budget", "meta"}
        if unknown:
            raise InstanceError(f"instance: unknown top-level field {sorted(unknown)[0]!r} (put free-form data in 'meta')")
        name = d.get("name", "")
        if not isinstance(name, str):
            raise InstanceError("instance: 'name' must be a string")
        meta = d.get("meta", {})
        if not isinstance(meta, dict):
            raise InstanceError("instance: 'meta' must be an object")
        raw_nodes = d.get("nodes")
        if not isinstance(raw_nodes, list):
            raise InstanceError("instance: 'nodes' must be a list")
        nodes = [_parse_node(i, n) for i, n in enumerate(raw_nodes)]
        raw_edges = d.get("edges", [])
        if not isinstance(raw_edges, list):
            raise InstanceError("instance: 'edges' must be a list")
        edges = [_parse_edge(i, e) for i, e in enumerate(raw_edges)]
        budget = _parse_budget(d.get("budget"))
        return cls(name, nodes, edges, budget, meta)

    @classmethod
    def loads(cls, text: str) -> "Instance":
        return cls.from_dict(loads_json(text, "instance", InstanceError))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Instance":
        text = read_text(path, "instance")
        try:
            return cls.loads(text)
        except InstanceError as exc:
            raise InstanceError(f"{path}: {exc}") from None

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        """Every rule of the format, whichever constructor built the instance (a file, ``build``, a graph reader
        or ``Instance(...)`` itself): numbers in range, ids unique, edges between known nodes, a budget that fits."""
        seen = self._validate_nodes()
        self._validate_edges(seen)
        self._validate_budget()
        _check_json_value(self.meta, "'meta'")

    def _validate_nodes(self) -> dict[str, int]:
        seen: dict[str, int] = {}
        total = 0
        for i, n in enumerate(self.nodes):
            if n.id in seen:
                raise InstanceError(f"instance: duplicate node id {n.id!r}")
            seen[n.id] = i
            if not _is_int(n.params) or not 0 <= n.params <= MAX_INT:
                raise InstanceError(f"instance: node {n.id!r} has params={n.params!r}; it must be a non-negative "
                                    "integer (at most 2**53-1)")
            total += n.params
        if total > MAX_INT:
            raise InstanceError(f"instance: the parameters of all nodes sum to {total}, above 2**53-1 (the largest "
                                "total that stored-parameter counts keep exact)")
        return seen

    def _validate_edges(self, seen: dict[str, int]) -> None:
        pairs: set[tuple[int, int]] = set()
        magnitude = 0.0
        for k, e in enumerate(self.edges):
            if e.u not in seen:
                raise InstanceError(f"instance: edge {k} names unknown node {e.u!r}")
            if e.v not in seen:
                raise InstanceError(f"instance: edge {k} names unknown node {e.v!r}")
            if e.u == e.v:
                raise InstanceError(f"instance: edge {k} is a self-loop on {e.u!r}")
            a, b = seen[e.u], seen[e.v]
            key = (a, b) if a < b else (b, a)
            if key in pairs:
                raise InstanceError(f"instance: duplicate edge between {e.u!r} and {e.v!r} (edge {k})")
            pairs.add(key)
            if not e.hard:
                if not isinstance(e.w, float) or not math.isfinite(e.w):
                    raise InstanceError(f"instance: edge {k} ({e.u!r}, {e.v!r}) weight {e.w!r} is not a finite float")
                magnitude += abs(e.w)
        if not math.isfinite(magnitude):
            raise InstanceError("instance: edge weights too large: the sum of their absolute values would overflow "
                                "a float (about 1.8e308); scale the weights down")

    def _validate_budget(self) -> None:
        b = self.budget
        _check_budget_ranges(b)
        types = self.types
        if b.max_classes < len(types):
            raise InstanceError(
                f"instance: budget max_classes={b.max_classes} is below the number of non-empty types ({len(types)}); "
                "every type needs at least one class")
        for t in b.max_classes_per_type:
            if t not in self._type_index:
                raise InstanceError(f"instance: max_classes_per_type names unknown type {t!r}")
        if b.max_params is not None:
            need = sum(int(self.params[self.type_members(t)].max()) for t in types)
            if b.max_params < need:
                raise InstanceError(
                    f"instance: budget max_params={b.max_params} is below {need}, the parameters of one class per type")

    # ------------------------------------------------------------------ derived data (cached)
    @cached_property
    def index(self) -> dict[str, int]:
        return {n.id: i for i, n in enumerate(self.nodes)}

    @cached_property
    def types(self) -> tuple[str, ...]:
        """Type names in order of first appearance."""
        return tuple(dict.fromkeys(n.type for n in self.nodes))

    @cached_property
    def _type_index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.types)}

    @cached_property
    def type_of(self) -> np.ndarray:
        ti = self._type_index
        return np.array([ti[n.type] for n in self.nodes], dtype=np.int64)

    @cached_property
    def params(self) -> np.ndarray:
        return np.array([n.params for n in self.nodes], dtype=np.int64)

    @cached_property
    def edge_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(u, v, w, hard)`` as arrays over all edges (global node indices; ``w`` is 0 for hard edges)."""
        idx = self.index
        m = len(self.edges)
        u = np.fromiter((idx[e.u] for e in self.edges), dtype=np.int64, count=m)
        v = np.fromiter((idx[e.v] for e in self.edges), dtype=np.int64, count=m)
        w = np.fromiter((0.0 if e.hard else e.w for e in self.edges), dtype=np.float64, count=m)
        h = np.fromiter((e.hard for e in self.edges), dtype=bool, count=m)
        return u, v, w, h

    @cached_property
    def same_type_edge_mask(self) -> np.ndarray:
        u, v, _, _ = self.edge_arrays
        return self.type_of[u] == self.type_of[v]

    def type_members(self, t: str) -> np.ndarray:
        return np.flatnonzero(self.type_of == self._type_index[t])

    def type_cap(self, t: str) -> int:
        """Most classes type ``t`` can use on its own: its per-type cap, the share of the global cap left after one
        class for every other type, and its node count."""
        n_t = len(self.type_members(t))
        cap = min(n_t, self.budget.max_classes - (len(self.types) - 1))
        if t in self.budget.max_classes_per_type:
            cap = min(cap, self.budget.max_classes_per_type[t])
        return max(cap, 0)

    def part(self, t: str) -> Part:
        """Type ``t``'s sub-problem (``Part``) with ``cap = type_cap(t)``: sparse, and the same object on every call.
        Cross-type edges never matter and are dropped."""
        return self._parts[t]

    @cached_property
    def _parts(self) -> dict[str, Part]:
        out = {}
        for t in self.types:
            members = self.type_members(t)
            lu, lv, ws, hs = self.type_edges(t)
            a, b = np.minimum(lu, lv), np.maximum(lu, lv)
            soft = ~hs & (ws != 0.0)
            arrays = [_read_only(x) for x in (members, self.params[members], a[soft], b[soft], ws[soft], a[hs], b[hs])]
            out[t] = Part(t, *arrays, self.type_cap(t))
        return out

    def type_edges(self, t: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Type ``t``'s edges in the local indices of ``type_members(t)``: ``(u, v, w, hard)`` arrays, sparse (the
        one place that maps global edges to a type's sub-problem; ``part`` builds on it)."""
        return self._type_edges[t]

    @cached_property
    def _type_edges(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        u, v, w, h = self.edge_arrays
        same = self.same_type_edge_mask
        local = np.empty(len(self.nodes), dtype=np.int64)
        out = {}
        for t in self.types:
            members = self.type_members(t)
            local[members] = np.arange(len(members))
            sel = same & (self.type_of[u] == self._type_index[t])
            out[t] = (local[u[sel]], local[v[sel]], w[sel], h[sel])
        return out

    @cached_property
    def sha256(self) -> str:
        """Hash of the canonical JSON form (sorted keys, no whitespace): stable across formatting and key order."""
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "version": VERSION, "name": self.name,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
            "budget": self.budget.to_dict(),
            "meta": self.meta,
        }

    def dumps(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def save(self, path: str | os.PathLike) -> None:
        from .atomic import write_text_atomic
        write_text_atomic(path, self.dumps(indent=None) + "\n")

    @property
    def budget_is_slack(self) -> bool:
        """True when the budget lets every node keep a class of its own: nothing has to be shared."""
        b = self.budget
        if b.max_classes < len(self.nodes) or (b.max_params is not None and b.max_params < int(self.params.sum())):
            return False
        return all(len(self.type_members(t)) <= cap for t, cap in b.max_classes_per_type.items()
                   if t in self._type_index)

    def with_ratio(self, ratio: float, max_classes: int | None = None) -> "Instance":
        """The same graph with ``max_params = params_for_ratio(Σ params, ratio)`` (``max_classes`` too when given;
        the other caps kept): the budget ``analyze --ratio`` writes, set without re-running analyze."""
        total = int(self.params.sum())
        need = sum(int(self.params[self.type_members(t)].max()) for t in self.types)
        return self.with_budget(max_classes, max_params=params_for_ratio(total, need, ratio), keep_caps=True)

    def with_budget_dict(self, budget: Mapping) -> "Instance":
        """The same graph under a budget in its JSON form (``Budget.to_dict()``), checked like a file's budget."""
        return Instance(self.name, self.nodes, self.edges, _parse_budget(dict(budget)), self.meta)

    def with_budget(self, max_classes: int | None = None, *, max_classes_per_type: Mapping[str, int] | None = None,
                    max_params: int | None = None, keep_caps: bool = False) -> "Instance":
        """The same graph under another budget (unset caps are dropped unless ``keep_caps``)."""
        b = self.budget
        d: dict[str, Any] = {"max_classes": max_classes if max_classes is not None else b.max_classes}
        per = dict(max_classes_per_type) if max_classes_per_type is not None else (
            dict(b.max_classes_per_type) if keep_caps else {})
        if per:
            d["max_classes_per_type"] = per
        p = max_params if max_params is not None else (b.max_params if keep_caps else None)
        if p is not None:
            d["max_params"] = p
        # through the parser, so a new budget gets the same checks as one read from a file
        return Instance(self.name, self.nodes, self.edges, _parse_budget(d), self.meta)

    def __repr__(self) -> str:
        return (f"Instance({self.name!r}, nodes={len(self.nodes)}, edges={len(self.edges)}, types={len(self.types)}, "
                f"max_classes={self.budget.max_classes})")


def params_for_ratio(total: int, need: int, ratio: float) -> int:
    """``max_params`` that removes the fraction ``ratio`` (0 < ratio < 1) of ``total`` stored parameters:
    ``⌊(1 − ratio) · total⌋``. InputError when that is below ``need`` (one class per type)."""
    check_ratio(ratio, error=InstanceError)
    cap = math.floor((1.0 - float(ratio)) * total)
    if cap < need:
        raise InstanceError(f"ratio {ratio} is too high: one tensor per type already stores {need} of {total} "
                            f"parameters (the ratio can be at most {1 - need / total:.4f})")
    return cap


# ---------------------------------------------------------------------- parsing helpers
def _check_json_value(x: Any, where: str, depth: int = 0) -> None:
    """Free-form ``meta`` must survive a JSON round trip unchanged (the hash is taken over it)."""
    if depth > 64:
        raise InstanceError(f"instance: {where} is nested too deeply")
    if x is None or isinstance(x, (str, bool)):
        return
    if isinstance(x, int):
        return
    if isinstance(x, float):
        if not math.isfinite(x):
            raise InstanceError(f"instance: {where} holds a non-finite number {x}")
        return
    if isinstance(x, (list, tuple)):
        for item in x:
            _check_json_value(item, where, depth + 1)
        return
    if isinstance(x, dict):
        for k, item in x.items():
            if not isinstance(k, str):
                raise InstanceError(f"instance: {where} has a non-string key {k!r}")
            _check_json_value(item, where, depth + 1)
        return
    raise InstanceError(f"instance: {where} holds {type(x).__name__}, which is not JSON data")


def read_text(path: str | os.PathLike, what: str) -> str:
    data = read_input_bytes(path, what, InstanceError)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InstanceError(f"{path}: not UTF-8 text") from None


def _edge_to_dict(e: Any) -> dict:
    if isinstance(e, Edge):
        return e.to_dict()
    if isinstance(e, Mapping):
        return dict(e)
    if isinstance(e, (tuple, list)) and len(e) == 3:
        u, v, w = e
        if w == "hard":
            return {"u": u, "v": v, "hard": True}
        return {"u": u, "v": v, "w": w}
    raise InstanceError(f"instance: cannot read edge {e!r} (use a dict, an Edge, (u, v, w) or (u, v, 'hard'))")


def _parse_node(i: int, n: Any) -> Node:
    if not isinstance(n, dict):
        raise InstanceError(f"instance: node {i} must be an object")
    unknown = set(n) - {"id", "type", "params", "layer", "meta"}
    if unknown:
        raise InstanceError(f"instance: node {i} has unknown field {sorted(unknown)[0]!r}")
    nid = n.get("id")
    if not isinstance(nid, str) or not nid:
        raise InstanceError(f"instance: node {i} needs a non-empty string 'id'")
    typ = n.get("type")
    if not isinstance(typ, str) or not typ:
        raise InstanceError(f"instance: node {nid!r} needs a non-empty string 'type'")
    params = _integral(n.get("params", 1))
    if not _is_int(params) or not 0 <= params <= MAX_INT:
        raise InstanceError(f"instance: node {nid!r} has params={params!r}; it must be a non-negative integer "
                            f"(at most 2**53-1)")
    layer = _integral(n.get("layer"))
    if layer is not None and (not _is_int(layer) or abs(layer) > MAX_INT):
        raise InstanceError(f"instance: node {nid!r} has layer={layer!r}; it must be an integer or absent")
    meta = n.get("meta", {})
    if not isinstance(meta, dict):
        raise InstanceError(f"instance: node {nid!r} 'meta' must be an object")
    _check_json_value(meta, f"node {nid!r} 'meta'")
    return Node(nid, typ, int(params), None if layer is None else int(layer), meta)


def _parse_edge(i: int, e: Any) -> Edge:
    if not isinstance(e, dict):
        raise InstanceError(f"instance: edge {i} must be an object")
    unknown = set(e) - {"u", "v", "w", "hard"}
    if unknown:
        raise InstanceError(f"instance: edge {i} has unknown field {sorted(unknown)[0]!r}")
    u, v = e.get("u"), e.get("v")
    if not isinstance(u, str) or not isinstance(v, str):
        raise InstanceError(f"instance: edge {i} needs string node ids 'u' and 'v'")
    hard = e.get("hard", False)
    if not isinstance(hard, bool):
        raise InstanceError(f"instance: edge {i} ({u!r}, {v!r}) 'hard' must be true or false")
    if hard:
        if "w" in e:
            raise InstanceError(f"instance: edge {i} ({u!r}, {v!r}) is hard and must not carry a weight 'w'")
        return Edge(u, v, 0.0, True)
    if "w" not in e:
        raise InstanceError(f"instance: edge {i} ({u!r}, {v!r}) needs a weight 'w' or \"hard\": true")
    w = e["w"]
    if isinstance(w, (bool, np.bool_)) or not isinstance(w, numbers.Real):
        raise InstanceError(f"instance: edge {i} ({u!r}, {v!r}) weight must be a number, got {w!r}")
    try:
        w = float(w)
    except OverflowError:  # an integer literal too large for a float
        w = math.inf
    if not math.isfinite(w):
        raise InstanceError(f"instance: edge {i} ({u!r}, {v!r}) weight {w} is not finite")
    return Edge(u, v, w, False)


def _parse_budget(b: Any) -> Budget:
    if not isinstance(b, dict):
        raise InstanceError("instance: 'budget' must be an object with 'max_classes'")
    unknown = set(b) - {"max_classes", "max_classes_per_type", "max_params"}
    if unknown:
        raise InstanceError(f"instance: budget has unknown field {sorted(unknown)[0]!r}")
    per = b.get("max_classes_per_type", {})
    if not isinstance(per, dict):
        raise InstanceError("instance: budget max_classes_per_type must be an object of type -> integer")
    budget = Budget(_integral(b.get("max_classes")), {t: _integral(c) for t, c in per.items()},
                    _integral(b.get("max_params")))
    _check_budget_ranges(budget)
    return Budget(int(budget.max_classes), {t: int(c) for t, c in budget.max_classes_per_type.items()},
                  None if budget.max_params is None else int(budget.max_params))


def _check_budget_ranges(b: Budget) -> None:
    k = b.max_classes
    if not _is_int(k) or not 1 <= k <= MAX_INT:
        raise InstanceError(f"instance: budget max_classes must be a positive integer (at most 2**53-1), got {k!r}")
    if not isinstance(b.max_classes_per_type, Mapping):
        raise InstanceError("instance: budget max_classes_per_type must be an object of type -> integer")
    for t, c in b.max_classes_per_type.items():
        if not _is_int(c) or not 1 <= c <= MAX_INT:
            raise InstanceError(f"instance: budget max_classes_per_type[{t!r}] must be a positive integer "
                                f"(at most 2**53-1), got {c!r}")
    p = b.max_params
    if p is not None and (not _is_int(p) or not 0 <= p <= MAX_INT):
        raise InstanceError(f"instance: budget max_params must be a non-negative integer (at most 2**53-1), "
                            f"got {p!r}")
