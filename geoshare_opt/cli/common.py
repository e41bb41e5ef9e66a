"""What the solver commands share: option decorators, native-option parsing, the live progress line, one-line
result summaries and the output formats for rows (a table for people, CSV and JSON for programs)."""
from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from typing import Any, Callable, Iterable, Sequence

import click

from ..errors import InputError


# ---------------------------------------------------------------------- options
def parse_native(pairs: Iterable[str], flag: str = "--native") -> dict[str, Any]:
    """``KEY=VALUE`` strings -> dict. A value is read as JSON when it parses (``1``, ``true``, ``0.5``, ``[1,2]``,
    ``"x"``), otherwise kept as the raw string, so ``--native presolve=off`` and ``--native workers=1`` both work."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"{flag} expects KEY=VALUE, got {pair!r}")
        try:
            value = json.loads(raw, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            value = raw
        out[key] = value
    return out


def _no_constant(name: str):  # NaN/Infinity are not JSON: keep such values as strings
    raise ValueError(name)


def parse_spec_options(pairs: Iterable[str]) -> dict[str, Any]:
    """``--spec-option KEY=VALUE`` -> keyword arguments of the spec's ``make()`` (values parsed like ``--native``)."""
    return parse_native(pairs, "--spec-option")


def spec_option(f: Callable) -> Callable:
    """``--spec-option KEY=VALUE`` (repeatable) for every command that loads a spec; the same options must be given
    to each command that works on one network (a different trained network fails the weight fingerprint check)."""
    return click.option("--spec-option", "spec_options", multiple=True, metavar="KEY=VALUE",
                        help="Keyword argument of the spec's make(), e.g. depth=8 (VALUE parsed as JSON when it "
                             "can be). Repeatable.")(f)


def solver_options(f: Callable) -> Callable:
    """The run options every solving command takes (same names as ``geoshare_opt.solve``)."""
    decorators = [
        click.option("--time-limit", "time_limit", type=float, default=None, metavar="S",
                     help="Wall-clock limit in seconds per run (default: none). The best incumbent is kept."),
        click.option("--seed", type=int, default=0, show_default=True, help="Random seed (seeded backends)."),
        click.option("--threads", type=int, default=1, show_default=True,
                     help="Worker threads; 1 keeps CP-SAT and HiGHS deterministic."),
        click.option("--native", "native", multiple=True, metavar="KEY=VALUE",
                     help="Backend-specific option, passed through untouched; VALUE is parsed as JSON when it can "
                          "be. Repeatable."),
        click.option("-v", "--verbose", count=True, help="Let the backend log to stderr (repeat for more)."),
        click.option("-q", "--quiet", is_flag=True, help="No progress line and no summary on stderr."),
    ]
    for dec in reversed(decorators):
        f = dec(f)
    return f


def cluster_options(f: Callable) -> Callable:
    """``--workers N`` / ``--scheduler ADDRESS``: independent jobs as Dask tasks (``geoshare_opt.fanout``)."""
    decorators = [
        click.option("--workers", type=int, default=None, metavar="N",
                     help="Run the jobs as tasks on a local Dask cluster of N single-threaded worker processes "
                          "(needs the [distributed] extra). Results are those of the serial run."),
        click.option("--scheduler", default=None, metavar="ADDRESS",
                     help="Run the jobs on the running Dask cluster at ADDRESS (e.g. tcp://host:8786); its workers "
                          "need geoshare-opt installed. See docs/distributed.md."),
    ]
    for dec in reversed(decorators):
        f = dec(f)
    return f


def cluster_from(workers: int | None, scheduler: str | None, progress: "JobsProgress"):
    """The ``fanout.Cluster`` the options ask for (its progress bar starts once the tasks are submitted), or None
    (one job after another)."""
    if workers is None and scheduler is None:
        return None
    from ..fanout import Cluster
    return Cluster(workers=workers, scheduler=scheduler, quiet=not progress.enabled, on_ready=progress.start)


class JobsProgress:
    """A tqdm bar on stderr counting finished jobs (tasks finish out of order, so a count, not a position), with a
    line per job printed above it; silent when disabled (``--quiet``)."""

    def __init__(self, unit: str, enabled: bool = True):
        self.unit = unit
        self.enabled = enabled
        self.bar = None

    def start(self, total: int) -> None:
        if self.enabled and self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit=self.unit, desc=self.unit + "s", dynamic_ncols=True, file=sys.stderr)

    def done(self, line: str | None = None) -> None:
        if self.bar is not None:
            if line:
                self.bar.write(line, file=sys.stderr)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------- progress and summaries
