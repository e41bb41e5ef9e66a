"""What a backend is: build the solver's data, run it, map the answer back to labels in node order.

A backend never computes the reported objective and never times itself: ``geoshare_opt.api.solve`` does both,
recomputing the objective with the checker. A backend reports improving incumbents to the ``SolveContext`` so
that a time limit or Ctrl-C still returns the best assignment found.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np

from ..checker import evaluate
from ..instance import Instance
from ..options import SolveOptions
from ..provenance import __version__
from ..result import Termination


@dataclass
class Outcome:
    """What a backend hands back. ``labels`` in node order, or None; ``bound`` a proven lower bound or None."""
    termination: Termination
    labels: np.ndarray | None = None
    bound: float | None = None
    message: str = ""
    stats: dict[str, Any] = field(default_factory=dict)


class SolveContext:
    """Deadline, incumbent store and logging shared by the driver and a running backend (one per solve call)."""

    def __init__(self, instance: Instance, options: SolveOptions, log: Callable[[str], None] | None = None,
                 progress: Callable[[dict], None] | None = None):
        self.instance = instance
        self.options = options
        self.start = time.monotonic()
        self.deadline = None if options.time_limit is None else self.start + options.time_limit
        self._log = log
        self._progress = progress
        self.best_labels: np.ndarray | None = None
        self.best_objective: float = float("inf")

    # time -----------------------------------------------------------------
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def time_left(self) -> float | None:
        """Seconds left before the deadline (never negative), or None without a limit."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    # incumbents -----------------------------------------------------------
    def offer(self, labels: np.ndarray) -> bool:
        """Record ``labels`` if feasible (by the checker) and better than the incumbent. Returns True if kept.
        Call it on improvements only: it costs one pass over the edges."""
        labels = np.asarray(labels, dtype=np.int64)
        ev = evaluate(self.instance, labels)
        if not ev.feasible:
            return False
        tol = 1e-12 * max(1.0, abs(ev.objective))
        if self.best_labels is not None and ev.objective >= self.best_objective - tol:
            return False
        self.best_labels, self.best_objective = labels.copy(), ev.objective
        if self._progress is not None:
            self._progress({"event": "incumbent", "objective": ev.objective, "elapsed": self.elapsed()})
        return True

    # messages -------------------------------------------------------------
    def log(self, msg: str) -> None:
        if self._log is not None and self.options.verbose:
            self._log(msg)

    def progress(self, info: dict) -> None:
        if self._progress is not None:
            self._progress(info)


class Backend(ABC):
    """One solver. Capabilities are class attributes; availability is checked without importing the library."""

    name: ClassVar[str]
    summary: ClassVar[str]
    exact: ClassVar[bool]                # proves optimality / infeasibility when it finishes
    gives_bound: ClassVar[bool]          # reports a proven lower bound
    determinism: ClassVar[str]           # "deterministic" | "seeded" | "seeded with threads=1"
    modules: ClassVar[tuple[str, ...]] = ()        # import names that must be installed
    distributions: ClassVar[tuple[str, ...]] = ()  # pip names whose versions identify the backend

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        for mod in cls.modules:
            if importlib.util.find_spec(mod) is None:
                return False, f"python package {mod!r} is not installed"
        return True, ""

    @classmethod
    def version(cls) -> str:
        parts = []
        for dist in cls.distributions:
            try:
                parts.append(f"{dist} {importlib.metadata.version(dist)}")
            except importlib.metadata.PackageNotFoundError:
                parts.append(f"{dist} (not installed)")
        return "; ".join(parts) if parts else f"geoshare-opt {__version__}"

    @abstractmethod
    def run(self, instance: Instance, options: SolveOptions, ctx: SolveContext) -> Outcome:
        """Solve. Must honour ``ctx.deadline`` and offer improving incumbents with ``ctx.offer``."""
