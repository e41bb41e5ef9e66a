"""Ctrl-C during a native solve: stop the solver cleanly and keep what it found.

A native solve holds the main thread inside C++, where Python cannot raise ``KeyboardInterrupt``; CP-SAT would
catch SIGINT itself and return as if it had finished (once even reporting "optimal"). So the solve runs in a worker
thread, the main thread waits, and a Ctrl-C there asks the solver to stop (``stop``), waits for it, and tells the
caller, which then reports ``interrupted`` with the incumbent instead of trusting the solver's status.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from ..processes import child_processes, terminate_children, terminate_new_children  # noqa: F401


#: seconds to wait for a solver to honour a stop request before returning without it (a daemon thread then lets
#: the solver run out its own time limit; a CLI process exits at once)
STOP_GRACE_S = 1.5


def run_interruptible(target: Callable[[], object], stop: Callable[[], object], grace: float | None = None) -> bool:
    """Run ``target()``; on Ctrl-C call ``stop()`` and wait for ``target`` to return. Returns True if interrupted.
    With ``grace``, give up waiting that many seconds after the Ctrl-C (for solvers that cannot be stopped: the
    worker thread is a daemon and finishes on its own). Exceptions raised by ``target`` propagate (unless given
    up on). Off the main thread (no Ctrl-C there) it simply calls ``target``."""
    if threading.current_thread() is not threading.main_thread():
        target()
        return False
    failure: list[BaseException] = []
    done = threading.Event()

    def work() -> None:
        try:
            target()
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=work, name="geoshare-solve", daemon=True).start()
    interrupted_at = None
    # wait on an Event, not Thread.join: a KeyboardInterrupt inside join can mark a live thread as finished
    # (CPython < 3.13), and the solver would then be abandoned mid-run
    while not done.is_set():
        try:
            done.wait(0.1)
        except KeyboardInterrupt:
            interrupted_at = time.monotonic()
            stop()
        if interrupted_at is not None and grace is not None and time.monotonic() - interrupted_at > grace:
            return True
    if interrupted_at is not None:
        return True  # a solver killed by the stop may fail on its way out: the interrupt is the news
    if failure:
        raise failure[0]
    return False