class ProgressLine:
    """A live line on stderr showing the incumbent as it improves (the ``progress`` callback of ``solve``).

    On a terminal it rewrites one line in place; into a file or pipe it writes at most one line per ``every``
    seconds, so logs stay short. ``close()`` ends the line. Silent when ``enabled`` is false (``--quiet``)."""

    def __init__(self, label: str, enabled: bool = True, stream=None, every: float = 1.0):
        self.label = label
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = 0.1 if self.tty else every
        self._last_write = -math.inf
        self._pending: str | None = None
        self._open = False

    def __call__(self, info: dict) -> None:
        if not self.enabled:
            return
        parts = [self.label]
        event = info.get("event", "progress")
        if "objective" in info:
            parts.append(f"{event} {fmt_num(info['objective'])}")
        elif "round" in info:
            parts.append(f"{event} {info['round']}")
        if info.get("bound") is not None:
            parts.append(f"bound {fmt_num(info['bound'])}")
        if "elapsed" in info:
            parts.append(f"{info['elapsed']:.1f}s")
        self._pending = "  ".join(parts)
        now = time.monotonic()
        if now - self._last_write >= self.every:
            self._flush()
            self._last_write = now

    def _flush(self) -> None:
        if self._pending is None:
            return
        if self.tty:
            self.stream.write("\r\x1b[K" + self._pending)
            self._open = True
        else:
            self.stream.write(self._pending + "\n")
        self.stream.flush()
        self._pending = None

    def close(self) -> None:
        if not self.enabled:
            return
        if not self.tty:
            self._pending = None  # the summary line that follows says the same
        self._flush()
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


class ProgressBar:
    """A tqdm bar on stderr fed by a ``progress(info)`` callback, created at the first report (its ``total`` comes
    from there); ``show(bar, info)`` moves it and sets its postfix. Nothing at all when disabled (``--quiet``)."""

    def __init__(self, enabled: bool, desc: str, unit: str, show: Callable[[Any, dict], None]):
        self.enabled, self.desc, self.unit, self.show = enabled, desc, unit, show
        self.bar = None

    def __call__(self, info: dict) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(total=info.get("total"), desc=self.desc, unit=self.unit, file=sys.stderr,
                            dynamic_ncols=True)
        self.show(self.bar, info)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def fmt_num(x: Any, digits: int = 8) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if x.is_integer() and abs(x) < 1e15:
            return str(int(x))
        return f"{x:.{digits}g}"
    return str(x)


def fmt_gap(g: float | None) -> str:
    return "-" if g is None else f"{100 * g:.3g}%"


def summary_line(result) -> str:
    """One line for people: solver, termination, objective, bound, gap, time."""
    line = (f"{result.solver}: {result.termination}, status {result.status}, objective {fmt_num(result.objective)}, "
            f"bound {fmt_num(result.bound)}, gap {fmt_gap(result.gap)}, {result.wall_time_s:.2f}s")
    if result.message:
        line += f" ({result.message})"
    return line


def check_writable(path: str | None) -> None:
    """Fail before a long run, not after it, when an output file cannot be created."""
    import os
    if not path or path == "-":
        return
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise InputError(f"cannot write {path}: directory {parent} does not exist")
    if os.path.isdir(path):
        raise InputError(f"cannot write {path}: it is a directory")
    if not os.access(parent, os.W_OK):
        raise InputError(f"cannot write {path}: directory {parent} is not writable")


def write_output(path: str, text: str) -> None:
    """Write a payload file atomically; an unwritable place is the user's input error, not a crash. A signal from
    here on is ignored: the output is completed."""
    from ..atomic import write_text_atomic
    from . import signals
    signals.finishing()
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------- rows: table, CSV, JSON
def format_table(rows: Sequence[dict], columns: Sequence[str], headers: Sequence[str] | None = None) -> str:
    """A plain aligned text table (numbers right-aligned)."""
    headers = list(headers or columns)
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(r.get(c), (int, float)) or r.get(c) is None for r in rows) for c in columns]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    return "\n".join(out)


def _cell(x: Any) -> str:
    if isinstance(x, bool):
        return "*" if x else ""
    if isinstance(x, float):
        return fmt_num(x, 6)
    return "-" if x is None else str(x)


def rows_to_csv(rows: Sequence[dict], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in columns})
    return buf.getvalue()


def rows_to_json(rows: Sequence[dict]) -> str:
    return json.dumps(list(rows), indent=1, allow_nan=False) + "\n"
