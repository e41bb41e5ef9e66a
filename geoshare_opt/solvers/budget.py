"""What building an exact backend's model will cost, known before it is built.

The assignment model of a dense part grows as ``C·n²`` terms (symmetry rows) plus ``C·E`` (edge rows): 400 dense
nodes at 8 classes is a few million terms, 20,000 nodes with a million edges tens of millions, and building them in
Python takes minutes and gigabytes before the solver starts. So an exact backend first estimates the model
(``model_size``) and refuses a sub-model that would not fit in the memory available or could not be built within
its share of the time limit (``refusal``); the decomposition then keeps the heuristic incumbent it started from and
the result says why. While building, the builders check their deadline (``BuildClock``) and stop with
``BuildTimeout``, so a wrong estimate costs at most the time limit, not a multiple of it.

Per-term costs (``COSTS``) were measured with ``benchmarks/build_budget/measure.py`` (see its README); they vary with
the machine, which is why they only decide whether to start building, never how long the solver may run.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from .curves import Model, Part

# any subset of the triangle rows is valid; past this many per part they cost more to build than they save (the
# builders in milp.py and cpsat.py cap them here, and the size estimate below counts them so)
MAX_TRIANGLES = 100_000

#: backend -> (bytes, seconds) per model term while building (Python objects of the builder + the solver's copy)
COSTS = {"cpsat": (700.0, 4.0e-6), "highs": (250.0, 2.0e-6), "pulp": (900.0, 20.0e-6)}
#: share of the memory available (MemAvailable) one model may take
MEMORY_SHARE = 0.5
#: share of a sub-solve's time limit that building its model may take by the estimate: a model that cannot be built in
#: its time is not started (the deadline checks while building catch estimates that were too low)
BUILD_SHARE = 0.8
#: every how many terms a builder looks at the clock
CHECK_EVERY = 4096


class BuildTimeout(Exception):
    """The model was not finished by its deadline (raised by ``BuildClock.tick``)."""


@dataclass(frozen=True)
class ModelSize:
    """Columns and non-zeros of the rows every model needs, and the non-zeros of the optional triangle cuts (their
    generation stops at a share of the time limit, milp.CUT_SHARE, so only memory counts them in full)."""
    columns: int
    nonzeros: int
    optional: int = 0

    @property
    def terms(self) -> int:
        """Terms built whatever the time limit."""
        return self.columns + self.nonzeros

    @property
    def all_terms(self) -> int:
        return self.terms + self.optional


def part_size(part: Part, symmetry: bool, with_z: bool, with_s: bool, triangles: bool = True) -> ModelSize:
    """Columns and non-zeros of one part's rows (every row family of milp.build / cpsat._Built; the optional
    triangle rows by their expected count on a random graph of the part's density, capped as the builders cap
    them)."""
    n, C = part.n, part.cap
    x = sum(min(C, i + 1) for i in range(n)) if symmetry else n * C
    e_pos = int((part.soft_w > 0).sum())
    e_neg = len(part.soft_w) - e_pos
    nnz = x + 2 * C * len(part.hard_u) + 3 * C * (e_pos + 2 * e_neg)
    if symmetry:
        nnz += sum((n - c) * (n - c + 3) // 2 for c in range(1, min(C, n)))
    cols = x + len(part.soft_w)
    if with_z:
        cols += C
        nnz += 2 * x
    if with_s:
        cols += C
        nnz += 2 * x
    pairs = n * (n - 1) / 2
    optional = 0
    if triangles and pairs:
        density = len(part.soft_w) / pairs
        optional = 9 * int(min(MAX_TRIANGLES, n * (n - 1) * (n - 2) / 6 * density ** 3))
    return ModelSize(cols, nnz, optional)


def model_size(model: Model) -> ModelSize:
    with_z = model.needs_class_count or model.max_params is not None
    sizes = [part_size(p, model.symmetry, with_z, model.max_params is not None and not p.uniform_params,
                       model.triangles) for p in model.parts]
    return ModelSize(sum(s.columns for s in sizes), sum(s.nonzeros for s in sizes), sum(s.optional for s in sizes))


def memory_available() -> int | None:
    """Bytes the kernel reports as available (``MemAvailable`` in /proc/meminfo), or None where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory_limit_or_default(memory_limit: float | None) -> float | None:
    """``memory_limit`` bytes, or by default ``MEMORY_SHARE`` of the memory available (None where unknown)."""
    if memory_limit is not None:
        return memory_limit
    available = memory_available()
    return None if available is None else MEMORY_SHARE * available


def refusal(backend: str, model: Model, time_limit: float | None, memory_limit: float | None = None) -> str:
    """Why ``backend`` should not build ``model`` ("" when it may): the estimated memory above ``memory_limit``
    bytes (default ``MEMORY_SHARE`` of the memory available), or the estimated build time above ``BUILD_SHARE``
    of ``time_limit``."""
    per_byte, per_second = COSTS[backend]
    size = model_size(model)
    terms = size.all_terms
    need = terms * per_byte
    memory_limit = memory_limit_or_default(memory_limit)
    if memory_limit is not None and need > memory_limit:
        return (f"{backend}: its model ({terms:,} terms) would need about {_gb(need)} to build, more than the "
                f"{_gb(memory_limit)} it may use")
    seconds = size.terms * per_second
    if time_limit is not None and seconds > BUILD_SHARE * time_limit:
        return (f"{backend}: building its model ({size.terms:,} terms) would take about {seconds:.3g} s of a "
                f"{time_limit:.3g} s time limit")
    return ""


def _gb(n: float) -> str:
    return f"{n / 2 ** 30:.2g} GB" if n >= 2 ** 28 else f"{n / 2 ** 20:.3g} MB"


class BuildClock:
    """A deadline for building a model; ``tick()`` in the builders' loops raises ``BuildTimeout`` past it (looking
    at the clock only every ``CHECK_EVERY`` calls)."""

    def __init__(self, deadline: float | None):
        self.deadline = deadline
        self.count = 0

    @classmethod
    def for_limit(cls, started: float, time_limit: float | None) -> "BuildClock":
        return cls(None if time_limit is None else started + time_limit)

    def tick(self, terms: int = 1) -> None:
        if self.deadline is None:
            return
        before = self.count
        self.count += terms
        if self.count // CHECK_EVERY != before // CHECK_EVERY and time.monotonic() >= self.deadline:
            raise BuildTimeout(f"the time limit was reached while building the model ({self.count:,} terms built)")


NO_CLOCK = BuildClock(None)


