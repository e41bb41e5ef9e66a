"""The curvature sidecar beside an instance (``<stem>.curvature.safetensors``) and the model fingerprint.

Tensors: ``diag/<param>`` (element-wise curvature, weight-shaped, float32, non-negative; always), ``weight/<param>``
(the trained weight itself, float32; always since the true class cost was added, absent from older sidecars),
``in_cov/<param>`` (``E[x xᵀ]`` of the layer input; basis mode and kfac) and ``out_cov/<param>`` (output-gradient
covariance; kfac).
The instance's ``meta.curvature`` names the file and its sha256; ``load_curvature`` checks both. Instance and sidecar
are written to temporary names and renamed only when both are complete, so a failure leaves neither behind.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import torch

from ..atomic import follow_umask
from ..errors import InputError
from ..instance import Instance
from ..sidecar_ref import file_sha256, sidecar_ref, verified_sidecar

SUFFIX = ".curvature.safetensors"


def fingerprint(model: torch.nn.Module, node_ids: Iterable[str]) -> str:
    """sha256 over (name, shape, dtype, raw bytes) of every node tensor, in the given order."""
    params = dict(model.named_parameters())
    digest = hashlib.sha256()
    for name in node_ids:
        if name not in params:
            raise InputError(f"fingerprint: the model has no parameter {name!r}")
        t = params[name].detach()
        digest.update(name.encode("utf-8"))
        digest.update(repr(tuple(t.shape)).encode())
        digest.update(str(t.dtype).encode())
        digest.update(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def sidecar_path(instance_path: str | os.PathLike) -> Path:
    p = Path(instance_path)
    return p.with_name(p.stem + SUFFIX)


def write_with_sidecar(instance_path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                       build: Callable[[str, str], Instance]) -> Instance:
    """Write the sidecar and the instance ``build(sidecar_basename, sidecar_sha256)`` atomically, as a pair."""
    from safetensors.torch import save_file

    inst_path = Path(instance_path)
    directory = inst_path.parent if str(inst_path.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(f"output directory does not exist: {directory}")
    side_path = sidecar_path(inst_path)
    temps: list[str] = []
    renamed: list[Path] = []
    try:
        fd, tmp_side = tempfile.mkstemp(prefix=f".{side_path.name}.", suffix=".tmp", dir=directory)
        os.close(fd)
        temps.append(tmp_side)
        save_file({k: v.detach().to("cpu", torch.float32).contiguous() for k, v in tensors.items()}, tmp_side,
                  metadata={"format": "geoshare-curvature", "version": "1"})
        inst = build(side_path.name, file_sha256(tmp_side))
        fd, tmp_inst = tempfile.mkstemp(prefix=f".{inst_path.name}.", suffix=".tmp", dir=directory)
        temps.append(tmp_inst)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(inst.dumps() + "\n")
        for t in temps:
            follow_umask(t)
        os.replace(tmp_side, side_path)
        renamed.append(side_path)
        os.replace(tmp_inst, inst_path)
        return inst
    except BaseException:
        for t in temps:
            try:
                os.unlink(t)
            except FileNotFoundError:
                pass
        for p in renamed:  # the sidecar without its instance would be an orphan
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        raise


def load_curvature(instance_path_or_instance, base_dir: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """The sidecar's tensors for an instance written by ``analyze``, after checking its sha256.

    ``instance_path_or_instance``: a path to the instance JSON (the sidecar is looked up beside it unless
    ``base_dir`` is given) or an ``Instance`` (then ``base_dir`` defaults to the current directory)."""
    from safetensors.torch import load_file

    if isinstance(instance_path_or_instance, Instance):
        inst = instance_path_or_instance
        base = Path(base_dir) if base_dir is not None else Path(".")
    else:
        inst = Instance.load(instance_path_or_instance)
        base = Path(base_dir) if base_dir is not None else Path(instance_path_or_instance).parent
    path = verified_sidecar(inst, base / sidecar_ref(inst)["file"])
    try:
        return load_file(str(path))
    except Exception as exc:
        raise InputError(f"curvature sidecar {path} cannot be read: {exc}") from None
