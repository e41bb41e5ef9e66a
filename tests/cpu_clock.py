"""Deadline checks that hold on a loaded machine.

A backend that honours its time limit stops at the limit by the wall clock, and the work it does after that (the
result, the clean-up) is short in CPU seconds; on a loaded machine those CPU seconds stretch over many more wall
seconds. So tests check the CPU time (this process, all its threads, and the children it waited for, e.g. CBC)
against the limit plus a small slack -- an overrun of the old kind (the build running to its end: 6-35 s) fails
it whatever the load -- and the wall time only against a generous bound that catches a hang."""
import resource
import time

#: wall seconds beyond the limit that a loaded machine may add before a run counts as hung
HANG_S = 60.0


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Spent:
    """``with Spent() as spent: ...`` then ``spent.cpu`` and ``spent.wall`` (seconds)."""

    def __enter__(self):
        self._cpu, self._wall = _cpu(), time.monotonic()
        return self

    def __exit__(self, *exc):
        self.cpu, self.wall = _cpu() - self._cpu, time.monotonic() - self._wall
        return False

    def check(self, limit: float, slack: float, what: str = "") -> None:
        assert self.cpu < limit + slack, f"{what}: {self.cpu:.2f} CPU s for a {limit} s limit (wall {self.wall:.2f})"
        assert self.wall < limit + HANG_S, f"{what}: {self.wall:.2f} wall s for a {limit} s limit"
