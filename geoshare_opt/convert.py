"""Readers for public graph benchmarks: DIMACS colouring (``.col``) and Gset / rudy Max-Cut graphs.

Both become single-type instances (type ``"v"``, params 1, node ids ``"1".."n"``). DIMACS edges are hard (a proper
colouring) or unit soft weights (``hard=False``: the min K-partition of the graph); Gset edges are soft with their
signed weights. The quirks of real files (shared/data/README.md) are handled here, not by callers:

- DIMACS: ``c`` comments, ``p edge n m [chi]`` (some files append chi), an optional ``s chi`` line, ``e u v``;
  edges listed twice (u v and v u), headers whose edge count is twice the real one, self-loops (dropped).
  Every edge is deduplicated as {min(u,v), max(u,v)}; the header's ``m`` is recorded, never trusted.
- Gset / rudy: ``n m`` then ``i j w`` (1-based); parallel edges are merged by adding their weights (that is what
  they mean in a cut), self-loops are dropped (they never cross a cut).
- Text encodings: UTF-8 (with or without BOM), UTF-16 LE/BE (with BOM, or detected from NUL bytes), CRLF/CR.

Malformed lines raise ``GraphFormatError`` (an ``InputError``: CLI exit 2) naming the file and line number.

Limits (docs/limits.md): the file is read through ``inputs.read_input_bytes`` (capped); a header may declare at
most ``MAX_GRAPH_NODES`` nodes, and at most ``max(ISOLATED_SLACK, named)`` of them may be named by no edge
(``named`` = the vertices the edges do name), so a lying header (``p edge 1000000000 1``) is refused before
anything is allocated for it instead of becoming gigabytes of isolated nodes; numbers have at most
``MAX_TOKEN_DIGITS`` digits.
"""
from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

from .errors import InputError
from .inputs import read_input_bytes
from .instance import MAX_INT, Budget, Edge, Instance, Node

NODE_TYPE = "v"
MAX_GRAPH_NODES = 10_000_000
ISOLATED_SLACK = 1000
MAX_TOKEN_DIGITS = 18


class GraphFormatError(InputError):
    """A graph file (DIMACS or Gset) is unreadable or malformed."""


# ---------------------------------------------------------------------- text decoding
def _read_bytes(path: str | os.PathLike) -> bytes:
    return read_input_bytes(path, "graph", GraphFormatError)


