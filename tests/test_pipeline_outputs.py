"""``pipeline`` outputs that outlive the run: the spec options it was built with, rows saved as they are measured,
a reproducible default solve, the sidecar it keeps, and saying so when nothing is saved."""
import json
import time

import pytest
from random_instances import one_type

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from geoshare_opt import solve  # noqa: E402
from geoshare_opt.cli import cli  # noqa: E402
from geoshare_opt.instance import Instance  # noqa: E402

pipeline_mod = pytest.importorskip("geoshare_opt.pipeline")


def test_pipeline_records_the_spec_options_it_built_the_network_with(tmp_path):
    out = pipeline_mod.pipeline("digits-mlp", 0.5, solver="cpsat", baselines=("sequence",), outdir=tmp_path / "o",
                                spec_options={"batch_size": 64})
    assert out["spec_options"] == {"batch_size": 64}
    inst = Instance.load(tmp_path / "o" / "instance.json")
    assert inst.meta["model"]["spec"] == "digits-mlp"
    assert inst.meta["model"]["spec_options"] == {"batch_size": 64}
    tie_map = json.loads((tmp_path / "o" / "tiemap.json").read_text())
    assert tie_map["spec"] == "digits-mlp" and tie_map["spec_options"] == {"batch_size": 64}
    # the recorded options are what `evaluate` needs to measure the saved network again
    opts = [a for k, v in tie_map["spec_options"].items() for a in ("--spec-option", f"{k}={v}")]
    r = CliRunner().invoke(cli, ["evaluate", "digits-mlp", str(tmp_path / "o"), "-q", *opts])
    assert r.exit_code == 0, r.output
    saved = next(row for row in out["rows"] if row["colouring"] == "measured")        # the recommended colouring
    assert json.loads(r.stdout)["compressed"]["accuracy"] == pytest.approx(saved["metrics"]["accuracy"])


def test_a_stopped_pipeline_keeps_every_row_already_measured(tmp_path, monkeypatch):
    calls = []
    real = pipeline_mod.evaluate_model

    def evaluate_then_die(spec, model):      # original, solved, measured, then the process "dies"
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(spec, model)

    monkeypatch.setattr(pipeline_mod, "evaluate_model", evaluate_then_die)
    with pytest.raises(KeyboardInterrupt):
        pipeline_mod.pipeline("digits-mlp", 0.5, solver="cpsat", baselines=("sequence", "cycle", "random"),
                              outdir=tmp_path / "o")
    report = json.loads((tmp_path / "o" / "pipeline.json").read_text())
    assert report["complete"] is False
    assert [r["colouring"] for r in report["rows"]] == ["solved", "measured"]
    assert report["original"] and all(r["metrics"] for r in report["rows"])
    # what the solve produced is there too, so `apply` can redo the colouring later
    for name in ("instance.json", "result.json", "measured.json", "instance.curvature.safetensors"):
        assert (tmp_path / "o" / name).is_file()
    assert not list((tmp_path / "o").glob(".*"))                 # no temporary file left behind


