"""Saving and loading a compressed network: ``model.safetensors`` with one copy of every shared tensor, and
``tiemap.json`` (format ``geoshare-tiemap`` v1) saying which tensor each state-dict key and each node uses.

Storage identity does not survive files reliably (materialize.md), so loading never trusts it: the ties and bases
are rebuilt from the map on a fresh copy of the original architecture, then the values are loaded and the ties
checked by ``data_ptr``. The directory is written under a temporary name and renamed into place.

``tiemap.json`` fields: ``format``/``version``; ``mode`` (tie|basis); ``instance_sha256``, ``instance_name``;
``spec`` (the spec ref: provenance only, never imported by ``load_compressed``); ``fingerprint`` (of the original node
weights, checked on load); ``result`` (solver, objective, termination); ``colouring`` (node id -> class);
``ratio`` (basis mode); ``classes`` (per class: ``members``, and ``merge`` for tie or ``side``/``rank``/``shape``/
``stored`` for basis); ``parameters`` (unique parameters and bytes before/after); ``versions`` (geoshare-opt, torch,
safetensors, numpy, python); ``weights`` (``file``, its ``sha256``, and ``tensors``: every state-dict key -> the
key that stores its value); ``nodes`` (node id -> the stored key, or ``{weight_in, weight_out}`` in basis mode).
Version 2 (written only when the network carries low-rank corrections from ``recover --method lora``; version 1 maps
still load) adds ``corrections`` (``method``, ``rank``, ``scale``, ``members``: the node ids whose module has its own
``lora_A``/``lora_B``); ``recovery`` (a list of recovery records: method, steps, lr, losses, time) may appear in
either version.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..atomic import follow_umask
from ..errors import InputError
from .basis import SharedBasisLinear, max_rank, skeleton_class
from .common import owner
from .corrections import add_corrections, corrections_of
from .tie import retie

WEIGHTS = "model.safetensors"
TIEMAP = "tiemap.json"
FORMAT = "geoshare-tiemap"
VERSION = 1
VERSIONS = (1, 2)          # 2 = with low-rank corrections


class TieMapError(InputError):
    """A tie map (or the weights beside it) is missing, corrupt, or does not fit the model."""


def _dealias_names(state: dict[str, torch.Tensor]) -> tuple[list[str], dict[str, str]]:
    """The first key of every distinct storage view, and every state-dict key -> that key."""
    canon: dict[tuple, str] = {}
    aliases: dict[str, str] = {}
    for key, t in state.items():
        ident = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)
        aliases[key] = canon.setdefault(ident, key)
    return list(canon.values()), aliases


def _dealias(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """One tensor per distinct storage view, and every state-dict key -> the key that stores it."""
    keys, aliases = _dealias_names(state)
    return {key: state[key].detach().to("cpu").contiguous().clone() for key in keys}, aliases


def _node_tensors(model, tie_map: dict, aliases: dict[str, str]) -> dict[str, Any]:
    out = {}
    for cls in tie_map["classes"]:
        for name in cls["members"]:
            module, attr = owner(model, name)
            prefix = name.rpartition(".")[0]
            prefix = prefix + "." if prefix else ""
            if isinstance(module, SharedBasisLinear) and attr == "weight":
                out[name] = {"weight_in": aliases[prefix + "weight_in"], "weight_out": aliases[prefix + "weight_out"]}
            else:
                out[name] = aliases[name]
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def prepare_outdir(outdir: str | os.PathLike, force: bool) -> Path:
    """The output directory to write (through a symbolic link: the directory it names, so that the link stays),
    after checking that it is empty or may be replaced, and that its parent takes a new directory."""
    out = Path(os.path.realpath(outdir)) if os.path.islink(outdir) else Path(outdir)
    if out.exists():
        if not out.is_dir():
            raise InputError(f"output path {out} exists and is not a directory")
        if any(out.iterdir()) and not force:
            raise InputError(f"output directory {out} exists and is not empty (use --force to replace it)")
    if not out.parent.exists():
        raise InputError(f"the parent directory of {out} does not exist")
    if not os.access(out.parent, os.W_OK):    # refused now, not after the work
        raise InputError(f"cannot write {out}: directory {out.parent} is not writable")
    return out


def publish_dir(tmp: Path, out: Path) -> None:
    """Move a finished temporary directory to ``out``, replacing an old one only once the new one is complete."""
    if out.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        os.replace(out, trash / "old")
        try:
            os.replace(tmp, out)
        except BaseException:
            os.replace(trash / "old", out)
            raise
        finally:
            shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, out)


def write_model_files(model: nn.Module, directory: str | os.PathLike, tie_map: dict) -> None:
    """``model.safetensors`` (one copy of each shared tensor) and ``tiemap.json`` into ``directory``."""
    from safetensors.torch import save_file

    directory = Path(directory)
    tensors, aliases = _dealias(model.state_dict())
    save_file(tensors, str(directory / WEIGHTS), metadata={"format": FORMAT})
    follow_umask(directory / WEIGHTS)          # safetensors writes 0600 files
    full = dict(tie_map)
    full["weights"] = {"file": WEIGHTS, "sha256": _sha256(directory / WEIGHTS), "tensors": aliases}
    full["nodes"] = _node_tensors(model, tie_map, aliases)
    corrections = corrections_of(model)
    full.pop("corrections", None)
    full["version"] = VERSION
    if corrections is not None:
        full["corrections"] = corrections
        full["version"] = 2
    (directory / TIEMAP).write_text(json.dumps(full, indent=1, allow_nan=False) + "\n", encoding="utf-8")


def save_compressed(model: nn.Module, outdir: str | os.PathLike, tie_map: dict, *, force: bool = False,
                    extra_files: dict[str, str] | None = None,
                    copy_files: dict[str, str | os.PathLike] | None = None) -> Path:
    """Write ``model`` (one copy of each shared tensor) and its tie map to ``outdir`` atomically; ``extra_files``
    (name -> text) and ``copy_files`` (name -> source path) go in the same directory."""
    out = prepare_outdir(outdir, force)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        follow_umask(tmp)
        write_model_files(model, tmp, tie_map)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
        for name, src in (copy_files or {}).items():
            shutil.copyfile(src, tmp / name)
        publish_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def add_model_files(model: nn.Module, outdir: str | os.PathLike, tie_map: dict) -> Path:
    """``write_model_files`` into an existing directory, each file renamed into place once complete (the weights
    first: a tie map never names weights that are not there yet)."""
    out = Path(outdir)
    tmp = Path(tempfile.mkdtemp(prefix=".model.", suffix=".tmp", dir=out))
    try:
        write_model_files(model, tmp, tie_map)
        os.replace(tmp / WEIGHTS, out / WEIGHTS)
        os.replace(tmp / TIEMAP, out / TIEMAP)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def read_tie_map(outdir: str | os.PathLike) -> dict:
    """The tie map of ``outdir``, checked for structure (never for the model: ``load_compressed`` does that)."""
    from ..inputs import loads_json, read_input_bytes
    path = Path(outdir) / TIEMAP
    if not Path(outdir).is_dir():
        raise TieMapError(f"{outdir} is not a directory written by geoshare-opt apply")
    if not path.is_file():
        raise TieMapError(f"{outdir}: no {TIEMAP} (not a compressed model directory)")
    try:
        text = read_input_bytes(path, "tie map", TieMapError).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TieMapError(f"{path}: corrupt tie map ({exc})") from None
    try:
        m = loads_json(text, str(path), TieMapError)
    except TieMapError as exc:
        raise TieMapError(f"corrupt tie map: {exc}") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise TieMapError(f"{path}: not a {FORMAT} file")
    if m.get("version") not in VERSIONS or isinstance(m.get("version"), bool):   # True == 1 in Python
        raise TieMapError(f"{path}: unsupported tie map version {m.get('version')!r} (this build reads "
                          f"{', '.join(map(str, VERSIONS))})")
    if m.get("mode") not in ("tie", "basis"):
        raise TieMapError(f"{path}: unknown mode {m.get('mode')!r}")
    _check_classes(m, path)
    _check_weights_record(m.get("weights"), path)
    _check_records(m, path)
    if "corrections" in m:
        c = m["corrections"]
        if m["version"] < 2 or not isinstance(c, dict) or c.get("method") != "lora" \
                or isinstance(c.get("rank"), bool) or not isinstance(c.get("rank"), int) or c["rank"] < 1 \
                or not isinstance(c.get("scale"), (int, float)) or not isinstance(c.get("members"), list) \
                or not all(isinstance(x, str) for x in c["members"]):
            raise TieMapError(f"{path}: malformed 'corrections' record")
    return m


def _check_classes(m: dict, path: Path) -> None:
    classes = m.get("classes")
    if not isinstance(classes, list):
        raise TieMapError(f"{path}: tie map lacks 'classes'")
    seen: set[str] = set()
    for c in classes:
        if not isinstance(c, dict) or not isinstance(c.get("members"), list) or not c["members"] \
                or not all(isinstance(x, str) for x in c["members"]):
            raise TieMapError(f"{path}: a class record has no list of member names")
        for name in c["members"]:
            if name in seen:
                raise TieMapError(f"{path}: node {name!r} is listed in two classes (or twice in one)")
            seen.add(name)
        if m["mode"] == "basis":
            _check_basis_class(c, path)


def _is_count(x, least: int = 1) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= least


def _check_basis_class(c: dict, path: Path) -> None:
    """A basis class: a side, a shape of two positive sizes and a rank from 1 to the class's full rank (the rank
    sizes the factors allocated on load: a rank beyond it would only ask for memory)."""
    shape, rank = c.get("shape"), c.get("rank")
    if c.get("side") not in ("in", "out") or not isinstance(shape, list) or len(shape) != 2 \
            or not all(_is_count(d) for d in shape) or not _is_count(rank):
        raise TieMapError(f"{path}: a basis class record lacks side, rank or shape")
    full = max_rank(c["side"], len(c["members"]), *shape)
    if rank > full:
        raise TieMapError(f"{path}: a basis class of {len(c['members'])} {shape} layers has rank {rank}, above its "
                          f"full rank {full}")


def _check_records(m: dict, path: Path) -> None:
    """The fields that loading and recovery read besides the classes and weights have the types they need."""
    if m.get("fingerprint") is not None and not isinstance(m["fingerprint"], str):
        raise TieMapError(f"{path}: 'fingerprint' must be a string")
    colouring = m.get("colouring")
    if colouring is not None and (not isinstance(colouring, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in colouring.items())):
        raise TieMapError(f"{path}: 'colouring' must map node names to class numbers")
    params = m.get("parameters")
    before = params.get("before") if isinstance(params, dict) else None
    if params is not None and (not isinstance(params, dict) or before is not None and (
            not isinstance(before, dict) or not all(_is_count(v, 0) for v in before.values()))):
        raise TieMapError(f"{path}: 'parameters' must be an object whose 'before' record counts parameters")
    recovery = m.get("recovery")
    if recovery is not None and (not isinstance(recovery, list) or not all(isinstance(r, dict) for r in recovery)):
        raise TieMapError(f"{path}: 'recovery' must be a list of recovery records")


def _check_weights_record(w, path: Path) -> None:
    """``weights``: a plain file name inside the directory, its sha256, and a table of tensor names."""
    if not isinstance(w, dict) or not isinstance(w.get("tensors"), dict):
        raise TieMapError(f"{path}: tie map lacks 'weights.tensors'")
    name = w.get("file", WEIGHTS)
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name \
            or os.path.isabs(name):
        raise TieMapError(f"{path}: weights file {name!r} is not a plain file name inside the directory")
    digest = w.get("sha256")
    if not isinstance(digest, str) or len(digest) != 64 or not all(ch in "0123456789abcdef" for ch in digest):
        raise TieMapError(f"{path}: weights.sha256 is missing or not a sha256 digest: the weights cannot be checked")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in w["tensors"].items()):
        raise TieMapError(f"{path}: weights.tensors must map tensor names to stored tensor names")


def _base_model(model) -> nn.Module:
    """A fresh copy of the original architecture. Never taken from the tie map: loading data never imports or
    runs the code a file names (its ``spec`` is provenance only)."""
    if model is None:
        raise TieMapError("load_compressed needs the original network: pass model= (an nn.Module, a ModelSpec or "
                          "a spec ref you trust); the spec recorded in the tie map is never imported or run")
    if isinstance(model, str):
        from ..specs import load_spec
        return load_spec(model).model
    if hasattr(model, "model") and isinstance(getattr(model, "model"), nn.Module):   # a ModelSpec
        return copy.deepcopy(model.model)
    if isinstance(model, nn.Module):
        return copy.deepcopy(model)
    raise InputError(f"load_compressed: model must be a spec ref, a ModelSpec or an nn.Module, "
                     f"got {type(model).__name__}")


def load_compressed(outdir: str | os.PathLike, model=None) -> nn.Module:
    """Rebuild a compressed network from ``outdir``: the original architecture (``model``: an ``nn.Module``, a
    ``ModelSpec`` or a spec ref; required) is copied, re-tied from the tie map, and loaded with the saved values.
    Raises ``TieMapError`` on a corrupt or mismatching map, or without ``model``."""
    m = read_tie_map(outdir)
    base = _base_model(model)
    names = [n for c in m["classes"] for n in c["members"]]
    params = dict(base.named_parameters(remove_duplicate=False))
    for n in names:
        if n not in params:
            raise TieMapError(f"tie map names {n!r}, which this model does not have: wrong model for {outdir}")
    if m.get("fingerprint"):
        from .common import fingerprint
        node_order = list(m.get("colouring") or names)
        try:
            got = fingerprint(base, node_order)
        except KeyError as exc:
            raise TieMapError(f"tie map names {exc} which this model does not have") from None
        if got != m["fingerprint"]:
            raise TieMapError(f"{outdir} was made from other weights (fingerprint {m['fingerprint'][:12]}…, this "
                              f"model {got[:12]}…): pass the original model or spec")
    if m["mode"] == "tie":
        retie(base, [c["members"] for c in m["classes"]])
    else:
        for c in m["classes"]:
            skeleton_class(base, c)
    if m.get("corrections"):
        corr = m["corrections"]
        for n in corr["members"]:
            if n not in names:
                raise TieMapError(f"tie map corrects {n!r}, which no class names")
        try:
            add_corrections(base, corr["members"], corr["rank"], scale=corr["scale"], empty=True)
        except InputError as exc:
            raise TieMapError(f"{outdir}: {exc}") from None
    base.load_state_dict(_saved_state(base, m, outdir), strict=True)
    _check_ties(base, m)
    return base


def _weights_path(outdir: str | os.PathLike, m: dict) -> Path:
    """The weights file, checked: inside ``outdir`` (also after following links) and with the recorded sha256."""
    wfile = Path(outdir) / m["weights"].get("file", WEIGHTS)
    if not wfile.is_file():
        raise TieMapError(f"{outdir}: weights file {wfile.name} is missing")
    root = os.path.realpath(outdir)
    if os.path.commonpath([root, os.path.realpath(wfile)]) != root:
        raise TieMapError(f"{wfile}: the weights file links outside {outdir}; refusing to read it")
    if _sha256(wfile) != m["weights"]["sha256"]:
        raise TieMapError(f"{wfile}: contents do not match the sha256 in the tie map (corrupt or replaced)")
    return wfile


def _saved_state(base: nn.Module, m: dict, outdir) -> dict:
    """The state dict to load: every key's value from the stored tensor the alias table names, after checking
    that the table wires exactly the ties of the rebuilt model (keys that share storage read one stored tensor,
    named after one of them; no other key reads it)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    wfile = _weights_path(outdir, m)
    try:
        stored = load_file(str(wfile))
    except (SafetensorError, OSError, ValueError) as exc:
        raise TieMapError(f"{wfile}: cannot read weights ({exc})") from None
    aliases: dict[str, str] = m["weights"]["tensors"]
    state = base.state_dict()
    extra = set(aliases) - set(state)
    if extra:
        raise TieMapError(f"tie map lists tensor {sorted(extra)[0]!r}, which the rebuilt model does not have")
    _, expected = _dealias_names(state)
    groups: dict[str, list[str]] = {}
    for key, canon in expected.items():
        groups.setdefault(canon, []).append(key)
    for keys in groups.values():
        targets = {aliases.get(k) for k in keys}
        if None in targets:
            missing = next(k for k in keys if k not in aliases)
            raise TieMapError(f"{outdir}: no saved value for {missing!r}")
        if len(targets) != 1 or next(iter(targets)) not in keys:
            raise TieMapError(f"{outdir}: weights.tensors does not match the classes: {keys[0]!r} (sharing with "
                              f"{len(keys) - 1} other tensors) would read {sorted(targets)[0]!r}")
    full = {}
    for key, t in state.items():
        src = aliases[key]
        if src not in stored:
            raise TieMapError(f"{outdir}: no saved value for {key!r}")
        if tuple(stored[src].shape) != tuple(t.shape):
            raise TieMapError(f"{outdir}: saved {src!r} has shape {list(stored[src].shape)}, the model needs "
                              f"{list(t.shape)}")
        full[key] = stored[src]
    return full


def _check_ties(model, m: dict) -> None:
    for c in m["classes"]:
        ptrs = set()
        for name in c["members"]:
            module, attr = owner(model, name)
            t = getattr(module, module.shared) if isinstance(module, SharedBasisLinear) else getattr(module, attr)
            ptrs.add(t.data_ptr())
        if len(ptrs) != 1:
            raise TieMapError(f"class {c['members']} did not end up sharing one tensor")
