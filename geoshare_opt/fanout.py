"""Solver jobs run one after another, or fanned out on Dask distributed (the optional ``[distributed]`` extra;
nothing here imports Dask unless a cluster is asked for).

``run_jobs``: independent jobs (the runs of a solver comparison), each one task. ``run_chains``: independent chains
of dependent steps (a sweep's per-type sub-solves: each waits for its neighbour's, the warm start), each step one
task. ``Cluster(workers=N)`` starts a local cluster of ``N`` single-threaded worker processes for the call and closes
it after; ``Cluster(scheduler=ADDRESS)`` submits to a running cluster (``dask scheduler`` / ``dask worker``, a
``dask-jobqueue`` or Kubernetes cluster, ...), whose workers must have geoshare-opt installed. Answers are reported as
they finish, in completion order, and returned by position, so the caller's output keeps the serial order whatever
the workers did.

Failures: a worker that dies (killed, out of memory) loses only the tasks it was running: Dask reruns them on another
worker, and on a local cluster a task that has taken down one worker is rerun once (``allowed-failures`` 1: a second
death marks it failed, since the task itself is then the likely cause; ``LOCAL_CONFIG``); a running cluster applies
its own ``distributed.scheduler.allowed-failures`` (Dask's default: 3). A task that raises, or is given up, is
reported with the reason; every other answer is kept. Ctrl-C or SIGTERM (``KeyboardInterrupt``) cancels the tasks
not yet finished, closes the local cluster, and returns what was done.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from .errors import InputError

CONNECT_TIMEOUT_S = 10.0
LOCAL_CONFIG = {
    # worker deaths a task may cause on a local cluster before it is given up
    "distributed.scheduler.allowed-failures": 1,
    # one task per worker thread at a time: a worker's death then counts against the task it was running only, not
    # against tasks merely queued there (which a second death would otherwise give up as well)
    "distributed.scheduler.worker-saturation": 1.0,
    # the statistical profiler samples the task thread every 10 ms: a CP-SAT run took 13 % more CPU in a worker
    # with it, 6 % without (benchmarks/distributed/README.md, worker overhead)
    "distributed.worker.profile.enabled": False,
}


@dataclass(frozen=True)
class Cluster:
    """Where jobs run: ``workers`` local worker processes, or the running cluster at ``scheduler``."""
    workers: int | None = None
    scheduler: str | None = None
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    quiet: bool = False          # Dask's own warnings (a worker restarted, ...) silenced
    # called with the number of tasks once the cluster is up and they are submitted (a progress bar starts then)
    on_ready: Callable[[int], None] | None = field(default=None, compare=False)

    def __post_init__(self):
        if self.workers is not None and self.scheduler is not None:
            raise InputError("give either --workers (a local cluster) or --scheduler (a running one), not both")
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or self.workers < 1):
            raise InputError(f"--workers must be a positive integer, got {self.workers!r}")
        if self.scheduler is not None and not str(self.scheduler).strip():
            raise InputError("--scheduler needs an address such as tcp://host:8786")

    def describe(self) -> str:
        return f"{self.workers} local Dask workers" if self.workers else f"the Dask cluster at {self.scheduler}"


@dataclass
class Outcome:
    """What came back: ``answers`` and ``failures`` (a reason) by job index; ``interrupted`` after Ctrl-C/SIGTERM,
    when the jobs in neither dict were cancelled."""
    answers: dict[int, Any] = field(default_factory=dict)
    failures: dict[int, str] = field(default_factory=dict)
    interrupted: bool = False


def run_jobs(fn: Callable[..., Any], jobs: Sequence[tuple], cluster: Cluster | None = None, *,
             on_done: Callable[[int, Any], bool | None] | None = None, names: Sequence[str] | None = None) -> Outcome:
    """``fn(*job)`` for every job; ``on_done(index, answer)`` as each finishes (returning True stops the serial
    loop: the caller saw an interrupted run). ``fn`` must be importable by the workers (a module-level function of
    an installed package) and its arguments and answer picklable. ``names`` label the tasks (Dask keys)."""
    if cluster is None:
        return _run_serial(fn, jobs, on_done)
    return _run_on_dask(fn, jobs, cluster, on_done, names)


def _run_serial(fn, jobs, on_done) -> Outcome:
    out = Outcome()
    try:
        for i, job in enumerate(jobs):
            out.answers[i] = fn(*job)
            if on_done is not None and on_done(i, out.answers[i]):
                out.interrupted = True
                break
    except KeyboardInterrupt:
        out.interrupted = True
    return out


def _run_on_dask(fn, jobs, cluster: Cluster, on_done, names) -> Outcome:
    from distributed import as_completed

    out = Outcome()
    with connected(cluster) as client:
        keys = _task_keys(names, len(jobs))
        futures = {client.submit(fn, *job, key=key, pure=False): i for i, (job, key) in enumerate(zip(jobs, keys))}
        if cluster.on_ready is not None:
            cluster.on_ready(len(futures))
        try:
            for future in as_completed(list(futures)):
                i = futures[future]
                try:
                    out.answers[i] = future.result()
                except KeyboardInterrupt:
                    raise
                except Exception as exc:  # noqa: BLE001 (a task's failure is that job's answer, not the run's)
                    out.failures[i] = failure_reason(exc)
                    continue
                if on_done is not None:
                    on_done(i, out.answers[i])
        except KeyboardInterrupt:
            out.interrupted = True
            client.cancel(list(futures), force=True)
    return out


@dataclass
class ChainOutcome:
    """What came back from ``run_chains``: every chain's last state (its start when no step finished), the first
    failed step of a chain with its exception (``chain -> (step, exception)``; ``failure_reason`` says it in one
    line), and ``interrupted`` after Ctrl-C/SIGTERM."""
    states: list[Any]
    steps_done: list[int]
    failures: dict[int, tuple[int, BaseException]] = field(default_factory=dict)
    interrupted: bool = False


def run_chains(step: Callable[..., Any], chains: Sequence[tuple[Any, Sequence[tuple]]], cluster: Cluster, *,
               on_done: Callable[[int, int, Any], None] | None = None,
               names: Sequence[str] | None = None) -> ChainOutcome:
    """Independent chains of dependent steps as Dask tasks: for a chain ``(start, steps)``, ``state = step(state,
    *args)`` for each ``args`` of ``steps`` in order (each step a task that waits for the one before it; the chains
    run side by side). ``on_done(chain, step, state)`` as each step finishes. A failed step stops its chain only.
    ``step`` must be importable by the workers, states and arguments picklable. (The serial sweep keeps its own
    loop: one time budget shared by every point of every type.)"""
    from distributed import as_completed

    out = ChainOutcome(states=[start for start, _ in chains], steps_done=[0] * len(chains))
    with connected(cluster) as client:
        keys = _task_keys(names, len(chains))
        where: dict[Any, tuple[int, int]] = {}
        for c, ((start, steps), key) in enumerate(zip(chains, keys)):
            state = start
            for s, args in enumerate(steps):
                state = client.submit(step, state, *args, key=f"{key}-step{s}", pure=False)
                where[state] = (c, s)
        if cluster.on_ready is not None:
            cluster.on_ready(len(where))
        try:
            for future in as_completed(list(where)):
                c, s = where[future]
                try:
                    state = future.result()
                except KeyboardInterrupt:
                    raise
                except Exception as exc:  # noqa: BLE001 (the chain stops there; the others go on)
                    if c not in out.failures or s < out.failures[c][0]:   # its later steps fail with it
                        out.failures[c] = (s, exc)
                    continue
                if s + 1 > out.steps_done[c]:
                    out.states[c], out.steps_done[c] = state, s + 1
                if on_done is not None:
                    on_done(c, s, state)
        except KeyboardInterrupt:
            out.interrupted = True
            client.cancel(list(where), force=True)
    return out


def failure_reason(exc: BaseException) -> str:
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        return "its worker process died each time it ran (KilledWorker): the task is the likely cause"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _task_keys(names: Sequence[str] | None, n: int) -> list[str]:
    """Readable Dask keys (shown by the dashboard), unique per call: a running cluster may hold other calls' tasks."""
    import uuid

    run = uuid.uuid4().hex[:8]
    clean = ["".join(c if c.isalnum() or c in "-_." else "_" for c in name) for name in (names or ["job"] * n)]
    return [f"geoshare-{name}-{i}-{run}" for i, name in enumerate(clean)]


