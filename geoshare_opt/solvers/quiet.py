"""Keep native libraries from writing to stdout, which carries only the machine-readable payload.

highspy 1.16 prints a banner on file descriptor 1 at the first ``Highs()`` of a process, and ``writeModel`` reports
what it wrote there too. Those writes come from C++ and bypass ``sys.stdout``, so the guard works on descriptors:
fd 1 points at fd 2 while the block runs, then is restored.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading

_lock = threading.RLock()  # fd 1 is process-wide: two guards must not interleave their dup2 calls


@contextlib.contextmanager
def stdout_to_stderr():
    """Route everything written to fd 1 (Python and native code) to fd 2 inside the block."""
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
            os.dup2(2, 1)
            yield
        finally:
            try:
                sys.stdout.flush()
            except (AttributeError, ValueError):
                pass
            os.dup2(saved, 1)
            os.close(saved)


def new_highs():
    """A ``highspy.Highs`` with its banner on stderr and its console log off."""
    import highspy
    with stdout_to_stderr():
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
    return h
