"""geoshare-opt: cross-layer parameter sharing chosen by optimisation.

The solver core (this package's top level, ``solvers``, ``cli`` for ``solve``) never imports torch. The curvature
front end (``geoshare_opt.frontend``) and the back end (``geoshare_opt.materialize``) do, and are loaded only on use.
"""
from .provenance import __version__
from .errors import (GeoshareError, InputError, InstanceError, ResultError, SolverError,  # noqa: E402
                     SolverUnavailableError)
from .instance import Budget, Edge, Instance, Node  # noqa: E402
from .result import Result, Status, Termination  # noqa: E402
from .checker import evaluate  # noqa: E402
from .api import solve  # noqa: E402
from .solvers import available_solvers, register  # noqa: E402
from .budget_sweep import sweep  # noqa: E402

__all__ = [
    "__version__", "solve", "sweep", "evaluate", "Instance", "Node", "Edge", "Budget", "Result", "Status", "Termination",
    "available_solvers", "register", "GeoshareError", "InputError", "InstanceError", "ResultError", "SolverError",
    "SolverUnavailableError", "load_compressed", "recover",
]


def __getattr__(name):
    # torch-dependent entry points, imported only when used
    if name == "load_compressed":
        from .materialize import load_compressed
        return load_compressed
    if name == "recover":
        from .materialize import recover
        return recover
    if name in ("frontend", "materialize", "specs"):
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'geoshare_opt' has no attribute {name!r}")
