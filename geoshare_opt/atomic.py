"""Atomic file writes: a reader never sees a half-written file, and a failed write leaves nothing behind.

Temporary files and directories (``mkstemp``: 0600, ``mkdtemp``: 0700) are given the mode the umask gives any new
file (0644 / 0755 under the usual 022) before they are renamed into place: every writer calls ``follow_umask``."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def follow_umask(path: str | os.PathLike) -> None:
    """Give ``path`` (made by ``mkstemp``/``mkdtemp``) the mode a plain ``open``/``mkdir`` would have given it."""
    base = 0o777 if os.path.isdir(path) else 0o666
    os.chmod(path, base & ~current_umask())


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        follow_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json_atomic(path: str | os.PathLike, payload: dict, indent: int | None = 1) -> None:
    write_text_atomic(path, json.dumps(payload, indent=indent, allow_nan=False) + "\n")
