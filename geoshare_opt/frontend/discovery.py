"""Node discovery: which 2-D weight matrices of a network may share storage, and in which types.

A node is a parameter named as ``model.named_parameters()`` names it. Only 2-D weights are candidates (biases and
norms stay per layer); embedding tables are left out unless an ``include`` pattern names them. Two tensors may
share only when their *type* is equal: role + shape, e.g. ``attn.q:384x384``. The role comes from the module
path after the layer index (q, k, v, o, up, gate, down for transformer blocks); any other tensor gets a generic role,
its name with the numeric components and the trailing ``.weight`` removed (``hidden.3.weight`` -> ``hidden``).
Types with a single member cannot share and are dropped.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from ..errors import InputError

# (regex on the module path after the layer index, role); first match wins, so the attention output comes before
# the feed-forward output (both end in "output.dense" in BERT).
TRANSFORMER_ROLES: tuple[tuple[str, str], ...] = (
    (r"(^|\.)(c_attn|qkv|query_key_value|Wqkv|in_proj)$", "attn.qkv"),
    (r"(^|\.)(query|q_proj|q|wq|to_q|q_lin)$", "attn.q"),
    (r"(^|\.)(key|k_proj|k|wk|to_k|k_lin)$", "attn.k"),
    (r"(^|\.)(value|v_proj|v|wv|to_v|v_lin)$", "attn.v"),
    (r"(^|\.)(attention\.output\.dense|o_proj|out_proj|wo|to_out(\.0)?|out_lin|o)$", "attn.o"),
    (r"(^|\.)attn\.c_proj$", "attn.o"),
    (r"(^|\.)(gate_proj|w3)$", "mlp.gate"),
    (r"(^|\.)(intermediate\.dense|up_proj|fc1|c_fc|w1|lin1|fc_in)$", "mlp.up"),
    (r"(^|\.)(output\.dense|down_proj|fc2|mlp\.c_proj|w2|lin2|fc_out)$", "mlp.down"),
)
_ROLE_RES = tuple((re.compile(p), role) for p, role in TRANSFORMER_ROLES)
_INDEX = re.compile(r"^\d+$")


@dataclass(frozen=True)
class NodeInfo:
    """One shareable tensor: its parameter name, type, parameter count, layer index, shape and owning module."""
    name: str
    type: str
    role: str
    params: int
    layer: int | None
    shape: tuple[int, int]
    module: str

    def to_node_dict(self) -> dict:
        d = {"id": self.name, "type": self.type, "params": self.params,
             "meta": {"shape": list(self.shape), "module": self.module}}
        if self.layer is not None:
            d["layer"] = self.layer
        return d


def layer_index(name: str) -> int | None:
    """The first purely numeric component of a dotted name (``encoder.layer.3.attention...`` -> 3)."""
    for part in name.split("."):
        if _INDEX.match(part):
            return int(part)
    return None


def role_of(param_name: str) -> str:
    """The sharing role of a parameter from its name (see the module docstring)."""
    module, _, leaf = param_name.rpartition(".")
    parts = module.split(".") if module else []
    idx = next((i for i, p in enumerate(parts) if _INDEX.match(p)), None)
    if idx is not None:
        suffix = ".".join(parts[idx + 1:])
        for rx, role in _ROLE_RES:
            if suffix and rx.search(suffix):
                return role
    generic = [p for p in parts if not _INDEX.match(p)]
    if leaf != "weight":
        generic.append(leaf)
    return ".".join(generic) or leaf


def _matcher(pattern: str):
    """``re:<regex>`` searches by regular expression; anything else is a shell glob on the full name."""
    if pattern.startswith("re:"):
        try:
            rx = re.compile(pattern[3:])
        except re.error as exc:
            raise InputError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
        return lambda name: rx.search(name) is not None
    return lambda name: fnmatch.fnmatchcase(name, pattern)


def _as_patterns(patterns: str | Sequence[str] | None) -> list[str]:
    if patterns is None:
        return []
    if isinstance(patterns, str):
        return [patterns]
    return list(patterns)


def discover(model, include: str | Sequence[str] | None = None,
             exclude: str | Sequence[str] | None = None) -> list[NodeInfo]:
    """The shareable tensors of ``model`` in ``named_parameters`` order, grouped into types of at least two.

    ``include`` / ``exclude``: glob patterns (or ``re:<regex>``) on parameter names. With ``include``, exactly the
    matching 2-D parameters are candidates (embeddings too); without it, 2-D weights outside embedding tables.
    A pattern that matches no parameter is an error, and so is a selection without two tensors of one type.
    """
    import torch

    owner: dict[str, torch.nn.Module] = {}
    for mod_name, mod in model.named_modules():
        for p_name, _ in mod.named_parameters(recurse=False):
            owner[f"{mod_name}.{p_name}" if mod_name else p_name] = mod
    params = list(model.named_parameters())
    names = [n for n, _ in params]
    inc, exc = _as_patterns(include), _as_patterns(exclude)
    inc_m = [(p, _matcher(p)) for p in inc]
    exc_m = [(p, _matcher(p)) for p in exc]
    for pat, m in inc_m + exc_m:
        if not any(m(n) for n in names):
            raise InputError(f"pattern {pat!r} matches no parameter of the model "
                             f"(names look like {names[0]!r})" if names else f"the model has no parameters")

    candidates: list[NodeInfo] = []
    for name, p in params:
        if p.dim() != 2:
            continue
        mod = owner.get(name)
        if inc_m:
            if not any(m(name) for _, m in inc_m):
                continue
        elif isinstance(mod, torch.nn.Embedding) or not name.endswith("weight"):
            continue
        if any(m(name) for _, m in exc_m):
            continue
        role = role_of(name)
        out_f, in_f = p.shape
        candidates.append(NodeInfo(name=name, type=f"{role}:{out_f}x{in_f}", role=role, params=int(p.numel()),
                                   layer=layer_index(name), shape=(int(out_f), int(in_f)),
                                   module=name.rpartition(".")[0]))
    counts: dict[str, int] = {}
    for c in candidates:
        counts[c.type] = counts.get(c.type, 0) + 1
    nodes = [c for c in candidates if counts[c.type] >= 2]
    if not nodes:
        what = f"{len(candidates)} candidate 2-D weight(s)" if candidates else "no candidate 2-D weights"
        raise InputError(f"no two compatible tensors to share: {what} after include/exclude, and no two with the "
                         "same role and shape")
    return nodes


def group_by_type(nodes: Iterable[NodeInfo]) -> dict[str, list[int]]:
    """Type -> indices into ``nodes`` (order of first appearance)."""
    out: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        out.setdefault(n.type, []).append(i)
    return out
