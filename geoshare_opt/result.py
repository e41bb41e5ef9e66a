"""The result (format ``geoshare-result``, version 1): why the solver stopped, kept apart from what it holds.

``termination`` says why the run ended; ``status`` says whether it holds a feasible assignment. ``objective`` is
always recomputed by ``checker.evaluate`` from ``assignment``. The gap definition (formulations/README.md):

    gap = 0                                         if |objective - bound| <= 1e-9 * max(1, |objective|)
    gap = (objective - bound) / max(|objective|, |bound|)   otherwise

It lies in [0, 2], is defined for objective 0 and for negative objectives, and is null without a bound or incumbent.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from .errors import ResultError

FORMAT = "geoshare-result"
VERSION = 1


class Termination(str, Enum):
    OPTIMAL = "optimal"            # optimality proven (within numerical tolerance)
    INFEASIBLE = "infeasible"      # infeasibility proven
    TIME_LIMIT = "time_limit"      # stopped by the time limit
    INTERRUPTED = "interrupted"    # stopped by Ctrl-C / KeyboardInterrupt
    COMPLETED = "completed"        # a heuristic ran to its natural end (no proof either way)
    ITERATION_LIMIT = "iteration_limit"
    ERROR = "error"


class Status(str, Enum):
    FEASIBLE = "feasible"
    NONE = "none"


def compute_gap(objective: float | None, bound: float | None) -> float | None:
    if objective is None or bound is None:
        return None
    diff = objective - bound
    if abs(diff) <= 1e-9 * max(1.0, abs(objective)):
        return 0.0
    denom = max(abs(objective), abs(bound))
    return max(diff, 0.0) / denom


@dataclass
class Result:
    instance_sha256: str
    solver: str
    solver_version: str
    termination: str
    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    wall_time_s: float
    assignment: dict[str, int] | None
    options: dict[str, Any] = field(default_factory=dict)
    instance_name: str = ""
    n_classes: int | None = None
    classes_per_type: dict[str, int] | None = None
    stored_params: int | None = None
    objective_per_type: dict[str, float] | None = None
    message: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    instance_path: str = ""   # where the instance was read from, when it came from a file (lets validate find it)
    true_cost: dict[str, Any] | None = None   # {"total", "per_type"}: classcost.annotate_true_cost; written when set
    format: str = FORMAT
    version: int = VERSION

    @property
    def feasible(self) -> bool:
        return self.status == Status.FEASIBLE.value

    @property
    def optimal(self) -> bool:
        return self.termination == Termination.OPTIMAL.value and self.feasible

    def to_dict(self) -> dict:
        d = asdict(self)
        order = ["format", "version", "instance_sha256", "instance_name", "solver", "solver_version", "termination",
                 "status", "objective", "bound", "gap", "wall_time_s", "n_classes", "classes_per_type",
                 "stored_params", "objective_per_type", "assignment", "options", "message", "stats", "instance_path"]
        if self.true_cost is not None:
            order.append("true_cost")
        return {k: _finite(d[k]) for k in order}

    def dumps(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def save(self, path: str | os.PathLike) -> None:
        from .atomic import write_text_atomic
        write_text_atomic(path, self.dumps() + "\n")

    @classmethod
    def from_dict(cls, d: Any) -> "Result":
        if not isinstance(d, dict):
            raise ResultError("result: top level must be a JSON object")
        if d.get("format") != FORMAT:
            raise ResultError(f"result: 'format' must be {FORMAT!r}, got {d.get('format')!r}")
        if d.get("version") != VERSION or isinstance(d.get("version"), bool):  # True == 1 in Python
            raise ResultError(f"result: unsupported version {d.get('version')!r} (this build reads version {VERSION})")
        for key in ("instance_sha256", "solver", "termination", "status"):
            if not isinstance(d.get(key), str):
                raise ResultError(f"result: field {key!r} must be a string")
        if d["termination"] not in {t.value for t in Termination}:
            raise ResultError(f"result: unknown termination {d['termination']!r}")
        if d["status"] not in {s.value for s in Status}:
            raise ResultError(f"result: unknown status {d['status']!r}")
        for key in ("objective", "bound", "gap"):
            x = d.get(key)
            if x is not None and not _is_number(x):
                raise ResultError(f"result: field {key!r} must be a finite number or null, got {x!r}")
        if "wall_time_s" in d and not _is_number(d["wall_time_s"]):
            raise ResultError(f"result: field 'wall_time_s' must be a finite number, got {d['wall_time_s']!r}")
        if not isinstance(d.get("options", {}), dict) or not isinstance(d.get("stats", {}), dict):
            raise ResultError("result: 'options' and 'stats' must be objects")
        if not isinstance(d.get("instance_path", ""), str):
            raise ResultError("result: 'instance_path' must be a string")
        if d.get("true_cost") is not None and not isinstance(d["true_cost"], dict):
            raise ResultError("result: 'true_cost' must be an object or null")
        if d["status"] == Status.FEASIBLE.value and d.get("objective") is None:
            raise ResultError("result: status 'feasible' needs a numeric 'objective'")
        a = d.get("assignment")
        if d["status"] == Status.FEASIBLE.value:
            if not isinstance(a, dict) or not all(isinstance(k, str) for k in a):
                raise ResultError("result: a feasible result needs 'assignment' as an object of node id -> class")
            for k, v in a.items():
                if isinstance(v, bool) or not isinstance(v, int):
                    raise ResultError(f"result: class of node {k!r} must be an integer, got {v!r}")
        elif a not in (None, {}):
            raise ResultError("result: status 'none' but an assignment is present")
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        kw.setdefault("solver_version", "")
        for k in ("objective", "bound", "gap"):
            kw.setdefault(k, None)
        kw.setdefault("wall_time_s", 0.0)
        kw.setdefault("assignment", None)
        return cls(**kw)

    @classmethod
    def loads(cls, text: str) -> "Result":
        from .inputs import loads_json
        return cls.from_dict(loads_json(text, "result", ResultError))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Result":
        from .instance import read_text
        from .errors import InstanceError
        try:
            text = read_text(path, "result")
        except InstanceError as exc:
            raise ResultError(str(exc)) from None
        try:
            return cls.loads(text)
        except ResultError as exc:
            raise ResultError(f"{path}: {exc}") from None


def _is_number(x: Any) -> bool:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    try:
        return math.isfinite(float(x))
    except OverflowError:  # an integer beyond the float range
        return False


def _finite(x: Any) -> Any:
    """``x`` as plain JSON values, however deep: JSON has no inf/nan, so they become null (bounds of -inf mean 'no
    bound'); numpy scalars and arrays (a third-party backend's ``stats``) become Python numbers and lists; tuples
    become lists."""
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if type(x).__module__ == "numpy":
        x = x.tolist() if hasattr(x, "tolist") else x
        if isinstance(x, list):
            return _finite(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
