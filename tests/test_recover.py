"""Recovery after sharing (issue 6): ties and shared bases survive training, the calibration loss falls, lora
corrections are counted and saved, save -> load gives the same outputs, runs repeat with a seed, bad input is
refused with nothing written; ``recover`` and ``pipeline --recover`` end to end."""
import json

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from geoshare_opt.cli import cli  # noqa: E402
from geoshare_opt.errors import InputError  # noqa: E402
from geoshare_opt.materialize import (CorrectedBasisLinear, CorrectedLinear, apply, load_compressed,  # noqa: E402
                                      parameter_report, recover, save_compressed)
from geoshare_opt.materialize.recover import recovered_tie_map, split_batches  # noqa: E402
from geoshare_opt.specs import load_spec  # noqa: E402
from materialize_helpers import curvature_for, make_instance, make_result  # noqa: E402

SPEC = "tests/recover_helpers.py:make"
OTHER = "tests/recover_helpers.py:make_other"
X = torch.randn(7, 6, generator=torch.Generator().manual_seed(9))
GROUPS = {"hidden.0.weight": 0, "hidden.1.weight": 0, "hidden.2.weight": 1, "hidden.3.weight": 0,
          "up.0.weight": 2, "up.1.weight": 2, "down.0.weight": 3, "down.1.weight": 4}


@pytest.fixture()
def spec():
    return load_spec(SPEC)


def compress(spec, mode="tie"):
    inst = make_instance(spec.model)
    curv = curvature_for(spec.model)
    model, report = apply(spec.model, inst, make_result(inst, GROUPS), mode, curv,
                          ratio=0.4 if mode == "basis" else None, spec=SPEC)
    return model, report


def shared_tensor(module):
    return getattr(module, module.shared) if hasattr(module, "shared") else module.weight


def test_distill_keeps_ties_and_lowers_the_calibration_loss(spec):
    model, _ = compress(spec, "tie")
    before = parameter_report(model)["params"]
    w0 = model.hidden[0].weight.detach().clone()
    rep = recover(model, spec, steps=40, lr=1e-2)
    h = model.hidden
    assert h[0].weight is h[1].weight is h[3].weight                      # one Parameter object, still
    assert h[0].weight.data_ptr() == h[3].weight.data_ptr() != h[2].weight.data_ptr()
    assert model.up[0].weight is model.up[1].weight
    assert not torch.equal(h[0].weight.detach(), w0)                      # it was trained
    assert parameter_report(model)["params"] == before == rep.parameters["after"]
    assert rep.loss_after < 0.5 * rep.loss_before
    assert rep.heldout_before is not None and rep.heldout_after < rep.heldout_before
    assert rep.steps == 40 and rep.train_s > 0 and rep.curve[-1][0] == 40
    assert spec.model.hidden[0].weight is not spec.model.hidden[1].weight  # the teacher is untouched


def test_distill_keeps_shared_bases(spec):
    model, _ = compress(spec, "basis")
    before = parameter_report(model)["params"]
    rep = recover(model, spec, steps=30, lr=1e-2)
    h = model.hidden
    assert shared_tensor(h[0]) is shared_tensor(h[1]) is shared_tensor(h[3])
    assert shared_tensor(h[0]).data_ptr() == shared_tensor(h[3]).data_ptr()
    assert h[0].weight_out.data_ptr() != h[3].weight_out.data_ptr() or h[0].shared == "weight_out"
    assert parameter_report(model)["params"] == before
    assert rep.loss_after < rep.loss_before


