"""Progress from the first second: a stage that gives no news of its own (loading a large model) still shows time
going by on stderr."""
import io
import time

import pytest

from geoshare_opt.cli.common import Ticker


def test_ticker_shows_a_silent_stage_is_alive():
    stream = io.StringIO()
    ticker = Ticker(stream=stream, every=0.05)
    ticker.say("load: loading the spec")
    ticker.update("load: loading the spec ...")
    time.sleep(0.4)
    ticker.update("analyze: diag 3/8")
    time.sleep(0.2)
    ticker.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("load: loading the spec")
    assert sum(line.endswith("loading the spec ...") for line in lines) >= 3
    assert lines[-1].endswith("analyze: diag 3/8")
    seconds = [float(line[1:line.index("s]")]) for line in lines]
    assert seconds == sorted(seconds)
    time.sleep(0.2)
    assert stream.getvalue().splitlines() == lines            # stopped: no more lines


def test_ticker_is_silent_when_disabled():
    stream = io.StringIO()
    ticker = Ticker(enabled=False, stream=stream, every=0.05)
    ticker.say("x")
    ticker.update("y")
    time.sleep(0.15)
    ticker.close()
    assert stream.getvalue() == ""


def test_analyze_shows_a_slow_spec_load_within_its_first_seconds(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from click.testing import CliRunner

    from geoshare_opt.cli import cli
    spec = tmp_path / "slow.py"
    spec.write_text("import time\nfrom geoshare_opt.specs.digits import make as digits\n\n"
                    "def make():\n    import sys\n    time.sleep(2.0)\n    sys.stderr.write('MAKING\\n')\n"
                    "    return digits()\n")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["analyze", "slow.py:make", "--ratio", "0.5", "-o", "s.json"])
    assert r.exit_code == 0, r.output
    lines = r.stderr.splitlines()
    loading = next(i for i, line in enumerate(lines) if "loading slow.py:make" in line)
    assert loading < lines.index("MAKING")
