"""The ``geoshare-opt`` command line. stdout carries only the machine-readable payload; people read stderr.

Each command group lives in its own module and registers itself on ``cli``; heavy libraries (torch, solvers) are
imported inside the commands so that ``geoshare-opt solve`` starts fast.
"""
from __future__ import annotations

import importlib

from .app import cli, main  # noqa: F401

# command modules (each adds its commands to ``cli`` on import)
for _mod in ("solve", "inspect", "analyze", "backend", "recover", "sweep", "models"):
    try:
        importlib.import_module(f".{_mod}", __name__)
    except ModuleNotFoundError as exc:  # a command module not written yet
        if exc.name != f"{__name__}.{_mod}":
            raise
