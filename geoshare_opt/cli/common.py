"""What the solver commands share: option decorators, native-option parsing, the live progress line, one-line
result summaries and the output formats for rows (a table for people, CSV and JSON for programs)."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time
from typing import Any, Callable, Iterable, Sequence

import click

from ..errors import InputError


# ---------------------------------------------------------------------- options
def parse_native(pairs: Iterable[str], flag: str = "--native") -> dict[str, Any]:
    """``KEY=VALUE`` strings -> dict. A value is read as JSON when it parses (``1``, ``true``, ``0.5``, ``[1,2]``,
    ``"x"``), otherwise kept as the raw string, so ``--native presolve=off`` and ``--native workers=1`` both work.
    Numbers JSON cannot hold (``NaN``, ``1e400``, integers of over 100 digits) stay strings too: the backend then
    names the option whose value is not a usable number."""
    from ..inputs import loads_json
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"{flag} expects KEY=VALUE, got {pair!r}")
        try:
            value = loads_json(raw, flag)
        except InputError:
            value = raw
        out[key] = value
    return out


def parse_spec_options(pairs: Iterable[str]) -> dict[str, Any]:
    """``--spec-option KEY=VALUE`` -> keyword arguments of the spec's ``make()`` (values parsed like ``--native``)."""
    return parse_native(pairs, "--spec-option")


def spec_option(f: Callable) -> Callable:
    """``--spec-option KEY=VALUE`` (repeatable) for every command that loads a spec; the same options must be given
    to each command that works on one network (a different trained network fails the weight fingerprint check)."""
    return click.option("--spec-option", "spec_options", multiple=True, metavar="KEY=VALUE",
                        help="Keyword argument of the spec's make(), e.g. depth=8 (VALUE parsed as JSON when it "
                             "can be). Repeatable.")(f)


#: torch's intra-op threads for the torch commands unless --threads or GEOSHARE_THREADS says otherwise: one thread
#: never oversubscribes a shared machine and gives the same bits whatever the machine's core count (see
#: benchmarks/threads/README.md for the measurements behind it)
DEFAULT_TORCH_THREADS = 1


def _set_torch_threads(ctx, param, value):
    import os
    from ..options import MAX_THREADS, check_threads
    if value is None:
        env = os.environ.get("GEOSHARE_THREADS", "").strip()
        try:
            value = check_threads(int(env) if env else DEFAULT_TORCH_THREADS, "GEOSHARE_THREADS", ValueError)
        except ValueError:
            raise InputError(f"GEOSHARE_THREADS must be an integer from 1 to {MAX_THREADS}, got "
                             f"{env[:40]!r}") from None
    check_threads(value, "--threads")
    import torch
    torch.set_num_threads(value)
    return value


def torch_threads(f: Callable) -> Callable:
    """``--threads N`` for the commands that run torch (set before the command starts)."""
    return click.option("--threads", type=int, default=None, expose_value=False, callback=_set_torch_threads,
                        metavar="N", help=f"torch threads (default: $GEOSHARE_THREADS, else "
                                          f"{DEFAULT_TORCH_THREADS}: no oversubscription of a shared machine, the "
                                          f"same numbers on every machine).")(f)


def check_seed_option(ctx, param, value):
    """``--seed``: 0 .. 2**31-1 on every command and backend (one line and exit 2 otherwise)."""
    from ..options import check_seed
    return check_seed(value, "--seed")


