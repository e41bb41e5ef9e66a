"""Where an instance's curvature sidecar lies and whether it is the one the instance was written with (torch-free).

``analyze`` records ``meta.curvature = {"file", "sha256"}``; the torch loader (``frontend.sidecar.load_curvature``)
and the torch-free true class cost (``classcost``) both find and check the file through these functions.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .errors import InputError
from .instance import Instance


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar_ref(instance: Instance) -> dict:
    """``meta.curvature`` of an instance written by ``analyze -o``; InputError when absent or malformed."""
    ref = instance.meta.get("curvature") if isinstance(instance.meta, dict) else None
    if not isinstance(ref, dict) or not isinstance(ref.get("file"), str) or not isinstance(ref.get("sha256"), str):
        raise InputError(f"instance {instance.name!r} names no curvature sidecar (meta.curvature.file/sha256); "
                         "write one with `geoshare-opt analyze -o`")
    name = ref["file"]
    if not name or name in (".", "..") or "/" in name or "\\" in name or os.path.isabs(name):
        # analyze writes the sidecar beside its instance: a path would let an instance read files elsewhere
        raise InputError(f"instance {instance.name!r}: curvature sidecar {name[:200]!r} is not a plain file name "
                         "beside the instance")
    return ref


def sidecar_for(instance: Instance, instance_path: str | os.PathLike | None = None) -> Path:
    """``meta.curvature.file`` beside the instance file (relative to the current directory without a path)."""
    base = Path(instance_path).parent if instance_path is not None else Path(".")
    return base / sidecar_ref(instance)["file"]


def verified_sidecar(instance: Instance, path: str | os.PathLike) -> Path:
    """``path`` after checking it exists and has the sha256 the instance records."""
    ref = sidecar_ref(instance)
    path = Path(path)
    if not path.is_file():
        raise InputError(f"curvature sidecar not found: {path}")
    actual = file_sha256(path)
    if actual != ref["sha256"]:
        raise InputError(f"curvature sidecar {path} does not match its instance (sha256 {actual[:12]}… ≠ "
                         f"{ref['sha256'][:12]}…)")
    return path