@pytest.mark.parametrize("mode", ["tie", "basis"])
def test_lora_adds_exactly_the_corrections_and_freezes_the_shared_tensors(spec, mode, tmp_path):
    model, report = compress(spec, mode)
    before = parameter_report(model)["params"]
    with torch.no_grad():
        y0 = model(X)
    shared = shared_tensor(model.hidden[0]).detach().clone()
    rep = recover(model, spec, steps=30, lr=1e-2, method="lora", rank=2)
    members = rep.corrections["members"]
    if mode == "tie":            # the tied classes of two or more: hidden 0/1/3 and up 0/1
        assert set(members) == {"hidden.0.weight", "hidden.1.weight", "hidden.3.weight", "up.0.weight",
                                "up.1.weight"}
        assert isinstance(model.hidden[0], CorrectedLinear)
    else:                        # every shared-basis layer, single-member classes included
        assert len(members) == 8 and isinstance(model.hidden[0], CorrectedBasisLinear)
    added = sum(2 * (model.get_submodule(m[:-7]).in_features + model.get_submodule(m[:-7]).out_features)
                for m in members)
    assert rep.parameters["added"] == added == parameter_report(model)["params"] - before
    assert parameter_report(model)["correction_params"] == added
    assert torch.equal(shared_tensor(model.hidden[0]).detach(), shared)    # frozen
    assert shared_tensor(model.hidden[0]) is shared_tensor(model.hidden[3])
    assert rep.loss_after < rep.loss_before
    assert rep.trainable_params == added
    assert not torch.equal(model(X).detach(), y0)
    # saved with a version-2 tie map that rebuilds the corrections
    out = save_compressed(model, tmp_path / "lora", recovered_tie_map(report.tie_map, model, rep))
    tmap = json.loads((out / "tiemap.json").read_text())
    assert tmap["version"] == 2 and tmap["corrections"]["rank"] == 2 and tmap["recovery"][0]["method"] == "lora"
    assert tmap["parameters"]["after"]["params"] == before + added
    loaded = load_compressed(out, spec)
    with torch.no_grad():
        assert torch.equal(loaded(X), model(X))
    assert shared_tensor(loaded.hidden[0]) is shared_tensor(loaded.hidden[3])
    assert parameter_report(loaded)["params"] == before + added


def test_lora_starts_from_the_compressed_network(spec):
    """B is zero at the start: the loss before recovery is the compressed network's, corrections or not."""
    a, _ = compress(spec)
    b, _ = compress(spec)
    ra = recover(a, spec, steps=1, lr=1e-3)
    rb = recover(b, spec, steps=1, lr=1e-3, method="lora")
    assert ra.loss_before == pytest.approx(rb.loss_before, rel=1e-6)


def test_recovered_network_saves_and_reloads_identically(spec, tmp_path):
    model, report = compress(spec, "tie")
    rep = recover(model, spec, steps=10, lr=1e-2)
    out = save_compressed(model, tmp_path / "r", recovered_tie_map(report.tie_map, model, rep))
    tmap = json.loads((out / "tiemap.json").read_text())
    assert tmap["version"] == 1 and "corrections" not in tmap       # distill adds no tensors: v1 map
    loaded = load_compressed(out, spec)
    with torch.no_grad():
        assert torch.equal(loaded(X), model(X))
    assert loaded.hidden[0].weight is loaded.hidden[3].weight


@pytest.mark.parametrize("method", ["distill", "lora"])
def test_deterministic_with_a_seed(spec, method):
    runs = []
    for seed in (0, 0, 1):
        model, _ = compress(spec)
        recover(model, spec, steps=12, lr=1e-2, method=method, seed=seed, batch_size=8)
        with torch.no_grad():
            runs.append(model(X))
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_task_objective_and_split_batches():
    spec = load_spec("tests/materialize_helpers.py:make")       # a spec without outputs
    inst = make_instance(spec.model)
    model, _ = apply(spec.model, inst, make_result(inst, GROUPS), "tie")
    with pytest.raises(InputError, match="'tests/materialize_helpers.py:make'.*--objective task"):
        recover(model, spec, steps=3)
    rep = recover(model, spec, steps=20, lr=1e-2, objective="task")
    assert rep.loss_after < rep.loss_before and rep.heldout_before is None
    pieces = split_batches([(torch.zeros(10, 3), torch.ones(10)), {"x": torch.zeros(4, 2), "k": torch.tensor(1.0)}],
                           4)
    assert [p[0].shape[0] for p in pieces[:3]] == [4, 4, 2] and pieces[3]["x"].shape[0] == 4


