"""The package version and the versions every written file records (torch-free: the libraries are named, and
imported only when a caller asks for them)."""
from __future__ import annotations

import importlib

__version__ = "0.1.0"


def versions(*libraries: str) -> dict:
    """``{"geoshare-opt", "numpy", "python"}`` plus ``library.__version__`` of every named library (e.g.
    ``versions("torch", "safetensors")``), for the provenance block of instances, tie maps and reports."""
    import platform

    import numpy

    out = {"geoshare-opt": __version__, "numpy": numpy.__version__, "python": platform.python_version()}
    for name in libraries:
        out[name] = importlib.import_module(name).__version__
    return out
