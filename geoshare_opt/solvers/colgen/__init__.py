"""Set partitioning by column generation and branch and price (formulations/colgen.md).

``ColgenBackend`` (registry name ``colgen``) and its ``model_solver`` for the exact decomposition and ``sweep``;
``TypeEngine`` is the per-type engine itself (one column pool and master LP serving every class budget).
"""
from .backend import ColgenBackend, model_solver
from .engine import PointResult, Settings, TypeEngine

__all__ = ["ColgenBackend", "model_solver", "TypeEngine", "Settings", "PointResult"]
