"""This process's children (stdlib only, Linux ``/proc``): the solver subprocesses a stop must end, e.g. the CBC
that PuLP starts, which would otherwise run on as an orphan after its parent is gone."""
from __future__ import annotations

import os
import signal


def child_processes() -> set[int]:
    """Process ids whose parent is this process (Linux /proc; empty elsewhere)."""
    me = os.getpid()
    out = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # the name may contain spaces: parse after its ")"
        if len(fields) > 1 and fields[1] == str(me):
            out.add(int(entry))
    return out


def terminate_new_children(before: set[int]) -> None:
    """Stop the solver subprocesses started since ``before`` was taken (e.g. the CBC that PuLP launched)."""
    for pid in child_processes() - before:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass


def terminate_children() -> None:
    """Stop every child of this process (a command line stopping for good)."""
    terminate_new_children(set())
