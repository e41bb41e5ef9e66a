"""Independent jobs on Dask distributed (``geoshare_opt.fanout``): ``compare --workers 2`` gives the serial rows, a
running cluster through ``--scheduler``, a worker killed in a task loses no other answer and its task is rerun once,
bad cluster options are one line (exit 2), SIGTERM cancels the runs left and writes the finished rows."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")
import psutil  # noqa: E402  (a dependency of distributed)
from click.testing import CliRunner  # noqa: E402

from geoshare_opt.cli import cli  # noqa: E402
from geoshare_opt.compare import compare  # noqa: E402
from geoshare_opt.errors import InputError  # noqa: E402
from geoshare_opt.fanout import Cluster, connected, run_chains, run_jobs  # noqa: E402

import fanout_tasks  # noqa: E402  (tests/ is on sys.path, and so on the workers')

REPO = Path(__file__).resolve().parents[1]
INSTANCES = [str(REPO / "instances" / name) for name in
             ("tiny_all_caps.json", "tiny_signed_two_types.json", "dimacs_myciel3_K3_soft.json")]
SOLVERS = ["dsatur", "anneal", "cpsat"]          # deterministic, seeded, seeded with threads=1


def same_rows(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert {k: v for k, v in x.items() if k != "wall_time_s"} == {k: v for k, v in y.items() if k != "wall_time_s"}


def test_compare_on_two_local_workers_equals_serial():
    serial = compare(INSTANCES, SOLVERS, repeats=2, seed=5)
    res = CliRunner().invoke(cli, ["compare", *INSTANCES, "--solvers", ",".join(SOLVERS), "--repeats", "2",
                                   "--seed", "5", "--workers", "2"])
    assert res.exit_code == 0, res.output
    same_rows(json.loads(res.stdout), serial)
    assert "18/18" in res.stderr                       # the bar counted every run as its future finished


def test_compare_on_a_running_scheduler():
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as running:
        parallel = compare(INSTANCES[:2], ["dsatur", "cpsat"], cluster=Cluster(scheduler=running.scheduler_address))
        assert len(running.scheduler.tasks) == 0      # our tasks released: the cluster is left as it was
    same_rows(parallel, compare(INSTANCES[:2], ["dsatur", "cpsat"]))


def test_dead_worker_costs_only_its_task(tmp_path):
    jobs = [("square", i) for i in range(4)] + [("die_once", 5), ("die_always", 6), ("fail", 7)]
    done = []
    out = run_jobs(fanout_tasks.run, [(kind, x, str(tmp_path / "marker")) for kind, x in jobs], Cluster(workers=2),
                   on_done=lambda i, answer: done.append(i))
    assert out.answers == {0: 0, 1: 1, 2: 4, 3: 9, 4: 25}        # die_once was rerun after its worker died
    assert sorted(done) == [0, 1, 2, 3, 4]
    assert set(out.failures) == {5, 6}
    assert "KilledWorker" in out.failures[5]                     # died twice: given up after one rerun
    assert out.failures[6] == "ValueError: no answer for 7"
    assert not out.interrupted


def test_chains_run_their_steps_in_order_and_stop_at_a_failed_step():
    from distributed import LocalCluster
    chains = [(0, [("add",), ("add",), ("add",)]), (10, [("add",), ("fail",), ("add",)])]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as running:
        seen = []
        parallel = run_chains(fanout_tasks.step, chains, Cluster(scheduler=running.scheduler_address),
                              on_done=lambda c, s, state: seen.append((c, s, state)))
    assert sorted(seen) == [(0, 0, 1), (0, 1, 2), (0, 2, 3), (1, 0, 11)]
    assert parallel.states == [3, 11] and parallel.steps_done == [3, 1]
    step, exc = parallel.failures[1]
    assert step == 1 and str(exc) == "step failed at state 11" and not parallel.interrupted


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers must be a positive integer"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "not both"),
    (["--scheduler", "nonsense://where:1"], "cannot reach the Dask scheduler at nonsense://where:1"),
])
def test_bad_cluster_options_are_one_line(args, message):
    res = CliRunner().invoke(cli, ["compare", INSTANCES[0], "--solvers", "dsatur", *args])
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and message in res.stderr and not res.stdout


def test_unreachable_scheduler_is_input_error():
    with pytest.raises(InputError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9: Timed out"):
        with connected(Cluster(scheduler="tcp://127.0.0.1:9", connect_timeout_s=0.5)):
            pass


def test_sigterm_cancels_the_rest_and_writes_the_finished_rows(tmp_path):
    out = tmp_path / "rows.json"
    cmd = [sys.executable, "-m", "geoshare_opt.cli", "compare", str(REPO / "instances" / "dimacs_queen5_5_K4_soft.json"),
           "--solvers", "cpsat", "--repeats", "6", "--time-limit", "4", "--workers", "2", "--json", str(out)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        children = []
        for line in proc.stderr:                        # the first finished run
            children = children or psutil.Process(proc.pid).children(recursive=True)
            if "repeat" in line or time.monotonic() > deadline:
                break
        children = psutil.Process(proc.pid).children(recursive=True) or children
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, rest
    rows = json.loads(out.read_text())
    finished = [r for r in rows if r["termination"] != "interrupted"]
    assert len(rows) == 6 and 1 <= len(finished) < 6
    assert all(r["status"] == "feasible" for r in finished)
    assert "the comparison stopped" in rest
    _, alive = psutil.wait_procs(children, timeout=10)     # workers, nannies' helpers, the resource tracker
    assert children and not alive


def without_times(value):
    """A sweep payload without its wall times (everything else must repeat)."""
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if "time" not in k}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def test_sweep_on_two_local_workers_equals_serial():
    from geoshare_opt import sweep
    path = str(REPO / "instances" / "tiny_signed_two_types.json")
    serial = sweep(path, "cpsat").to_dict()
    res = CliRunner().invoke(cli, ["sweep", path, "--solver", "cpsat", "--workers", "2", "--json", "-"])
    assert res.exit_code == 0, res.output
    parallel = json.loads(res.stdout)
    assert without_times(parallel) == without_times(serial)
    assert serial["complete"] and len(serial["types"]) == 2
