"""Offline English prose for calibration and evaluation: the frozen standard-library snapshot.

``load_paragraphs("calib" | "heldout" | "all")`` returns paragraphs (one string each) from
``stdlib_prose.txt.gz``, built by ``python -m geoshare_opt.data.build_prose``. The split is a fixed function of each
paragraph's text (sha256 of its UTF-8 bytes, first 8 bytes modulo 100 below 80 = calibration), so it is the same on
every machine and stable when paragraphs are added or removed.
"""
from __future__ import annotations

import gzip
import hashlib
from functools import lru_cache
from pathlib import Path

SNAPSHOT = Path(__file__).resolve().parent / "stdlib_prose.txt.gz"
CALIB_PERCENT = 80
SPLITS = ("calib", "heldout", "all")


def split_of(paragraph: str) -> str:
    bucket = int.from_bytes(hashlib.sha256(paragraph.encode("utf-8")).digest()[:8], "big") % 100
    return "calib" if bucket < CALIB_PERCENT else "heldout"


@lru_cache(maxsize=1)
def _snapshot_lines() -> tuple[str, ...]:  # read-only cache of an immutable packaged file
    with gzip.open(SNAPSHOT, "rt", encoding="utf-8") as fh:
        return tuple(line.rstrip("\n") for line in fh if line.strip())


def load_paragraphs(split: str = "calib") -> list[str]:
    """Paragraphs of the snapshot in its fixed order, filtered to one split."""
    if split not in SPLITS:
        from ..errors import InputError
        raise InputError(f"prose split {split!r}: use one of {', '.join(SPLITS)}")
    lines = _snapshot_lines()
    if split == "all":
        return list(lines)
    return [p for p in lines if split_of(p) == split]


@lru_cache(maxsize=1)
def snapshot_sha256() -> str:
    return hashlib.sha256(SNAPSHOT.read_bytes()).hexdigest()