def test_pipeline_report_is_complete_and_saved_at_the_end(tmp_path):
    r = CliRunner().invoke(cli, ["pipeline", "digits-mlp", "--solver", "cpsat", "--baselines", "sequence",
                                 "-o", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    saved = json.loads((tmp_path / "o" / "pipeline.json").read_text())
    assert saved == json.loads(r.stdout) and saved["complete"] is True
    assert (tmp_path / "o" / "model.safetensors").is_file() and "pipeline.json" in r.stderr


def test_pipeline_without_output_says_nothing_is_saved():
    r = CliRunner().invoke(cli, ["pipeline", "digits-mlp", "--solver", "cpsat", "--baselines", "sequence"])
    assert r.exit_code == 0, r.output
    assert "not saved" in r.stderr and "-o" in r.stderr


def test_pipeline_default_solve_has_no_wall_clock_limit(monkeypatch):
    seen = {}
    import geoshare_opt.api

    real = geoshare_opt.api.solve

    def spy(instance, solver, **kw):
        seen.update(kw, solver=solver)
        return real(instance, solver, **kw)

    monkeypatch.setattr(geoshare_opt.api, "solve", spy)
    out = pipeline_mod.pipeline("digits-mlp", 0.5, baselines=("sequence",))
    assert seen["solver"] == "auto" and seen["time_limit"] is None
    assert out["time_limit"] is None


def _signed_instance(n=24, k=5, density=0.6, seed=3, signed=True):
    return one_type(n, k, density, seed, signed, prefix="a", type_="a")


def test_auto_without_a_time_limit_gives_the_same_colouring_on_a_slow_machine(monkeypatch):
    """With no limit, auto runs work budgets (anneal moves, CP-SAT deterministic time): a machine 1000 times
    slower (every clock reading jumps) must not change the colouring, the bound or the termination. (The proof
    of this instance takes about 0.1 s: a wall-clock cap of 20 s on the slow machine cuts it short.)"""
    inst = _signed_instance()
    fast = solve(inst, "auto", seed=1)
    real = time.monotonic
    start = real()
    monkeypatch.setattr(time, "monotonic", lambda: start + 1000.0 * (real() - start))
    slow = solve(inst, "auto", seed=1)
    assert fast.termination == "optimal"
    assert slow.assignment == fast.assignment
    assert (slow.termination, slow.bound) == (fast.termination, fast.bound)


@pytest.mark.parametrize("kind, has_weights, has_file", [("full", True, True), ("diag", False, True),
                                                          ("none", False, False)])
def test_pipeline_sidecar_choice(tmp_path, kind, has_weights, has_file):
    from safetensors import safe_open
    pipeline_mod.pipeline("digits-mlp", 0.5, solver="cpsat", baselines=(), outdir=tmp_path / kind, sidecar=kind)
    side = tmp_path / kind / "instance.curvature.safetensors"
    assert side.is_file() == has_file
    if has_file:
        with safe_open(str(side), framework="np") as fh:
            keys = list(fh.keys())
        assert any(k.startswith("diag/") for k in keys)
        assert any(k.startswith("weight/") for k in keys) == has_weights
    r = CliRunner().invoke(cli, ["pipeline", "digits-mlp", "--sidecar", "bogus"])
    assert r.exit_code == 2


def test_auto_without_a_time_limit_gives_no_stage_a_wall_clock_limit(monkeypatch):
    """Every stage of a limit-free auto run stops on a work budget: the anneal on its move budget, the exact stage
    on colgen's work budget (non-negative weights) or, each CP-SAT sub-solve, on deterministic time (signed weights).
    A wall-clock cap (as before: 20 s for the proof) makes the answer depend on the machine's speed and load."""
    from ortools.sat.python import cp_model

    from geoshare_opt.solvers import auto
    limits, cpsat = [], []
    real_stage, real_solve = auto._stage, cp_model.CpSolver.solve

    def stage(ctx, instance, backend_cls, options):
        limits.append((backend_cls.name, options.time_limit, dict(options.native)))
        return real_stage(ctx, instance, backend_cls, options)

    def cp_solve(self, model, *args, **kwargs):
        cpsat.append((self.parameters.max_time_in_seconds, self.parameters.max_deterministic_time))
        return real_solve(self, model, *args, **kwargs)

    monkeypatch.setattr(auto, "_stage", stage)
    monkeypatch.setattr(cp_model.CpSolver, "solve", cp_solve)
    res = solve(_signed_instance(signed=False), "auto", seed=1)      # colgen: non-negative weights
    assert res.termination == "optimal"
    assert [name for name, _, _ in limits] == ["dsatur", "anneal", "colgen"]
    assert all(limit is None for _, limit, _ in limits)
    assert limits[-1][2]["work_limit"] == auto.DEFAULT_COLGEN_WORK
    limits.clear()
    res = solve(_signed_instance(), "auto", seed=1)                  # cpsat: signed weights
    assert res.termination == "optimal"
    assert [name for name, _, _ in limits] == ["dsatur", "anneal", "cpsat"]
    assert all(limit is None for _, limit, _ in limits)
    assert cpsat and all(wall == float("inf") and work == auto.DEFAULT_EXACT_WORK for wall, work in cpsat)


def test_analyze_diag_sidecar_is_half_the_full_one_and_apply_still_works(tmp_path):
    """``--sidecar diag`` drops the weight copy: enough for apply, and true-cost says what is missing."""
    runner = CliRunner()
    sizes = {}
    for kind in ("full", "diag"):
        r = runner.invoke(cli, ["analyze", "digits-mlp", "--ratio", "0.5", "--sidecar", kind, "-q",
                                "-o", str(tmp_path / f"{kind}.json")])
        assert r.exit_code == 0, r.output
        sizes[kind] = (tmp_path / f"{kind}.curvature.safetensors").stat().st_size
    assert sizes["diag"] < 0.55 * sizes["full"]
    r = runner.invoke(cli, ["solve", str(tmp_path / "diag.json"), "--solver", "cpsat", "-q", "-o",
                            str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["apply", "digits-mlp", str(tmp_path / "r.json"), "--instance", str(tmp_path / "diag.json"),
                            "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["solve", str(tmp_path / "diag.json"), "--solver", "cpsat", "--true-cost", "-q"])
    assert r.exit_code == 2 and "--sidecar full" in r.stderr
