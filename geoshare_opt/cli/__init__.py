"""The ``geoshare-opt`` command line. stdout carries only the machine-readable payload; people read stderr.

Each command group lives in its own module and registers itself on ``cli``; heavy libraries (torch, solvers) are
imported inside the commands so that ``geoshare-opt solve`` starts fast. ``main`` installs the signal handlers
(``signals``) before importing anything else, so that Ctrl-C or SIGTERM at any moment ends in one line.
"""
from __future__ import annotations

COMMAND_MODULES = ("solve", "inspect", "analyze", "backend", "recover", "sweep", "models")


def load():
    """The click group with every command registered."""
    import importlib

    from .app import cli as group
    for mod in COMMAND_MODULES:  # each adds its commands to the group on import
        importlib.import_module(f".{mod}", __name__)
    return group


def main(argv=None):
    try:
        from . import signals
        previous = signals.install()
    except KeyboardInterrupt:      # Python's own handler, while ours was being put in place
        import sys
        sys.stderr.write("interrupted: during start-up\n")
        raise SystemExit(130) from None
    try:
        try:
            group = load()
        except KeyboardInterrupt:
            signals.exit_stopped("during start-up")
        # click's own usage errors exit 2, which is our bad-input code too
        return group.main(args=argv, prog_name="geoshare-opt")
    finally:
        if argv is not None:       # called inside a longer-lived process: its handlers come back. As the
            signals.restore(previous)   # command itself, ours stay until the very exit, ignoring late signals


def __getattr__(name):
    if name == "cli":
        return load()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