def solver_options(f: Callable) -> Callable:
    """The run options every solving command takes (same names as ``geoshare_opt.solve``)."""
    decorators = [
        click.option("--time-limit", "time_limit", type=float, default=None, metavar="S",
                     help="Wall-clock limit in seconds per run (default: none). The best incumbent is kept."),
        click.option("--seed", type=int, default=0, show_default=True, callback=check_seed_option,
                     help="Random seed (seeded backends), 0 .. 2**31-1."),
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


def cluster_from(workers: int | None, scheduler: str | None, quiet: bool,
                 on_ready: Callable[[int], None] | None = None):
    """The ``fanout.Cluster`` the options ask for (``on_ready(tasks)`` once they are submitted: a progress bar
    starts then), or None (one job after another)."""
    if workers is None and scheduler is None:
        return None
    from ..fanout import Cluster
    return Cluster(workers=workers, scheduler=scheduler, quiet=quiet, on_ready=on_ready)


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


#: said on stderr when an instance's budget forces no sharing (analyze without --ratio/--max-classes)
SLACK_NOTE = ("the budget lets every tensor keep a class of its own, so a solve shares only where sharing lowers "
              "the objective (often nothing); set a budget")


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


class Ticker:
    """Shows that a long stage is alive from its first second, whatever news the stage itself gives: a line
    ``[elapsed] status``, first ``first`` seconds after the status was set (something that fails at once, e.g. bad
    input, leaves only its own line), then rewritten in place every second on a terminal, or one line every
    ``every`` seconds into a file or pipe. ``status`` may change at any time (``update``); ``say`` prints a line of
    its own without garbling the live one; ``stop`` pauses it, ``close`` ends it. A daemon thread does the ticking; silent when
    disabled."""

    def __init__(self, enabled: bool = True, stream=None, every: float = 10.0, first: float = 1.0):
        import threading
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = 1.0 if self.tty else every
        self.first = min(first, self.every)
        self.t0 = time.perf_counter()
        self.status: str | None = None
        self._next = math.inf
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        self._live = False

    def update(self, status: str | None) -> None:
        """Tick for ``status`` from now on (None: stop ticking until the next status)."""
        with self._lock:
            self.status = status
            self._next = time.monotonic() + self.first
        if self.enabled and status is not None and self._thread is None:
            import threading
            self._thread = threading.Thread(target=self._run, name="geoshare-ticker", daemon=True)
            self._thread.start()

    def say(self, line: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._clear()
            self.stream.write(f"[{time.perf_counter() - self.t0:6.1f}s] {line}\n")
            self.stream.flush()

    def stop(self) -> None:
        """No status until the next ``update`` (the live line is cleared)."""
        self.update(None)
        with self._lock:
            self._clear()

    def close(self) -> None:
        self.stop()
        self._wake.set()

    def _clear(self) -> None:
        if self._live:
            self.stream.write("\r\x1b[K")
            self._live = False

    def _run(self) -> None:
        while not self._wake.wait(min(0.1, self.first / 2)):
            with self._lock:
                if self.status is None or time.monotonic() < self._next:
                    continue
                self._next = time.monotonic() + self.every
                text = f"[{time.perf_counter() - self.t0:6.1f}s] {self.status}"
                if self.tty:
                    self.stream.write("\r\x1b[K" + text)
                    self._live = True
                else:
                    self.stream.write(text + "\n")
                self.stream.flush()


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
    if not path or path == "-":
        return
    from ..atomic import output_target
    target, is_stream = output_target(path)
    if is_stream:                 # /dev/stdout, a named pipe: written into, not replaced
        if not os.access(target, os.W_OK):
            raise InputError(f"cannot write {path}: permission denied")
        return
    parent = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(parent):
        raise InputError(f"cannot write {path}: directory {parent} does not exist")
    if os.path.isdir(path):
        raise InputError(f"cannot write {path}: it is a directory")
    if not os.access(parent, os.W_OK):
        raise InputError(f"cannot write {path}: directory {parent} is not writable")


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file (through links too); a path that does not exist yet is compared by name."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_overwriting_inputs(output: str | os.PathLike | None, inputs: Iterable, flag: str = "-o") -> None:
    """Bad input (exit 2, before any work) when an output file is one of the inputs, or an existing file inside an
    input directory (a model directory): writing it would destroy what the command reads. ``None`` and ``-``
    (stdout) are never inputs."""
    if not output or str(output) == "-":
        return
    for src in inputs:
        if not src or str(src) == "-":
            continue
        inside = os.path.isdir(src) and os.path.exists(output) and \
            os.path.commonpath([os.path.realpath(src), os.path.realpath(output)]) == os.path.realpath(src)
        if inside or _same_file(output, src):
            raise InputError(f"{flag} {output} is also an input of this command ({src}): refusing to overwrite it; "
                             "write the output elsewhere")


def refuse_replacing_inputs(outdir: str | os.PathLike | None, inputs: Iterable, flag: str = "-o") -> None:
    """Bad input (exit 2, before any work) when an input lies inside the output directory that the command
    replaces (``--force``): the new directory would delete it."""
    if not outdir or not os.path.exists(outdir):
        return
    root = os.path.realpath(outdir)
    for src in inputs:
        if src and os.path.commonpath([root, os.path.realpath(src)]) == root:
            raise InputError(f"{flag} {outdir} holds an input of this command ({src}): replacing the directory "
                             "would delete it; write the output elsewhere")


def spec_paths(spec: str) -> list[str]:
    """The files a spec reference reads: ``file.py`` of ``file.py:make``, or a model directory."""
    target, sep, _ = spec.rpartition(":")
    if sep and (target.endswith(".py") or os.sep in target or target.startswith(".")):
        return [target]
    return [spec] if os.path.isdir(spec) else []


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):      # replaced or closed: not a terminal
        return False


def emit_rows(payload: str, explicit: bool, table_shown: bool, how: str) -> None:
    """The rows' JSON on stdout, except on a terminal after their table, where thousands of JSON lines would bury
    it: one line on stderr says how to get them instead. ``explicit`` (an option asked for stdout) always prints;
    pipes and files always get the JSON."""
    if stdout_is_terminal() and table_shown and not explicit:
        from .app import err
        err(f"(the JSON is not printed on a terminal: redirect stdout, e.g. `| less` or `> rows.json`, {how})")
        return
    from .app import emit
    emit(payload)


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
