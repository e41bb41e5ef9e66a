"""geoshare-opt: cross-layer parameter sharing chosen by optimisation.

The solver core (this package's top level, ``solvers``, ``cli`` for ``solve``) never imports torch. The curvature
front end (``geoshare_opt.frontend``) and the back end (``geoshare_opt.materialize``) do, and are loaded only on use.
Every name below is imported on first use, so that the command line can install its signal handlers before any
heavy import (a Ctrl-C during start-up then ends in one line, not a traceback).
"""

# public name -> the module that defines it
_EXPORTS = {
    "__version__": "provenance",
    "GeoshareError": "errors", "InputError": "errors", "InstanceError": "errors", "ResultError": "errors",
    "SolverError": "errors", "SolverUnavailableError": "errors",
    "Budget": "instance", "Edge": "instance", "Instance": "instance", "Node": "instance",
    "Result": "result", "Status": "result", "Termination": "result",
    "evaluate": "checker", "solve": "api", "available_solvers": "solvers", "register": "solvers",
    "sweep": "budget_sweep", "load_compressed": "materialize", "recover": "materialize",
    "ClassCostOracle": "oracle", "GraphObjective": "oracle", "DiagonalClassCost": "oracle",
}
_SUBPACKAGES = ("frontend", "materialize", "specs")

__all__ = [
    "__version__", "solve", "sweep", "evaluate", "Instance", "Node", "Edge", "Budget", "Result", "Status", "Termination",
    "available_solvers", "register", "GeoshareError", "InputError", "InstanceError", "ResultError", "SolverError",
    "SolverUnavailableError", "load_compressed", "recover", "ClassCostOracle", "GraphObjective", "DiagonalClassCost",
]


def __getattr__(name):
    import importlib
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value     # later look-ups skip this function
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'geoshare_opt' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBPACKAGES))
