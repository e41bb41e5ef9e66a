"""Signals on the command line (stdlib only: installed before anything heavy is imported).

SIGTERM (batch schedulers, ``timeout``, ``kill``) is handled like Ctrl-C: both raise ``KeyboardInterrupt`` in the
main thread, so a solve stops and keeps its incumbent, solver subprocesses are ended, and files being written are
removed rather than left half-written. Signals after the first are recorded and ignored while the command stops
(up to ``FORCE_AFTER_S``), and so is any signal once a command writes its output (``finishing``): the output or
the clean-up completes and the process exits with the code it calls for, so a second Ctrl-C can never cut a
result in half. A command stopped before it wrote anything exits with
``exit_code()``: 130 after Ctrl-C (SIGINT), 143 after SIGTERM.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

from ..deferred_stop import FORCE_AFTER_S, RETRY_S, must_not_stop_in   # a later signal forces the stop
from .exits import INTERRUPTED, TERMINATED

_received: list[tuple[int, float]] = []      # (signal, time.monotonic()) in order of arrival
_finishing = False
_installed: list[int] = []                   # signals whose handler is ours (command line only)
_deferred: list[int] = []                    # a first signal not raised yet (see _stop_or_defer)


def install() -> dict:
    """Handle SIGINT and SIGTERM (a signal the parent set to be ignored, as for background jobs, stays ignored).
    Returns the previous handlers for ``restore``."""
    global _finishing
    _received.clear()
    _deferred.clear()
    _finishing = False
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(sig)
        if current is signal.SIG_IGN:
            continue
        previous[sig] = current
        signal.signal(sig, _handle)
        _installed.append(sig)
    return previous


def restore(previous: dict) -> None:
    """Put back the handlers ``install`` replaced (``main`` called inside a longer-lived process)."""
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    _installed.clear()
    _deferred.clear()


def _handle(signum, frame) -> None:
    now = time.monotonic()
    if _deferred and signum == _deferred[0] and _received and now - _received[0][1] < FORCE_AFTER_S:
        _stop_or_defer(signum, frame)    # our own retry (or the same signal again) while the first one waits
        return
    _received.append((signum, now))
    if _finishing:
        return
    if len(_received) > 1 and now - _received[0][1] < FORCE_AFTER_S:
        return   # already stopping: the stop of the first signal (and its clean-up or output) completes
    _stop_or_defer(signum, frame)


def _stop_or_defer(signum, frame) -> None:
    """Raise the stop, unless the main thread is inside code that cannot take it (``deferred_stop.NO_STOP_IN``: an
    import, a numba compilation), where the command would end in an internal error instead of its one line, or not
    stop at all. The stop then waits for that code to return (at most ``FORCE_AFTER_S``), the signal being sent
    again every ``RETRY_S``."""
    if _finishing:
        _deferred.clear()
        return
    if must_not_stop_in(frame) and time.monotonic() - _received[0][1] < FORCE_AFTER_S:
        if not _deferred:
            _deferred.append(signum)
        retry = threading.Timer(RETRY_S, _send_again, (signum,))
        retry.daemon = True
        retry.start()
        return
    _deferred.clear()
    raise KeyboardInterrupt


def _send_again(signum) -> None:
    if _deferred and signal.getsignal(signum) is _handle:     # not once the stop is over or the handlers restored
        os.kill(os.getpid(), signum)


def finishing() -> None:
    """From now on the command only writes its output: signals no longer interrupt it. Where ``install`` put our
    handler in place, the signals are ignored by the process itself from here on: Python resets its own handlers to
    the default while it shuts down, and a late Ctrl-C would then kill a process whose output is already complete."""
    global _finishing
    _finishing = True
    for sig in _installed:
        signal.signal(sig, signal.SIG_IGN)


def terminated() -> bool:
    """Whether the signal that stopped the command was SIGTERM."""
    return bool(_received) and _received[0][0] == signal.SIGTERM


def exit_code() -> int:
    """The exit code of a command stopped by a signal before it wrote any output."""
    return TERMINATED if terminated() else INTERRUPTED


def stop_message() -> str:
    return "terminated (SIGTERM)" if terminated() else "interrupted"


def exit_stopped(detail: str = "") -> None:
    """One line on stderr, solver subprocesses ended, exit 130 / 143: for a command stopped before any output."""
    command_line = bool(_installed)
    finishing()                  # a second signal must not turn this exit into a traceback
    from ..processes import terminate_children
    terminate_children()
    sys.stderr.write(stop_message() + (f": {detail}" if detail else "") + "\n")
    sys.stderr.flush()
    if command_line:
        # the stop is final and nothing is left to write (files being written were removed while the interrupt
        # unwound the stack): leave now, with exactly this code. Unwinding on through the interpreter's exit could
        # still turn it into a death by SIGINT (exit -2 or 130 after a SIGTERM was seen under load)
        os._exit(exit_code())
    sys.exit(exit_code())
