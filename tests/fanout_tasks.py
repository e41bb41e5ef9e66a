"""The task function of tests/test_fanout.py: module level, so that Dask workers (spawned processes with the test
process's sys.path) import it by name."""
from __future__ import annotations

import os
import signal


def run(kind: str, x: int, marker: str) -> int:
    """``square``: x²; ``die_once``: kills its worker process the first time (leaving ``marker``), x² when rerun;
    ``die_always``: kills its worker process every time; ``fail``: raises."""
    if kind == "die_once" and not os.path.exists(marker):
        with open(marker, "w"):
            pass
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "die_always":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "fail":
        raise ValueError(f"no answer for {x}")
    return x * x


def step(state: int, kind: str) -> int:
    """One step of a chain: ``add`` adds one to the state, ``fail`` raises."""
    if kind == "fail":
        raise ValueError(f"step failed at state {state}")
    return state + 1
