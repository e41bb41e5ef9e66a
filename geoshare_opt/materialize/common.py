"""What every sharing mode needs: the checks that a result, an instance and a model belong together, the classes
of a colouring, and access to a parameter by its fully-qualified name."""
from __future__ import annotations

import hashlib
import os
from typing import Any, Mapping

import numpy as np

from ..errors import InputError
from ..instance import Instance
from ..result import Result


def fingerprint(model, node_ids) -> str:
    """sha256 over (name, shape, dtype, raw bytes) of every node tensor in node order: the front end's
    ``geoshare_opt.frontend.fingerprint`` when it is installed (the definition the instance was made with),
    else the same definition here."""
    try:
        from ..frontend import fingerprint as frontend_fingerprint
    except ImportError:
        frontend_fingerprint = None
    if frontend_fingerprint is not None:
        return frontend_fingerprint(model, list(node_ids))
    return _fingerprint(model, node_ids)


def _fingerprint(model, node_ids) -> str:
    import torch
    params = dict(model.named_parameters(remove_duplicate=False))
    h = hashlib.sha256()
    for name in node_ids:
        t = params[name].detach().to("cpu").contiguous()
        h.update(name.encode("utf-8"))
        h.update(repr(tuple(t.shape)).encode("utf-8"))
        h.update(str(t.dtype).encode("utf-8"))
        h.update(t.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return h.hexdigest()


def as_result(result: Any) -> Result:
    if isinstance(result, Result):
        return result
    if isinstance(result, Mapping):
        return Result.from_dict(dict(result))
    if isinstance(result, (str, os.PathLike)):
        return Result.load(result)
    raise InputError(f"expected a Result, a result dict or a result file, got {type(result).__name__}")


def check_result(instance: Instance, result: Result) -> np.ndarray:
    """Labels (node order) of a feasible result that answers ``instance``; InputError otherwise."""
    from ..api import check_result as core_check
    from ..checker import labels_from_assignment
    if result.instance_sha256 != instance.sha256:
        raise InputError(f"the result answers instance {result.instance_sha256[:12]}…, not this one "
                         f"({instance.sha256[:12]}…): pass the instance it was solved from")
    if not result.feasible:
        raise InputError(f"the result holds no feasible assignment (termination {result.termination!r}) — "
                         "nothing to apply")
    problems = core_check(instance, result)
    if problems:
        raise InputError(f"the result does not fit its instance: {problems[0]}")
    return labels_from_assignment(instance, result.assignment)


def check_model(model, instance: Instance) -> None:
    """Every node is a 2-D parameter of the model with the recorded shape, and the weights are the ones the
    instance was made from (fingerprint in ``meta.model``, when recorded)."""
    params = dict(model.named_parameters(remove_duplicate=False))
    for node in instance.nodes:
        p = params.get(node.id)
        if p is None:
            raise InputError(f"the model has no parameter {node.id!r} named by the instance: wrong model for this "
                             "instance?")
        if p.dim() != 2:
            raise InputError(f"instance node {node.id!r} is a {p.dim()}-D tensor; only 2-D weights can be shared")
        shape = node.meta.get("shape") if isinstance(node.meta, Mapping) else None
        if shape is not None and list(shape) != list(p.shape):
            raise InputError(f"parameter {node.id!r} has shape {list(p.shape)} but the instance records {shape}")
    recorded = (instance.meta.get("model") or {}).get("fingerprint") if isinstance(instance.meta, Mapping) else None
    if recorded:
        got = fingerprint(model, [n.id for n in instance.nodes])
        if got != recorded:
            raise InputError(f"the model's weights (fingerprint {got[:12]}…) are not the ones the instance was made "
                             f"from ({recorded[:12]}…): use the same spec and weights as analyze")


def classes_of(instance: Instance, labels: np.ndarray) -> list[list[str]]:
    """Node ids of every class, in order of first appearance."""
    groups: dict[int, list[str]] = {}
    for node, c in zip(instance.nodes, labels):
        groups.setdefault(int(c), []).append(node.id)
    return list(groups.values())


def owner(model, name: str):
    """(module, attribute) holding the parameter called ``name``."""
    mod_name, _, attr = name.rpartition(".")
    module = model.get_submodule(mod_name) if mod_name else model
    return module, attr


def read_curvature(instance_path: str | os.PathLike) -> dict:
    """The curvature sidecar of an instance file: ``geoshare_opt.frontend.load_curvature`` (hash-checked), or the
    same reading of ``meta.curvature`` here when the front end is not installed."""
    try:
        from ..frontend import load_curvature
    except ImportError:
        load_curvature = None
    if load_curvature is not None:
        return load_curvature(instance_path)
    from pathlib import Path
    inst = Instance.load(instance_path)
    info = inst.meta.get("curvature") if isinstance(inst.meta, Mapping) else None
    if not isinstance(info, Mapping) or not info.get("file"):
        raise InputError(f"{instance_path}: the instance records no curvature sidecar")
    path = Path(instance_path).parent / info["file"]
    if not path.is_file():
        raise InputError(f"curvature sidecar {path} is missing")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if info.get("sha256") and digest != info["sha256"]:
        raise InputError(f"curvature sidecar {path} does not match the sha256 recorded in the instance")
    from safetensors.torch import load_file
    return load_file(str(path))