@pytest.mark.parametrize("kwargs, needle", [
    ({"steps": 0}, "steps must be a positive integer"),
    ({"steps": 5, "lr": 0.0}, "learning rate must be a positive"),
    ({"steps": 5, "method": "full"}, "unknown recovery method"),
    ({"steps": 5, "batch_size": 0}, "batch size must be a positive"),
])
def test_bad_arguments_refused_before_training(spec, kwargs, needle):
    model, _ = compress(spec)
    w = model.hidden[0].weight.detach().clone()
    with pytest.raises(InputError, match=needle):
        recover(model, spec, **kwargs)
    assert torch.equal(model.hidden[0].weight.detach(), w)


# ---------------------------------------------------------------------- CLI
@pytest.fixture()
def compressed_dir(spec, tmp_path):
    model, report = compress(spec, "tie")
    out = save_compressed(model, tmp_path / "c", report.tie_map, extra_files={"result.json": "{}\n"})
    return out, model


def test_cli_recover_end_to_end(compressed_dir, spec, tmp_path):
    out, model = compressed_dir
    r = CliRunner().invoke(cli, ["recover", SPEC, str(out), "--steps", "25", "--lr", "1e-2", "-q"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)
    target = tmp_path / "c-recovered"                          # the default output directory
    assert payload["output"] == str(target) and payload["loss_after"] < payload["loss_before"]
    assert (target / "result.json").read_text() == "{}\n"       # files beside the weights travel along
    loaded = load_compressed(target, spec)
    assert loaded.hidden[0].weight is loaded.hidden[3].weight
    with torch.no_grad():
        assert not torch.equal(loaded(X), model(X))
    assert json.loads((target / "tiemap.json").read_text())["recovery"][0]["steps"] == 25
    # lora into a named directory, then reload
    r = CliRunner().invoke(cli, ["recover", SPEC, str(out), "--method", "lora", "--rank", "3", "--steps", "5",
                                 "-o", str(tmp_path / "l"), "-q"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["parameters"]["added"] > 0
    assert isinstance(load_compressed(tmp_path / "l", spec).hidden[0], CorrectedLinear)


def test_cli_recover_bad_input_exit_2_nothing_written(compressed_dir, tmp_path):
    out, _ = compressed_dir
    junk = tmp_path / "junk"
    junk.mkdir()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep").write_text("x")
    cases = [
        ([SPEC, str(junk)], "not a compressed model directory"),
        ([OTHER, str(out)], "made from other weights"),
        ([SPEC, str(out), "--steps", "0"], "--steps must be a positive integer"),
        ([SPEC, str(out), "--lr", "0"], "--lr must be a positive number"),
        ([SPEC, str(out), "--lr", "-1e-3"], "--lr must be a positive number"),
        ([SPEC, str(out), "--method", "full"], "--method must be distill or lora"),
        ([SPEC, str(out), "-o", str(busy)], "not empty"),
        ([SPEC, str(out), "-o", str(out)], "--force"),
    ]
    for args, needle in cases:
        r = CliRunner().invoke(cli, ["recover", *args, "-q"])
        assert r.exit_code == 2, (args, r.output)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, r.stderr)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "c", "junk"], args   # nothing written
    assert (busy / "keep").read_text() == "x"


def test_pipeline_recover_on_digits(tmp_path):
    from geoshare_opt.pipeline import pipeline
    from geoshare_opt.cli.backend import pipeline_table
    digits = load_spec("digits-mlp")
    out = pipeline(digits, 0.5, solver="cpsat", mode="tie", time_limit=5, baselines=("sequence", "random"),
                   recover_steps=15, recover_options={"lr": 1e-3, "batch_size": 64}, outdir=tmp_path / "p")
    rows = {r["colouring"]: r for r in out["rows"]}
    assert set(rows) == {"solved", "measured", "sequence", "random"}
    for r in rows.values():
        rec = r["recovered"]
        assert set(rec["metrics"]) == set(out["original"]) and r["recover_s"] > 0
        assert rec["loss_after"] <= rec["loss_before"] and rec["kept_step"] is not None   # its best checkpoint
        assert rec["stored_params"] == r["stored_params"]            # distill: the same storage
    assert out["best_heuristic_recovered"]["metric"] == "accuracy"
    assert "accuracy recovered" in pipeline_table(out) and "after recovery" in pipeline_table(out)
    assert "after_recovery" in out["recommended"]
    loaded = load_compressed(tmp_path / "p", digits)   # the saved network is the recommended one, recovered
    assert digits.metrics(loaded)["accuracy"] == pytest.approx(rows["measured"]["recovered"]["metrics"]["accuracy"])
    r = CliRunner().invoke(cli, ["pipeline", "digits-mlp", "--recover", "0", "-q"])
    assert r.exit_code == 2 and "steps must be a positive integer" in r.stderr


def test_the_spec_distill_loss_is_the_objective_when_given(spec):
    model, _ = compress(spec)
    with torch.no_grad():
        expected = sum(float((model(x) - spec.model(x)).abs().mean()) for x, _ in spec.batches()) / 4
    spec.distill_loss = lambda student, teacher, batch: (student - teacher).abs().mean()
    rep = recover(model, spec, steps=5, lr=1e-2)
    assert rep.loss_before == pytest.approx(expected, rel=1e-5)
    assert rep.loss_after < rep.loss_before


def test_malformed_corrections_record_refused(spec, tmp_path):
    from geoshare_opt.materialize import TieMapError
    model, report = compress(spec)
    rep = recover(model, spec, steps=2, lr=1e-3, method="lora", rank=2)
    out = save_compressed(model, tmp_path / "l", recovered_tie_map(report.tie_map, model, rep))
    path = out / "tiemap.json"
    good = json.loads(path.read_text())
    for bad in ({"rank": "two"}, {"members": ["no.such.weight"]}, {"method": "dora"}):
        path.write_text(json.dumps({**good, "corrections": {**good["corrections"], **bad}}))
        with pytest.raises(TieMapError):
            load_compressed(out, spec)
    path.write_text(json.dumps({**good, "version": 1}))            # corrections need a version-2 map
    with pytest.raises(TieMapError, match="corrections"):
        load_compressed(out, spec)


def test_with_validation_batches_recovery_keeps_its_best_checkpoint(spec):
    """The objective on validation batches is measured at the start and at ``checks`` steps; the parameters of the
    best checkpoint come back. A learning rate that wrecks the network keeps the network as it came (step 0); a
    sound one keeps a later checkpoint no worse on the validation batches than the start."""
    from geoshare_opt.materialize.recover import objective_loss
    validation = [(X, None)]
    wrecked, _ = compress(spec)
    start = {k: v.detach().clone() for k, v in wrecked.state_dict().items()}
    rep = recover(wrecked, spec, steps=8, lr=10.0, validation=validation, checks=4)
    assert [s for s, _ in rep.validation] == [0, 2, 4, 6, 8] and rep.kept_step == 0
    assert rep.validation[0][1] < min(v for s, v in rep.validation[1:])        # training made it worse here
    assert all(torch.equal(start[k], v) for k, v in wrecked.state_dict().items())
    sound, _ = compress(spec)
    before = objective_loss(spec, sound, validation)
    rep = recover(sound, spec, steps=40, lr=1e-2, validation=validation, checks=4)
    assert rep.kept_step > 0 and len(rep.validation) == 5
    assert objective_loss(spec, sound, validation) == pytest.approx(min(v for _, v in rep.validation), rel=1e-5)
    assert objective_loss(spec, sound, validation) < before
    plain, _ = compress(spec)
    assert recover(plain, spec, steps=2, lr=1e-2).kept_step is None
    with pytest.raises(InputError, match="recovery checkpoints must be a positive integer"):
        recover(plain, spec, steps=2, lr=1e-2, validation=validation, checks=0)
