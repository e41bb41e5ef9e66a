"""Reading files a user (or an attacker) hands us: a capped number of bytes, and JSON whose numbers stay in range.

Every reader of an instance, result, tie map or graph file goes through here, so the limits are the same
everywhere and documented once (docs/limits.md):

- at most ``GEOSHARE_MAX_INPUT_BYTES`` bytes are read from one file (default 1 GiB); an endless stream
  (``/dev/zero``) or a larger file is refused, and a file that starts with NUL bytes is refused at once;
- JSON integers have at most ``MAX_JSON_INT_DIGITS`` digits (Python refuses more than 4300 with a ValueError);
  ``NaN``/``Infinity`` and floats that overflow (``1e999``) are refused;
- a key repeated in one JSON object is refused (readers differ on which value counts).
"""
from __future__ import annotations

import json
import math
import os

from .errors import InputError

DEFAULT_MAX_INPUT_BYTES = 1 << 30
#: a larger GEOSHARE_MAX_INPUT_BYTES means no limit of ours (the operating system's read limit stays)
MAX_READ_BYTES = 1 << 62
MAX_JSON_INT_DIGITS = 100
_HEAD = 1 << 16
_CHUNK = 1 << 23


def max_input_bytes() -> int:
    """The byte limit of one input file: ``GEOSHARE_MAX_INPUT_BYTES`` when set to a positive integer."""
    raw = os.environ.get("GEOSHARE_MAX_INPUT_BYTES", "").strip()
    if not raw:
        return DEFAULT_MAX_INPUT_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(f"GEOSHARE_MAX_INPUT_BYTES must be a positive integer, got {raw[:40]!r}")
    return min(value, MAX_READ_BYTES)


def read_input_bytes(path: str | os.PathLike, what: str, error: type[InputError] = InputError) -> bytes:
    """The bytes of ``path`` (at most ``max_input_bytes()``); ``error`` with one line naming the file otherwise."""
    limit = max_input_bytes()
    try:
        with open(path, "rb") as fh:
            head = fh.read(min(limit + 1, _HEAD))
            if head and not head.strip(b"\x00"):
                raise error(f"{path}: binary data (NUL bytes), not text ({what} file expected)")
            rest = _read_up_to(fh, limit + 1 - len(head)) if len(head) <= limit else b""
    except FileNotFoundError:
        raise error(f"{what} file not found: {path}") from None
    except IsADirectoryError:
        raise error(f"{what} path is a directory, not a file: {path}") from None
    except MemoryError:
        raise error(f"{path}: not enough memory to read it") from None
    except OSError as exc:
        raise error(f"cannot read {what} file {path}: {exc.strerror or exc}") from None
    if len(head) + len(rest) > limit:
        raise error(f"{path}: larger than {limit} bytes, the limit for one input file "
                    "(set GEOSHARE_MAX_INPUT_BYTES to allow more)")
    return head + rest


def _read_up_to(fh, n: int) -> bytes:
    """At most ``n`` bytes, read in chunks: ``fh.read(n)`` allocates ``n`` bytes at once, whatever the file holds."""
    chunks, left = [], n
    while left > 0:
        chunk = fh.read(min(left, _CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class _Refused(ValueError):
    """A JSON document this package refuses although ``json`` would read it."""


def _reject_constant(name: str):
    raise _Refused(f"non-finite number {name} in JSON")


def _finite_float(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):  # e.g. 1e400 overflows to inf
        raise _Refused(f"non-finite number {text[:40]} in JSON")
    return x


def _bounded_int(text: str) -> int:
    digits = len(text) - (text[0] == "-")
    if digits > MAX_JSON_INT_DIGITS:
        raise _Refused(f"JSON integer with {digits} digits (at most {MAX_JSON_INT_DIGITS} are accepted)")
    return int(text)


def _unique_keys(pairs: list) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):        # JSON readers disagree on which value wins: refuse rather than guess
        seen: set = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _Refused(f"key {key[:80]!r} appears twice in one JSON object")
    return obj


def loads_json(text: str, what: str, error: type[InputError] = InputError):
    """``json.loads`` that raises ``error("<what>: ...")`` in one line for malformed JSON, deep nesting, numbers
    out of range and a key repeated in one object (see the module docstring)."""
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int,
                          object_pairs_hook=_unique_keys)
    except _Refused as exc:
        raise error(f"{what}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{what}: malformed JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise error(f"{what}: JSON nested too deeply") from None
