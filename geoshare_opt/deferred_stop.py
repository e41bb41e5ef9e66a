"""Ctrl-C that lands inside code which cannot take it waits for that code to return (stdlib only).

A ``KeyboardInterrupt`` raised inside the import machinery leaves a library half-imported (numpy then refuses to
import again, torch recurses, some import fallbacks swallow the exception, and CPython marks the interpreter to
die by SIGINT at exit even after the program handled the interrupt); raised inside numba's compiler it is printed
and dropped by its ctypes callbacks, and the run goes on as if nothing was asked. Backends import their solver
libraries and compile their kernels on first use, so a Ctrl-C early in a first solve lands there. Both the command
line (``cli/signals.py``) and ``api.run_backend`` therefore defer such a stop until that code returns, at most
``FORCE_AFTER_S``, by sending the signal again every ``RETRY_S``.
"""
from __future__ import annotations

import os
import signal
import threading
import time

#: a stop waits at most this long for an import or a compilation to return
FORCE_AFTER_S = 10.0

#: while a stop waits, the signal is sent again this often to look again
RETRY_S = 0.05

#: code a stop must not be raised in, found by file name anywhere on the stack
NO_STOP_IN = ("<frozen importlib._bootstrap", f"{os.sep}numba{os.sep}", f"{os.sep}llvmlite{os.sep}")


def must_not_stop_in(frame) -> bool:
    """Whether ``frame`` or any frame that called it is an import or a numba compilation."""
    while frame is not None:
        name = frame.f_code.co_filename
        if any(part in name for part in NO_STOP_IN):
            return True
        frame = frame.f_back
    return False


class ImportsFinishFirst:
    """``with ImportsFinishFirst(): ...`` -- a Ctrl-C inside the block raises ``KeyboardInterrupt`` as usual,
    except inside an import or a compilation, where it is raised once that code returns (or when the block ends,
    whichever is first). Active only in the main thread while Python's own SIGINT handler is installed: a program
    (or the command line) with its own handler keeps it."""

    def __init__(self):
        self.active = False
        self.first_at: float | None = None       # when the stop now waiting arrived

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            signal.signal(signal.SIGINT, self._handle)
            self.active = True
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self.active:
            return False
        if signal.getsignal(signal.SIGINT) == self._handle:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        self.active = False
        if self.first_at is not None and exc_type is None:
            self.first_at = None
            raise KeyboardInterrupt          # the stop that waited for an import the block ended with
        return False

    def _handle(self, signum, frame) -> None:
        now = time.monotonic()
        if self.first_at is None:
            self.first_at = now
        if must_not_stop_in(frame) and now - self.first_at < FORCE_AFTER_S:
            retry = threading.Timer(RETRY_S, self._send_again, (signum,))
            retry.daemon = True
            retry.start()
            return
        self.first_at = None
        raise KeyboardInterrupt

    def _send_again(self, signum) -> None:
        if self.first_at is not None and self.active:
            os.kill(os.getpid(), signum)
