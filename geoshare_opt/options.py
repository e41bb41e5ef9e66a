"""The options every backend takes, typed once (native options pass through last, untouched)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class SolveOptions:
    time_limit: float | None = None       # seconds of wall time; None = no limit
    seed: int = 0
    threads: int = 1                       # 1 keeps CP-SAT and HiGHS deterministic
    warm_start: np.ndarray | None = None   # labels in node order (see api.solve for the accepted forms)
    verbose: int = 0                       # 0 silent; >0 lets the backend log to the context's log callback
    native: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.time_limit is not None:
            if not isinstance(self.time_limit, (int, float)) or isinstance(self.time_limit, bool) \
                    or math.isnan(self.time_limit) or self.time_limit < 0:
                raise InputError(f"time limit must be a non-negative number of seconds, got {self.time_limit!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not isinstance(self.threads, int) or isinstance(self.threads, bool) or self.threads < 1:
            raise InputError(f"threads must be a positive integer, got {self.threads!r}")
        if not isinstance(self.native, Mapping):
            raise InputError("native options must be a mapping of option name -> value")

    def to_dict(self) -> dict:
        """What a result records (the warm start is summarised, not copied)."""
        return {"time_limit": self.time_limit, "seed": self.seed, "threads": self.threads,
                "warm_start": self.warm_start is not None, "verbose": self.verbose, "native": dict(self.native)}


LogFn = Callable[[str], None]
