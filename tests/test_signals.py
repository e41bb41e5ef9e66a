"""Signals on the real command line: SIGTERM handled like Ctrl-C, a second Ctrl-C during the write, Ctrl-C during
start-up, solver subprocesses and their temporary files, and exit 130/143 writing nothing."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from random_instances import one_type

from geoshare_opt.instance import Instance

REPO = Path(__file__).resolve().parents[1]


def _env(tmp_path, **extra):
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp_path / "tmp"), OMP_NUM_THREADS="1")
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env.update(extra)
    return env


def _start(args, tmp_path, **kw):
    # a fresh session: a test's signal reaches this process only, and background jobs' ignored SIGINT is reset
    return subprocess.Popen([sys.executable, "-m", "geoshare_opt.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(tmp_path), start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kw)


class _StderrLines:
    """Reads a process's stderr in a thread, so that a test can wait for a line without blocking."""

    def __init__(self, proc):
        import threading
        self.lines: list[str] = []
        self.thread = threading.Thread(target=lambda: self.lines.extend(iter(proc.stderr.readline, "")), daemon=True)
        self.thread.start()

    def text(self) -> str:
        self.thread.join(timeout=60)
        return "".join(self.lines)


class _StderrText:
    """Reads a process's stderr as it comes, also what progress bars write without a newline."""

    def __init__(self, proc):
        import threading
        self.chunks: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc):
        for chunk in iter(lambda: os.read(proc.stderr.fileno(), 4096), b""):
            self.chunks.append(chunk.decode(errors="replace"))

    def text_so_far(self) -> str:
        return "".join(self.chunks)

    def text(self) -> str:
        self.thread.join(timeout=60)
        return self.text_so_far()


def _wait_for(proc, predicate, timeout=60.0):
    t0 = time.monotonic()
    while not predicate():
        if proc.poll() is not None or time.monotonic() - t0 > timeout:
            out, errs = proc.communicate()
            pytest.fail(f"process ended or timed out first (rc {proc.returncode}): {errs[-2000:]}")
        time.sleep(0.05)


def _children(pid):
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if stat[stat.rfind(")") + 2:].split()[1] == str(pid):
                out.add(int(entry))
    return out


