"""Keep native libraries from writing to stdout, which carries only the machine-readable payload.

highspy 1.16 prints a banner on file descriptor 1 at the first ``Highs()`` of a process (discarded: it is noise
even with -v, and -q must mean silence), and ``writeModel`` reports what it wrote there too (sent to stderr).
Those writes come from C++ and bypass ``sys.stdout``, so the guards work on descriptors: fd 1 points elsewhere
while the block runs, then is restored.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading

_lock = threading.RLock()  # fd 1 is process-wide: two guards must not interleave their dup2 calls


@contextlib.contextmanager
def _stdout_to(fd: int):
    """Route everything written to fd 1 (Python and native code) to ``fd`` inside the block."""
    with _lock:
        try:
            sys.stdout.flush()
        except (AttributeError, ValueError):  # stdout replaced or closed: nothing of ours to flush
            pass
        try:
            saved = os.dup(1)
        except OSError:  # no fd 1 at all (daemonised): nothing to protect
            yield
            return
        try:
            os.dup2(fd, 1)
            yield
        finally:
            try:
                sys.stdout.flush()
            except (AttributeError, ValueError):
                pass
            os.dup2(saved, 1)
            os.close(saved)


def stdout_to_stderr():
    """Route everything written to fd 1 (Python and native code) to fd 2 inside the block."""
    return _stdout_to(2)


@contextlib.contextmanager
def stdout_discarded():
    """Drop everything written to fd 1 inside the block (the HiGHS banner: nobody asked for it, not even -v)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        with _stdout_to(devnull):
            yield
    finally:
        os.close(devnull)


def new_highs():
    """A ``highspy.Highs`` without its banner and with its console log off."""
    import highspy
    with stdout_discarded():
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
    return h


def run_highs(h):
    """``h.run()``, and once more after a reset of HiGHS's thread scheduler if the first refused to start. The
    scheduler is global to the process and keeps the thread count of the first run that made it: a later run that
    sets another ``threads`` (colgen's masters ask for 1 after a default run asked for 2) ends at once with an
    error and no result, which would turn a provable point into an unproven one."""
    import highspy
    status = h.run()
    if status == highspy.HighsStatus.kError and h.getModelStatus() == highspy.HighsModelStatus.kNotset:
        highspy.Highs.resetGlobalScheduler(True)
        status = h.run()
    return status
