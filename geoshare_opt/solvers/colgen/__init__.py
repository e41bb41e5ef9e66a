"""Set partitioning by column generation and branch and price (formulations/colgen.md).

``ColgenBackend`` (registry name ``colgen``) and its ``model_solver`` for the exact decomposition and ``sweep``;
``TypeEngine`` is the per-type engine itself (one column pool and master LP serving every class budget);
``class_cost_curves`` runs it under any class-cost oracle (``geoshare_opt.oracle``) for every budget of every type,
and ``combine_curves`` picks the class counts per type under a budget.
"""
from .backend import ColgenBackend, model_solver
from .oracle_curves import class_cost_curves, combine_curves, type_engine
from .engine import PointResult, Settings, TypeEngine

__all__ = ["ColgenBackend", "model_solver", "TypeEngine", "Settings", "PointResult", "class_cost_curves",
           "combine_curves", "type_engine"]
