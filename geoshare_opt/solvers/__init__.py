"""The registry of backends: one name -> one class, imported only when asked for.

Third-party backends register through the ``geoshare_opt.backends`` entry-point group (``name = "pkg.mod:Class"``)
or at run time with ``register``.
"""
from __future__ import annotations

import importlib
import importlib.metadata
from typing import TYPE_CHECKING

from ..errors import SolverUnavailableError

if TYPE_CHECKING:
    from .base import Backend

_BUILTIN = {
    "auto": "geoshare_opt.solvers.auto:AutoBackend",
    "cpsat": "geoshare_opt.solvers.cpsat:CpSatBackend",
    "highs": "geoshare_opt.solvers.highs:HighsBackend",
    "colgen": "geoshare_opt.solvers.colgen:ColgenBackend",
    "pulp": "geoshare_opt.solvers.pulp_milp:PulpBackend",
    "dsatur": "geoshare_opt.solvers.dsatur:DsaturBackend",
    "anneal": "geoshare_opt.solvers.anneal:AnnealBackend",
    "classcost": "geoshare_opt.solvers.classcost_search:ClassCostBackend",
}


class Registry:
    """Name -> backend class path. Instances are independent (no global mutable state is needed to solve)."""

    def __init__(self, entries: dict[str, str] | None = None, entry_points: bool = True):
        self._entries: dict[str, object] = dict(_BUILTIN if entries is None else entries)
        if entry_points:
            try:
                for ep in importlib.metadata.entry_points(group="geoshare_opt.backends"):
                    self._entries.setdefault(ep.name, ep.value)
            except Exception:  # a broken third-party entry point must not break the core
                pass

    def names(self) -> list[str]:
        return list(self._entries)

    def register(self, name: str, backend) -> None:
        """Add a backend class (or "module:Class" path) under ``name``."""
        self._entries[name] = backend

    def get(self, name: str) -> type["Backend"]:
        if name not in self._entries:
            raise SolverUnavailableError(f"unknown solver {name!r}; choose one of: {', '.join(self.names())}")
        target = self._entries[name]
        if isinstance(target, str):
            mod, _, cls = target.partition(":")
            try:
                target = getattr(importlib.import_module(mod), cls)
            except (ImportError, AttributeError) as exc:
                raise SolverUnavailableError(f"solver {name!r} cannot be loaded: {exc}") from None
        ok, why = target.availability()
        if not ok:
            raise SolverUnavailableError(f"solver {name!r} is not available: {why}")
        return target

    def describe(self) -> list[dict]:
        """One row per backend: availability (with the reason when missing), version and capabilities."""
        rows = []
        for name, target in self._entries.items():
            row = {"name": name, "available": False, "reason": "", "version": "", "exact": None,
                   "gives_bound": None, "determinism": "", "summary": ""}
            try:
                if isinstance(target, str):
                    mod, _, cls = target.partition(":")
                    target = getattr(importlib.import_module(mod), cls)
                ok, why = target.availability()
                row.update(available=ok, reason=why, exact=target.exact, gives_bound=target.gives_bound,
                           determinism=target.determinism, summary=target.summary,
                           version=target.version() if ok else "")
            except Exception as exc:  # report, never crash a listing
                row["reason"] = f"cannot be loaded: {exc}"
            rows.append(row)
        return rows


default_registry = Registry()


def get_backend(name: str) -> type["Backend"]:
    return default_registry.get(name)


def available_solvers() -> list[dict]:
    return default_registry.describe()


def register(name: str, backend) -> None:
    default_registry.register(name, backend)
