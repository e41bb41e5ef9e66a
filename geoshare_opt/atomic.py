"""Atomic file writes: a reader never sees a half-written file, and a failed write leaves nothing behind.

Temporary files and directories (``mkstemp``: 0600, ``mkdtemp``: 0700) are given the mode the umask gives any new
file (0644 / 0755 under the usual 022) before they are renamed into place: every writer calls ``follow_umask``.

An output path that is a symbolic link is written through: the file it points to is replaced (atomically, beside
it) and the link stays. An output that is not a regular file (``/dev/stdout``, a pipe made by ``mkfifo``, a
terminal) is a stream: it is written into, since renaming a file over it would only replace the name (and a reader
waiting on the pipe would wait forever). ``output_target`` and ``place`` carry these rules for every writer."""
from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path


def output_target(path: str | os.PathLike) -> tuple[Path, bool]:
    """``(where to write, is_stream)`` for an output ``path``: a link's target, or ``path`` itself."""
    path = Path(path)
    try:
        is_stream = not stat.S_ISREG(os.stat(path).st_mode) and not path.is_dir()
    except OSError:          # not there yet (or a dangling link, whose target is then created)
        is_stream = False
    if is_stream:
        return path, True
    return (Path(os.path.realpath(path)) if path.is_symlink() else path), False


def temp_dir_for(path: str | os.PathLike) -> str | None:
    """Where a temporary file for ``path`` goes: beside its target (so that the rename is atomic), or the default
    temporary directory for a stream."""
    target, is_stream = output_target(path)
    if is_stream:
        return None
    return str(target.parent) if str(target.parent) else "."


def place(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Put the finished temporary file ``tmp`` (made in ``temp_dir_for(path)``) at ``path``: renamed over the target
    with the umask's mode, or copied into a stream and removed."""
    target, is_stream = output_target(path)
    if is_stream:
        with open(tmp, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.unlink(tmp)
        return
    follow_umask(tmp)
    os.replace(tmp, target)


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=temp_dir_for(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        place(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json_atomic(path: str | os.PathLike, payload: dict, indent: int | None = 1) -> None:
    write_text_atomic(path, json.dumps(payload, indent=indent, allow_nan=False) + "\n")
