"""JSON Schemas (draft 2020-12) of the file formats, shipped as package data for other tools.

``load_schema("instance")`` / ``load_schema("result")`` return the parsed schema. ``geoshare_opt.instance`` and
``geoshare_opt.result`` stay the reference validators: they also check what a schema cannot express.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

FILES = {"instance": "instance-v1.schema.json", "result": "result-v1.schema.json"}


@lru_cache(maxsize=None)
def _text(which: str) -> str:
    return resources.files(__name__).joinpath(FILES[which]).read_text(encoding="utf-8")


def load_schema(which: str) -> dict:
    """The schema of ``"instance"`` or ``"result"`` (a fresh dict each call)."""
    if which not in FILES:
        raise KeyError(f"no schema named {which!r}; choose one of {sorted(FILES)}")
    return json.loads(_text(which))
