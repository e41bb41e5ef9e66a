"""``--spec-option KEY=VALUE``: keyword arguments of the spec's make() on every command that loads a spec."""
from __future__ import annotations

import json
import textwrap

import pytest

torch = pytest.importorskip("torch")
from click.testing import CliRunner  # noqa: E402

from geoshare_opt.cli import cli  # noqa: E402
from geoshare_opt.errors import InputError  # noqa: E402
from geoshare_opt.instance import Instance  # noqa: E402
from geoshare_opt.specs import load_spec  # noqa: E402

SPEC_FILE = textwrap.dedent("""
    import torch
    from torch import nn

    def make(depth=2, width=6):
        torch.manual_seed(0)
        layers = [nn.Linear(4, width), nn.Tanh()]
        for _ in range(depth):
            layers += [nn.Linear(width, width), nn.Tanh()]
        model = nn.Sequential(*layers, nn.Linear(width, 3))
        data = [torch.randn(5, 4) for _ in range(2)]
        return {"model": model, "batches": data, "loss": lambda m, b: m(b).pow(2).mean()}
""")


@pytest.fixture
def user_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deepspec.py").write_text(SPEC_FILE)
    return "deepspec.py:make"


def test_user_make_gets_the_options_and_unknown_ones_are_refused(user_spec):
    assert len(load_spec(user_spec).model) == 7
    assert len(load_spec(user_spec, depth=4).model) == 11
    with pytest.raises(InputError, match=r"unknown option 'height' \(accepts depth, width\)"):
        load_spec(user_spec, height=3)


def test_analyze_passes_spec_options_and_records_them(user_spec, tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["analyze", user_spec, "--spec-option", "depth=4", "--spec-option", "width=5",
                              "-o", "d.json", "--max-classes", "2", "-q"])
    assert res.exit_code == 0, res.output
    inst = Instance.load(tmp_path / "d.json")
    assert len(inst.nodes) == 4 and all(n.params == 25 for n in inst.nodes)   # depth 4 of 5x5, not 2 of 6x6
    assert inst.meta["model"]["spec_options"] == {"depth": 4, "width": 5}
    default = runner.invoke(cli, ["analyze", user_spec, "--max-classes", "2", "-q"])
    assert default.exit_code == 0 and len(Instance.loads(default.stdout).nodes) == 2
    assert "spec_options" not in Instance.loads(default.stdout).meta["model"]


@pytest.mark.parametrize("command", ["analyze", "evaluate", "pipeline"])
@pytest.mark.parametrize("option, needle", [("depth", "--spec-option expects KEY=VALUE, got 'depth'"),
                                            ("height=3", "unknown option 'height'")])
def test_bad_spec_options_exit_2_in_one_line(user_spec, tmp_path, command, option, needle):
    res = CliRunner().invoke(cli, [command, user_spec, "--spec-option", option, "-q"])
    assert res.exit_code == 2, res.output
    assert needle in res.stderr and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deepspec.py"]


def test_apply_evaluate_recover_need_the_same_options(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    opts = ["--spec-option", "depth=3", "--spec-option", "hidden=16"]
    steps = [["analyze", "digits-mlp", *opts, "-o", "x.json", "--ratio", "0.3", "-q"],
             ["solve", "x.json", "--solver", "dsatur", "-o", "r.json", "-q"],
             ["apply", "digits-mlp", "r.json", "--instance", "x.json", *opts, "-o", "out", "-q"],
             ["evaluate", "digits-mlp", "out", *opts, "-q"],
             ["recover", "digits-mlp", "out", "--steps", "2", *opts, "-q"]]
    for args in steps:
        res = runner.invoke(cli, args)
        assert res.exit_code == 0, (args, res.output)
    assert json.loads(res.stdout)["output"].endswith("out-recovered")
    # the default digits-mlp is another network: refused, nothing written
    res = runner.invoke(cli, ["apply", "digits-mlp", "r.json", "--instance", "x.json", "-o", "out2", "-q"])
    assert res.exit_code == 2 and "shape" in res.stderr and not (tmp_path / "out2").exists()
    res = runner.invoke(cli, ["evaluate", "digits-mlp", "out", "-q"])
    assert res.exit_code == 2 and "fingerprint" in res.stderr