def decode_text(data: bytes, path: str | os.PathLike = "<bytes>") -> str:
    """Decode a text file whatever its encoding quirk (BOMs, UTF-16 without BOM, Latin-1 comments)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise GraphFormatError(f"{path}: UTF-16 byte-order mark but undecodable content") from None
    elif len(data) >= 4 and b"\x00" in data[:200]:
        # UTF-16 without a BOM: ASCII digits leave NUL bytes at every odd (LE) or even (BE) position
        head = data[:200]
        enc = "utf-16-le" if head[1::2].count(0) > head[0::2].count(0) else "utf-16-be"
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            raise GraphFormatError(f"{path}: contains NUL bytes but is not UTF-16 text") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # only comments can hold non-ASCII bytes; numbers are unaffected


def _lines(text: str):
    """(line number, stripped line) for every non-blank line; handles CRLF and lone CR."""
    for no, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if s:
            yield no, s


def _show(tok: str) -> str:
    """A token for an error message, shortened: a 5000-digit number is not echoed back."""
    return repr(tok) if len(tok) <= 24 else repr(tok[:20] + "...") + f" ({len(tok)} characters)"


def _int(tok: str, path, no: int, what: str) -> int:
    if len(tok.lstrip("+-")) > MAX_TOKEN_DIGITS:
        raise GraphFormatError(f"{path}: line {no}: {what} {_show(tok)} is too large")
    try:
        return int(tok)
    except ValueError:
        raise GraphFormatError(f"{path}: line {no}: {what} must be an integer, got {_show(tok)}") from None


def _node_count(tok: str, path, no: int) -> int:
    n = _int(tok, path, no, "node count")
    if not 1 <= n <= MAX_GRAPH_NODES:
        raise GraphFormatError(f"{path}: line {no}: node count must lie in 1..{MAX_GRAPH_NODES:,} "
                               f"(docs/limits.md), got {n}")
    return n


def _check_isolated(n: int, named: int, path) -> None:
    """Refuse a header that declares far more nodes than its edges name (see the module docstring)."""
    allowed = max(ISOLATED_SLACK, named)
    if n - named > allowed:
        raise GraphFormatError(f"{path}: the header declares {n} nodes but the edges name only {named}: at most "
                               f"{allowed} vertices without edges are accepted (a lying header?)")


# ---------------------------------------------------------------------- DIMACS
def _edge_key(u: int, v: int, n: int, path, no: int) -> tuple[int, int] | None:
    """The 0-based ``(min, max)`` key of edge ``u v`` (1-based), or None for a self-loop (dropped by both formats)."""
    for x in (u, v):
        if not 1 <= x <= n:
            raise GraphFormatError(f"{path}: line {no}: vertex {x} outside 1..{n}")
    if u == v:
        return None
    return (u - 1, v - 1) if u < v else (v - 1, u - 1)


def parse_dimacs(text: str, path: str | os.PathLike = "<text>") -> tuple[int, list[tuple[int, int]], dict]:
    """``(n, unique edges as 0-based (u < v) pairs in first-seen order, header info)``."""
    n = None
    header: dict = {}
    seen: set[tuple[int, int]] = set()
    named: set[int] = set()
    edges: list[tuple[int, int]] = []
    lines_e = loops = dups = 0
    for no, s in _lines(text):
        tag = s[0]
        if tag in "c%#":
            continue
        parts = s.split()
        tag = parts[0]
        if tag == "p":
            if n is not None:
                raise GraphFormatError(f"{path}: line {no}: second 'p' line")
            if len(parts) < 4 or parts[1] not in ("edge", "edges", "col", "graph"):
                raise GraphFormatError(f"{path}: line {no}: expected 'p edge <nodes> <edges> [chi]', got {s!r}")
            n = _node_count(parts[2], path, no)
            header["m_header"] = _int(parts[3], path, no, "edge count")
            if len(parts) >= 5:
                header["chi_header"] = _int(parts[4], path, no, "chromatic number")
        elif tag == "s":
            if len(parts) != 2:
                raise GraphFormatError(f"{path}: line {no}: expected 's <chi>', got {s!r}")
            header["chi_header"] = _int(parts[1], path, no, "chromatic number")
        elif tag == "e":
            if n is None:
                raise GraphFormatError(f"{path}: line {no}: edge before the 'p edge' line")
            if len(parts) < 3:
                raise GraphFormatError(f"{path}: line {no}: expected 'e <u> <v>', got {s!r}")
            u = _int(parts[1], path, no, "edge end")
            v = _int(parts[2], path, no, "edge end")
            key = _edge_key(u, v, n, path, no)
            lines_e += 1
            named.update((u, v))
            if key is None:
                loops += 1
                continue
            if key in seen:
                dups += 1
                continue
            seen.add(key)
            edges.append(key)
        elif tag in ("n", "x", "d", "v"):  # node descriptors of some DIMACS variants carry nothing we use
            continue
        else:
            raise GraphFormatError(f"{path}: line {no}: unknown line type {tag!r} (expected c, p, s or e)")
    if n is None:
        raise GraphFormatError(f"{path}: no 'p edge <nodes> <edges>' line: not a DIMACS graph")
    _check_isolated(n, len(named), path)
    header.update(edge_lines=lines_e, self_loops_dropped=loops, duplicates_dropped=dups)
    return n, edges, header


def read_dimacs(path: str | os.PathLike, k: int | None = None, hard: bool = True, name: str | None = None) -> Instance:
    """A DIMACS ``.col`` graph as an instance with budget ``k`` classes (default: the chromatic number the file
    states, else the node count). ``hard=True``: edges forbid sharing (colouring); ``False``: unit soft weights."""
    data = _read_bytes(path)
    n, edges, header = parse_dimacs(decode_text(data, path), path)
    if k is None:
        k = header.get("chi_header") or n
    return _instance(path, data, n, [(u, v, None if hard else 1.0) for u, v in edges], k,
                     name, {"format": "dimacs", "hard_edges": bool(hard), **header})


# ---------------------------------------------------------------------- Gset / rudy
def parse_gset(text: str, path: str | os.PathLike = "<text>") -> tuple[int, dict[tuple[int, int], float], dict]:
    """``(n, {(u, v) 0-based u < v: weight}, header info)``; parallel edges summed, self-loops dropped."""
    it = _lines(text)
    try:
        no, first = next(it)
    except StopIteration:
        raise GraphFormatError(f"{path}: empty file") from None
    parts = first.split()
    if len(parts) != 2:
        raise GraphFormatError(f"{path}: line {no}: expected '<nodes> <edges>', got {first!r}")
    n = _node_count(parts[0], path, no)
    m = _int(parts[1], path, no, "edge count")
    if m < 0:
        raise GraphFormatError(f"{path}: line {no}: edge count must be non-negative, got {m}")
    weights: dict[tuple[int, int], float] = {}
    named: set[int] = set()
    lines_e = loops = merged = 0
    for no, s in it:
        if s[0] in "c%#":
            continue
        parts = s.split()
        if len(parts) not in (2, 3):
            raise GraphFormatError(f"{path}: line {no}: expected '<i> <j> <w>', got {s!r}")
        u = _int(parts[0], path, no, "edge end")
        v = _int(parts[1], path, no, "edge end")
        if len(parts) == 3:
            try:
                w = float(parts[2])
            except ValueError:
                raise GraphFormatError(f"{path}: line {no}: weight must be a number, got {_show(parts[2])}") from None
            if not math.isfinite(w):
                raise GraphFormatError(f"{path}: line {no}: weight {_show(parts[2])} is not finite")
        else:
            w = 1.0
        key = _edge_key(u, v, n, path, no)
        lines_e += 1
        named.update((u, v))
        if key is None:
            loops += 1
            continue
        if key in weights:
            merged += 1
            weights[key] += w
            if not math.isfinite(weights[key]):
                raise GraphFormatError(f"{path}: line {no}: the parallel edges between {u} and {v} add up to a "
                                       "weight that is not finite")
        else:
            weights[key] = w
    _check_isolated(n, len(named), path)
    header = {"m_header": m, "edge_lines": lines_e, "self_loops_dropped": loops, "parallel_edges_merged": merged}
    return n, weights, header


def read_gset(path: str | os.PathLike, k: int = 2, hard: bool = False, name: str | None = None) -> Instance:
    """A Gset / rudy graph as an instance with ``k`` classes (default 2: min 2-partition = total − max cut).
    Edges keep their signed weights; ``hard=True`` makes every edge hard instead (a colouring question)."""
    data = _read_bytes(path)
    n, weights, header = parse_gset(decode_text(data, path), path)
    edges = [(u, v, None if hard else w) for (u, v), w in weights.items()]
    return _instance(path, data, n, edges, k, name,
                     {"format": "gset", "hard_edges": bool(hard),
                      "total_weight": float(sum(weights.values())), **header})


# ---------------------------------------------------------------------- auto-detection
def detect_format(text: str) -> str:
    """``"dimacs"`` or ``"gset"`` from the first meaningful line."""
    for _, s in _lines(text):
        tag = s.split()[0]
        if tag in ("c", "p", "e", "s"):
            return "dimacs"
        if s[0] in "%#":
            continue
        if len(s.split()) == 2 and all(t.lstrip("-").isdigit() for t in s.split()):
            return "gset"
        break
    return "unknown"


def read_graph(path: str | os.PathLike, k: int | None = None, hard: bool | None = None,
               name: str | None = None) -> Instance:
    """Read a DIMACS or Gset graph, detecting the format from the content. Defaults follow the format:
    DIMACS → hard edges and k = the stated chromatic number (else n); Gset → signed soft weights and k = 2."""
    fmt = detect_format(decode_text(_read_bytes(path), path))
    if fmt == "dimacs":
        return read_dimacs(path, k=k, hard=True if hard is None else hard, name=name)
    if fmt == "gset":
        return read_gset(path, k=2 if k is None else k, hard=False if hard is None else hard, name=name)
    raise GraphFormatError(f"{path}: neither a DIMACS .col graph ('p edge' line) nor a Gset/rudy graph ('n m' first line)")


# ---------------------------------------------------------------------- instance assembly
def _instance(path, data: bytes, n: int, edges, k: int, name: str | None, meta: dict) -> Instance:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_INT:
        raise GraphFormatError(f"number of classes k must be a positive integer (max_classes, at most 2**53-1), "
                               f"got {k!r}")
    ids = [str(i + 1) for i in range(n)]
    nodes = [Node(i, NODE_TYPE, 1) for i in ids]
    edge_objs = [Edge(ids[u], ids[v], 0.0, True) if w is None else Edge(ids[u], ids[v], float(w), False)
                 for u, v, w in edges]
    src = Path(path).name
    meta = {"source_file": src, "source_sha256": hashlib.sha256(data).hexdigest(), "nodes": n,
            "edges": len(edge_objs), **meta}
    stem = src.rsplit(".", 1)[0] if "." in src else src
    return Instance(name or stem, nodes, edge_objs, Budget(int(k)), meta)