def _alive(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


def _signed(n, density, seed=0, k=6):
    return one_type(n, k, density, seed)


@pytest.fixture(scope="module")
def big_instance(tmp_path_factory):
    p = tmp_path_factory.mktemp("sig") / "big.json"
    _signed(300, 0.1).save(p)
    return p


def _handlers_installed(pid) -> bool:
    """Whether the command line's own SIGTERM handler is in place (Python installs none of its own)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


def test_sigterm_is_handled_like_ctrl_c_and_keeps_the_incumbent(tmp_path, big_instance):
    proc = _start(["solve", big_instance, "--solver", "anneal", "--time-limit", "60"], tmp_path)
    errors = _StderrLines(proc)
    _wait_for(proc, lambda: any("incumbent" in line for line in errors.lines))    # the solve is running
    proc.send_signal(signal.SIGTERM)
    out = proc.stdout.read()
    proc.wait(timeout=60)
    errs = errors.text()
    assert "Traceback" not in errs
    payload = json.loads(out)
    assert proc.returncode == 0 and payload["status"] == "feasible", errs
    assert payload["termination"] in ("interrupted", "completed") and payload["wall_time_s"] < 30


def test_a_second_ctrl_c_during_the_write_does_not_cut_the_result(tmp_path):
    """The first Ctrl-C stops the solve; more arriving while the (large) result is written are ignored: stdout
    and the -o file are whole JSON, exit 0."""
    p = tmp_path / "wide.json"
    n = 6000
    Instance.build([{"id": f"node-with-a-long-name-{i}", "type": "t"} for i in range(n)],
                   [(f"node-with-a-long-name-{i}", f"node-with-a-long-name-{i + 1}", 1.0) for i in range(n - 1)],
                   n).save(p)
    for target in ("-", tmp_path / "r.json"):
        proc = _start(["solve", p, "--solver", "anneal", "--time-limit", "60", "-o", target], tmp_path)
        errors = _StderrLines(proc)
        _wait_for(proc, lambda: any("incumbent" in line for line in errors.lines))    # the solve is running
        for _ in range(6):          # the first stops the run; the rest land while the result is written
            proc.send_signal(signal.SIGINT)
            time.sleep(0.05)
        out = proc.stdout.read()
        proc.wait(timeout=60)
        errs = errors.text()
        assert "Traceback" not in errs and proc.returncode == 0, errs[-2000:]
        payload = json.loads(out if target == "-" else Path(target).read_text())
        assert payload["status"] == "feasible" and len(payload["assignment"]) == n


def test_ctrl_c_during_start_up_is_one_line(tmp_path, big_instance):
    """Ctrl-C from the moment the command line's handlers are in place (before that the interpreter itself is
    starting, which no program can handle), through the imports of start-up, into the command."""
    for delay in (0.0, 0.02, 0.1, 0.3):
        proc = _start(["solve", big_instance, "--solver", "anneal", "--time-limit", "30"], tmp_path)
        _wait_for(proc, lambda: _handlers_installed(proc.pid), timeout=60)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, errs = proc.communicate(timeout=60)
        assert "Traceback" not in errs, (delay, errs)
        if proc.returncode == 0:           # the solve had started: its incumbent was written
            assert json.loads(out)["termination"] == "interrupted"
        else:
            assert proc.returncode == 130, (delay, proc.returncode, errs)
            assert out == "" and len(errs.strip().splitlines()) == 1, (delay, errs)


def test_exit_130_writes_no_result(tmp_path, monkeypatch):
    """A stop with nothing found: exit 130 (143 after SIGTERM) and no result anywhere, stdout or -o file."""
    from click.testing import CliRunner

    from geoshare_opt.cli import cli
    from geoshare_opt.solvers import default_registry
    from geoshare_opt.solvers.base import Backend

    class StoppedAtOnce(Backend):
        name, summary, exact, gives_bound, determinism = "stopped", "test", False, False, "deterministic"

        def run(self, instance, options, ctx):
            raise KeyboardInterrupt

    monkeypatch.setitem(default_registry._entries, "stopped", StoppedAtOnce)
    p = tmp_path / "i.json"
    _signed(5, 1.0).save(p)
    for target in ([], ["-o", str(tmp_path / "r.json")]):
        r = CliRunner().invoke(cli, ["solve", str(p), "--solver", "stopped", *target])
        assert r.exit_code == 130 and r.stdout == "" and "nothing written" in r.stderr
    assert not (tmp_path / "r.json").exists()


def _cbc_running(pid):
    return any("cbc" in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace").lower()
               for c in _children(pid) if Path(f"/proc/{c}/cmdline").exists())


def test_pulp_stop_ends_cbc_and_removes_its_files(tmp_path):
    """SIGTERM (Ctrl-C takes the same path: both raise KeyboardInterrupt) while CBC runs."""
    sig = signal.SIGTERM
    p = tmp_path / "dense.json"
    _signed(60, 0.9, k=8).save(p)
    proc = _start(["solve", p, "--solver", "pulp", "--time-limit", "120", "--native", "decompose=false"], tmp_path)
    _wait_for(proc, lambda: _cbc_running(proc.pid))
    cbc = _children(proc.pid)
    proc.send_signal(sig)
    out, errs = proc.communicate(timeout=60)
    assert "Traceback" not in errs
    assert proc.returncode == 0 and json.loads(out)["termination"] == "interrupted", errs[-2000:]
    time.sleep(0.2)
    assert not any(_alive(c) for c in cbc), "CBC outlived its parent"
    assert list((tmp_path / "tmp").iterdir()) == []            # no *-pulp.mps / .mst / .sol left


def test_pulp_killed_at_its_time_limit_leaves_no_files(tmp_path):
    """CBC overrunning its limit is killed (pulp_milp's watchdog); PuLP then leaves its model files behind."""
    p = tmp_path / "dense.json"
    _signed(60, 0.9, k=8).save(p)
    out = subprocess.run([sys.executable, "-m", "geoshare_opt.cli", "solve", str(p), "--solver", "pulp",
                          "--time-limit", "1", "--native", "decompose=false"], capture_output=True, text=True,
                         env=_env(tmp_path), timeout=120)
    payload = json.loads(out.stdout)
    assert payload["termination"] in ("time_limit", "optimal") and payload["status"] == "feasible"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_cpsat_log_goes_to_stderr(tmp_path):
    p = tmp_path / "i.json"
    _signed(20, 0.5, k=4).save(p)
    for solver in ("cpsat", "auto"):
        args = [sys.executable, "-m", "geoshare_opt.cli", "solve", str(p), "--solver", solver, "-vv", "--time-limit", "20"]
        if solver == "auto":            # the stage whose log is checked, whatever exact_solver_for picks
            args += ["--native", "exact_solver=cpsat"]
        out = subprocess.run(args, capture_output=True, text=True, env=_env(tmp_path), timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert json.loads(out.stdout)["solver"] == solver          # nothing but the result on stdout
        assert "CP-SAT" in out.stderr                                # the log is there, on stderr


torch_only = pytest.mark.skipif(__import__("importlib").util.find_spec("torch") is None, reason="needs torch")


@torch_only
def test_sigterm_during_analyze_leaves_no_file(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = _start(["analyze", "digits-mlp", "--estimator", "lanczos", "--lanczos-steps", "2000", "--ratio", "0.5",
                   "-o", out_dir / "a.json"], tmp_path)
    errors = _StderrText(proc)
    _wait_for(proc, lambda: "lanczos:" in errors.text_so_far(), timeout=120)   # the Lanczos passes running
    proc.send_signal(signal.SIGTERM)
    out = proc.stdout.read()
    proc.wait(timeout=60)
    errs = errors.text()
    assert proc.returncode == 143 and out == "", errs[-2000:]
    assert "Traceback" not in errs and errs.strip().splitlines()[-1].startswith("terminated")
    assert list(out_dir.iterdir()) == []                  # neither the instance nor its sidecar, nor a temporary


@torch_only
def test_sigterm_during_pipeline_keeps_the_rows_measured(tmp_path):
    report = tmp_path / "o" / "pipeline.json"

    def rows_done():
        try:
            return len(json.loads(report.read_text())["rows"]) >= 1
        except (OSError, ValueError):
            return False

    proc = _start(["pipeline", "digits-mlp", "--solver", "cpsat", "--recover", "150", "-o", tmp_path / "o"], tmp_path)
    _wait_for(proc, rows_done, timeout=90)
    proc.send_signal(signal.SIGTERM)
    out, errs = proc.communicate(timeout=60)
    assert proc.returncode == 143 and out == "", errs[-2000:]
    assert "Traceback" not in errs and "rows measured so far" in errs
    saved = json.loads(report.read_text())
    assert saved["complete"] is False and len(saved["rows"]) >= 1
    assert all(r["recovered"]["metrics"] for r in saved["rows"])
    assert not (tmp_path / "o" / "tiemap.json").exists()           # no network of a run that did not finish
