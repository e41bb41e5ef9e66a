"""The click group, the error boundary that turns exceptions into one-line messages and exit codes, and helpers
every command shares (stderr messages, payload output)."""
from __future__ import annotations

import errno
import os
import sys
import traceback

import click

from ..errors import InputError
from . import exits, signals


def err(msg: str) -> None:
    """A line for people (stderr)."""
    click.echo(msg, err=True)


def emit(payload: str) -> None:
    """The machine-readable payload (stdout), written in one piece: a signal from here on is ignored."""
    signals.finishing()
    sys.stdout.write(payload if payload.endswith("\n") else payload + "\n")
    sys.stdout.flush()


class GeoshareGroup(click.Group):
    """Maps exceptions to exit codes; bad input never shows a traceback; a stop by Ctrl-C or SIGTERM (``signals``)
    ends in one line and exit 130 / 143, while the arguments are parsed as much as while a command runs."""

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt:
            signals.exit_stopped()

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputError as exc:
            err(f"error: {exc}")
            sys.exit(exits.BAD_INPUT)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except (click.exceptions.Abort, KeyboardInterrupt):
            signals.exit_stopped()
        except SystemExit:
            raise
        except BrokenPipeError:
            # the reader of stdout went away (e.g. `| head`): stop quietly, without Python's exit-time complaint
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(exits.INTERNAL)
        except Exception as exc:  # noqa: BLE001
            if _output_failure(exc):
                err(f"error: {_output_failure(exc)}")
                sys.exit(exits.BAD_INPUT)
            if os.environ.get("GEOSHARE_DEBUG"):
                traceback.print_exc()
            err(f"internal error: {type(exc).__name__}: {exc} (set GEOSHARE_DEBUG=1 for a traceback)")
            sys.exit(exits.INTERNAL)


#: errors of a file system that cannot take an output: full, over quota, over the size limit, read-only
_OUTPUT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


def _output_failure(exc: BaseException) -> str:
    """The line for an output the file system refused (every writer removes its temporary files on the way out),
    or "" for any other exception. safetensors reports such failures as its own error with the OS message."""
    if isinstance(exc, OSError) and exc.errno in _OUTPUT_ERRNOS:
        return f"cannot write {exc.filename or 'an output file'}: {exc.strerror}"
    if type(exc).__name__ == "SafetensorError" and "I/O error" in str(exc):
        return f"cannot write a weights file: {str(exc).split('I/O error: ')[-1]}"
    return ""


@click.group(cls=GeoshareGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="geoshare-opt")
def cli():
    """geoshare-opt: choose which layers of a network share storage by optimisation."""
