"""``pipeline`` end to end on the real digits MLP (seconds), and its refusals before any work is done."""
import json

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from geoshare_opt.cli import cli  # noqa: E402
from geoshare_opt.errors import InputError  # noqa: E402

frontend = pytest.importorskip("geoshare_opt.frontend")
pipeline_mod = pytest.importorskip("geoshare_opt.pipeline")


@pytest.fixture(scope="module")
def digits():
    from geoshare_opt.specs import load_spec
    return load_spec("digits-mlp")


def test_pipeline_tie_compares_solved_with_every_heuristic_at_the_same_budget(digits, tmp_path):
    out = pipeline_mod.pipeline(digits, 0.5, solver="cpsat", mode="tie", time_limit=10,
                                outdir=tmp_path / "c", baselines=("sequence", "cycle", "sandwich", "random"))
    rows = {r["colouring"]: r for r in out["rows"]}
    assert set(rows) == {"solved", "measured", "sequence", "cycle", "sandwich", "random"}
    budget = out["instance"]["max_params"]
    for r in rows.values():
        assert r["stored_params"] <= budget
        assert r["stored_params"] == rows["solved"]["stored_params"]          # same classes per type
        assert set(r["metrics"]) == set(out["original"])
    assert rows["solved"]["shareable_removed"] >= 0.5 - 1e-9
    assert rows["solved"]["predicted_cost"] >= 0.0                              # curvature-weighted merge cost
    assert rows["cycle"]["pattern"] == {"hidden:128x128": "0 1 0 1"}          # layer order, 2 classes
    assert out["best_heuristic"]["metric"] == "accuracy"
    assert {"analyze", "solve", "apply", "evaluate", "total"} <= set(out["times_s"])
    # the recommended (measured) colouring is saved; it reloads to the metric the pipeline measured
    assert out["recommended"]["colouring"] == "measured" and out["refine"]["start"] in rows
    from geoshare_opt.materialize import load_compressed
    model = load_compressed(tmp_path / "c", digits)
    assert digits.metrics(model)["accuracy"] == pytest.approx(rows["measured"]["metrics"]["accuracy"])
    assert (tmp_path / "c" / "instance.json").exists() and (tmp_path / "c" / "result.json").exists()
    # the output directory is self-contained: `apply` finds the instance (and its sidecar) beside the result
    r = CliRunner().invoke(cli, ["apply", "digits-mlp", str(tmp_path / "c" / "measured.json"), "-o",
                                 str(tmp_path / "again"), "--quiet"])
    assert r.exit_code == 0, r.output
    again = load_compressed(tmp_path / "again", digits)
    x = torch.randn(3, 64)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))


def test_pipeline_refuses_bad_input_before_working(tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, ["pipeline", "digits-mlp", "--ratio", "1.2"])
    assert r.exit_code == 2
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("keep")
    r = runner.invoke(cli, ["pipeline", "digits-mlp", "-o", str(busy), "--quiet"])
    assert r.exit_code == 2 and "not empty" in r.stderr and (busy / "x").read_text() == "keep"
    with pytest.raises(InputError, match="baseline kind"):
        pipeline_mod.pipeline("digits-mlp", 0.5, baselines=["zigzag"])


def test_cli_pipeline_basis_json_and_table(tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, ["pipeline", "digits-mlp", "--ratio", "0.5", "--mode", "basis", "--solver", "cpsat",
                            "--time-limit", "10", "--baselines", "adjacent,sandwich"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    names = [row["colouring"] for row in out["rows"]]
    assert names == ["solved", "measured", "adjacent", "sandwich", "none"]  # none = per-layer low rank
    for row in out["rows"]:
        assert row["shareable_removed"] >= 0.5 - 1e-9
        assert row["metrics"]["accuracy"] > 0.5                             # shared bases keep digits working
    assert "colouring" in r.stderr and "time per stage" in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("recommended colouring (measured) is ") and "the best heuristic" in last
