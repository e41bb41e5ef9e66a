"""Held-out audit of issue 14, signals: a Ctrl-C or SIGTERM that lands inside an import or a numba compilation
(where raising it left numpy half-imported: `analyze` then ended in exit 1 with "cannot load module more than once"
or a RecursionError, or the stop was printed and dropped by a ctypes callback and the solve ran on to its end), and
one that lands while the handlers are being installed."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# the module's body asks for a stop and keeps running Python for a while: the stop lands inside the import
STOPPING_BODY = """
import os, signal, time
os.kill(os.getpid(), signal.{sig})
t0 = time.monotonic()
while time.monotonic() - t0 < 0.3:
    pass
DONE = True
"""

# the probes start as a program in a terminal does: a test run in the background inherits SIGINT ignored
PROBE = """
import importlib.util, signal, sys, time, types
signal.signal(signal.SIGINT, signal.default_int_handler)
from geoshare_opt.cli import signals
signals.install()
path = sys.argv[1]
namespace = {}
try:
    if sys.argv[2] == "import":               # the import machinery's frames are on the stack
        spec = importlib.util.spec_from_file_location("stopping", path)
        module = importlib.util.module_from_spec(spec)
        namespace = module.__dict__
        sys.modules["stopping"] = module
        spec.loader.exec_module(module)
    else:                                     # no import: only the file name says numba (as in its compiler)
        exec(compile(open(path).read(), path, "exec"), namespace)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 20:
        pass
    print("never stopped")
except KeyboardInterrupt:                     # the body's last statement sets DONE: was it cut short?
    print("stopped", "after" if namespace.get("DONE") else "inside", signals.exit_code())
"""


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("where", ["import", "numba"])
def test_a_stop_inside_an_import_or_a_compilation_waits_for_it_to_return(tmp_path, sig, where):
    folder = tmp_path / ("numba" if where == "numba" else "pkg")
    folder.mkdir()
    body = folder / "stopping.py"
    body.write_text(STOPPING_BODY.format(sig=sig))
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    out = subprocess.run([sys.executable, str(script), str(body), where], capture_output=True, text=True,
                         timeout=60, env=dict(os.environ, PYTHONPATH=str(REPO)))
    expected = 130 if sig == "SIGINT" else 143
    assert out.stdout.split() == ["stopped", "after", str(expected)], (out.stdout, out.stderr[-2000:])
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr


def test_a_stop_while_the_handlers_are_installed_is_one_line(monkeypatch, capsys, tmp_path):
    from geoshare_opt.cli import main, signals

    def interrupted():
        raise KeyboardInterrupt           # Python's own handler, before ours is in place

    monkeypatch.setattr(signals, "install", interrupted)
    with pytest.raises(SystemExit) as exc:
        main(["validate", str(tmp_path / "x.json")])
    assert exc.value.code == 130
    assert capsys.readouterr().err == "interrupted: during start-up\n"



API_PROBE = """
import importlib, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
import numpy as np
from geoshare_opt import Instance, solve
from geoshare_opt.solvers import Registry
from geoshare_opt.solvers.base import Backend, Outcome

class ImportsOnFirstUse(Backend):          # as the real backends do with their solver libraries
    name, summary, exact, gives_bound, determinism = "lazy", "test double", False, False, "deterministic"

    def run(self, instance, options, ctx):
        ctx.offer(np.zeros(len(instance.nodes), dtype=np.int64))
        importlib.import_module("stopping")
        while True:
            pass                           # the stop must land here, after the import

sys.path.insert(0, sys.argv[1])
registry = Registry({}, entry_points=False)
registry.register("lazy", ImportsOnFirstUse)
inst = Instance.build([{"id": "a", "type": "t"}, {"id": "b", "type": "t"}], [("a", "b", 1.0)], 1)
res = solve(inst, "lazy", registry=registry)
print(res.termination, res.status, "after" if getattr(sys.modules.get("stopping"), "DONE", False) else "inside")
"""


def test_a_ctrl_c_in_a_first_solve_import_waits_for_it_and_solve_returns(tmp_path):
    """Python's own handler (a program calling ``solve``): a Ctrl-C raised inside an import left the library
    half-imported, and CPython then killed the process by SIGINT at exit although ``solve`` had returned."""
    (tmp_path / "stopping.py").write_text(STOPPING_BODY.format(sig="SIGINT"))
    script = tmp_path / "probe.py"
    script.write_text(API_PROBE)
    out = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert out.stdout.split() == ["interrupted", "feasible", "after"], (out.stdout, out.stderr[-2000:])
