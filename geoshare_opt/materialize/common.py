"""What every sharing mode needs: the checks that a result, an instance and a model belong together, the classes
of a colouring, and access to a parameter by its fully-qualified name."""
from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from ..errors import InputError
from ..frontend.sidecar import fingerprint
from ..instance import Instance
from ..result import Result


def as_result(result: Any) -> Result:
    if isinstance(result, Result):
        return result
    if isinstance(result, Mapping):
        return Result.from_dict(dict(result))
    if isinstance(result, (str, os.PathLike)):
        return Result.load(result)
    raise InputError(f"expected a Result, a result dict or a result file, got {type(result).__name__}")


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