@contextlib.contextmanager
def connected(cluster: Cluster) -> Iterator[Any]:
    """A Dask client on a local cluster started now (closed on exit) or on the running cluster at the address."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("--workers/--scheduler need Dask distributed: pip install 'geoshare-opt[distributed]'") \
            from None
    level = logging.ERROR if cluster.quiet else logging.WARNING
    with _dask_log_level(level):
        if cluster.scheduler is not None:
            client = _client_at(Client, cluster)
            try:
                yield client
            finally:
                client.close()
            return
        with dask.config.set(LOCAL_CONFIG):
            local = LocalCluster(n_workers=cluster.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                 dashboard_address=None, silence_logs=level)
        try:
            with Client(local) as client:
                yield client
        finally:
            local.close()


def _client_at(client_cls, cluster: Cluster):
    address = str(cluster.scheduler).strip()
    try:
        return client_cls(address, timeout=cluster.connect_timeout_s)
    except (OSError, ValueError, TypeError) as exc:   # refused, unreachable, timed out, malformed address
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot reach the Dask scheduler at {address}: {text}") from None


@contextlib.contextmanager
def _dask_log_level(level: int):
    loggers = [logging.getLogger(name) for name in ("distributed", "dask")]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, old in zip(loggers, before):
            lg.setLevel(old)
