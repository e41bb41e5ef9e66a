"""The options every backend takes, typed once (native options pass through last, untouched)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from .errors import InputError

#: seeds are 0 .. MAX_SEED on every backend and command (CP-SAT and HiGHS take a 32-bit signed seed)
MAX_SEED = 2**31 - 1
#: a time limit of this many seconds (about 32 years) or more, or ``inf``, means no limit
NO_LIMIT_FROM = 1e9
#: the most worker threads a run may ask for (solvers and torch alike): far beyond any machine's cores, and below
#: what makes HiGHS abort the process or a 64-bit thread count overflow
MAX_THREADS = 1024


def check_threads(threads: Any, what: str = "threads", error: type[InputError] = InputError) -> int:
    """``threads`` when it is an integer in 1 .. MAX_THREADS, else ``error``."""
    if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) or not 1 <= threads <= MAX_THREADS:
        shown = threads if not isinstance(threads, int) or abs(threads) < 10**30 else "a huge number"
        raise error(f"{what} must be an integer from 1 to {MAX_THREADS}, got {shown}")
    return int(threads)


def time_limit_or_none(value: Any, what: str = "time limit") -> float | None:
    """A checked time limit in seconds: None for none (also for ``inf`` and values >= ``NO_LIMIT_FROM``, which no
    backend could take as a number); InputError for a negative, NaN or non-numeric value."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{what} must be a non-negative number of seconds, got {value!r}")
    value = float(value)
    if math.isnan(value) or value < 0:
        raise InputError(f"{what} must be a non-negative number of seconds, got {value!r}")
    return None if value >= NO_LIMIT_FROM else value


def check_seed(seed: Any, what: str = "seed") -> int:
    """``seed`` when it is an integer in 0 .. MAX_SEED (the same range for every backend), else InputError."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        shown = seed if not isinstance(seed, int) or abs(seed) < 10**30 else f"a {len(str(abs(seed)))}-digit number"
        raise InputError(f"{what} must be an integer from 0 to {MAX_SEED} (2**31-1), got {shown}")
    return int(seed)


def check_ratio(ratio: Any, what: str = "ratio", error: type[InputError] = InputError) -> float:
    """A compression ratio (the fraction of stored parameters removed) strictly between 0 and 1, else ``error``:
    the one check behind every ``ratio`` and ``--ratio``."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 < float(ratio) < 1.0:
        raise error(f"{what} must lie strictly between 0 and 1 (fraction of stored parameters removed), "
                         f"got {ratio!r}")
    return float(ratio)


@dataclass(frozen=True)
class SolveOptions:
    time_limit: float | None = None       # seconds of wall time; None = no limit (see time_limit_or_none)
    seed: int = 0
    threads: int = 1                       # 1 keeps CP-SAT and HiGHS deterministic
    warm_start: np.ndarray | None = None   # labels in node order (see api.solve for the accepted forms)
    verbose: int = 0                       # 0 silent; >0 lets the backend log to the context's log callback
    native: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        # frozen: normalised values are set through object.__setattr__
        object.__setattr__(self, "time_limit", time_limit_or_none(self.time_limit))
        object.__setattr__(self, "seed", check_seed(self.seed))
        object.__setattr__(self, "threads", check_threads(self.threads))
        if not isinstance(self.native, Mapping):
            raise InputError("native options must be a mapping of option name -> value")
        for key, value in self.native.items():   # the result echoes them as JSON, which has no inf/nan
            if _has_non_finite(value):
                raise InputError(f"native option {key!r} holds a non-finite number ({value!r})")

    def to_dict(self) -> dict:
        """What a result records (the warm start is summarised, not copied)."""
        return {"time_limit": self.time_limit, "seed": self.seed, "threads": self.threads,
                "warm_start": self.warm_start is not None, "verbose": self.verbose, "native": dict(self.native)}


def _has_non_finite(value: Any, depth: int = 0) -> bool:
    if isinstance(value, (float, np.floating)):
        return not math.isfinite(value)
    if depth < 32 and isinstance(value, Mapping):
        return any(_has_non_finite(v, depth + 1) for v in value.values())
    if depth < 32 and isinstance(value, (list, tuple)):
        return any(_has_non_finite(v, depth + 1) for v in value)
    return False


LogFn = Callable[[str], None]
