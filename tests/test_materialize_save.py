"""Saving and loading compressed networks (one copy per shared tensor + an explicit tie map), and the apply /
evaluate commands end to end on a tiny user spec."""
import json
import shutil

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from geoshare_opt.cli import cli  # noqa: E402
from geoshare_opt.errors import InputError  # noqa: E402
from geoshare_opt.materialize import TieMapError, apply, load_compressed, save_compressed  # noqa: E402
from materialize_helpers import (TinyMLP, curvature_for, make_instance, make_result,  # noqa: E402
                                 write_instance_with_sidecar)

X = torch.randn(5, 6, generator=torch.Generator().manual_seed(4))
SPEC = "tests/materialize_helpers.py:make"


def grouped(inst):
    groups = {"hidden.0.weight": 0, "hidden.1.weight": 0, "hidden.2.weight": 1, "hidden.3.weight": 0,
              "up.0.weight": 2, "up.1.weight": 2, "down.0.weight": 3, "down.1.weight": 4}
    return make_result(inst, groups)


@pytest.fixture(scope="module")
def tiny():
    model = TinyMLP()
    inst = make_instance(model)
    return model, inst, curvature_for(model)


@pytest.mark.parametrize("mode", ["tie", "basis"])
def test_save_load_roundtrip_keeps_outputs_and_ties(tmp_path, tiny, mode):
    model, inst, curv = tiny
    compressed, report = apply(model, inst, grouped(inst), mode, curv, ratio=0.4 if mode == "basis" else None)
    out = save_compressed(compressed, tmp_path / "out", report.tie_map)
    from safetensors import safe_open
    with safe_open(str(out / "model.safetensors"), "pt") as fh:
        keys = set(fh.keys())
    from safetensors.torch import load_file
    saved = sum(t.numel() for t in load_file(str(out / "model.safetensors")).values())
    assert saved == report.parameters["after"]["params"]          # one copy of every shared tensor
    tmap = json.loads((out / "tiemap.json").read_text())
    assert tmap["format"] == "geoshare-tiemap" and tmap["instance_sha256"] == inst.sha256
    assert tmap["mode"] == mode and "torch" in tmap["versions"] and tmap["colouring"]["hidden.3.weight"] == 0
    loaded = load_compressed(out, model)
    with torch.no_grad():
        assert torch.equal(loaded(X), compressed(X))
    if mode == "tie":
        assert loaded.hidden[0].weight is loaded.hidden[3].weight is loaded.hidden[1].weight
        assert loaded.hidden[2].weight is not loaded.hidden[0].weight
        assert "hidden.3.weight" not in keys and "hidden.0.weight" in keys
    else:
        h0, h3 = loaded.hidden[0], loaded.hidden[3]
        assert getattr(h0, h0.shared).data_ptr() == getattr(h3, h3.shared).data_ptr()
        assert h0.weight_out.data_ptr() != h3.weight_out.data_ptr()
    assert sum(p.numel() for p in loaded.parameters()) == report.parameters["after"]["params"]
    # the original model passed in is not modified by loading
    assert model.hidden[0].weight is not model.hidden[1].weight


def test_existing_output_dir_refused_unless_force(tmp_path, tiny):
    model, inst, curv = tiny
    compressed, report = apply(model, inst, grouped(inst), "tie", curv)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    with pytest.raises(InputError, match="not empty"):
        save_compressed(compressed, out, report.tie_map)
    assert (out / "keep.txt").read_text() == "user data"
    save_compressed(compressed, out, report.tie_map, force=True)
    assert not (out / "keep.txt").exists() and (out / "tiemap.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]          # no temporary directories left behind


def test_corrupt_or_mismatching_tie_map_refused(tmp_path, tiny):
    model, inst, curv = tiny
    compressed, report = apply(model, inst, grouped(inst), "tie", curv)
    good = save_compressed(compressed, tmp_path / "good", report.tie_map)

    def variant(name, edit):
        d = tmp_path / name
        shutil.copytree(good, d)
        edit(d)
        return d

    garbage = variant("garbage", lambda d: (d / "tiemap.json").write_text("{not json"))
    with pytest.raises(TieMapError, match="corrupt"):
        load_compressed(garbage, model)

    def drop_member(d):
        m = json.loads((d / "tiemap.json").read_text())
        m["classes"][0]["members"].append("hidden.9.weight")
        (d / "tiemap.json").write_text(json.dumps(m))
    with pytest.raises(TieMapError, match="hidden.9.weight"):
        load_compressed(variant("unknown", drop_member), model)

    def flip_bytes(d):
        data = bytearray((d / "model.safetensors").read_bytes())
        data[-3] ^= 0xFF
        (d / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(TieMapError, match="sha256"):
        load_compressed(variant("tampered", flip_bytes), model)

    def wrong_version(d):
        m = json.loads((d / "tiemap.json").read_text())
        m["version"] = 7
        (d / "tiemap.json").write_text(json.dumps(m))
    with pytest.raises(TieMapError, match="version"):
        load_compressed(variant("version", wrong_version), model)

    with pytest.raises(TieMapError, match="other weights"):
        load_compressed(good, TinyMLP(seed=3))
    with pytest.raises(TieMapError, match="no tiemap.json"):
        load_compressed(tmp_path, model)


def test_cli_apply_and_evaluate_end_to_end(tmp_path):
    model = TinyMLP()
    inst, inst_path, _ = write_instance_with_sidecar(tmp_path, model)
    res_path = tmp_path / "result.json"
    grouped(inst).save(res_path)
    runner = CliRunner()
    r = runner.invoke(cli, ["apply", SPEC, str(res_path), "--instance", str(inst_path), "--mode", "tie",
                            "-o", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)
    assert payload["parameters"]["after"]["shareable_params"] == 2 * 64 + 1 * 128 + 2 * 128
    # the same again without --force: refused, exit 2, one line
    r2 = runner.invoke(cli, ["apply", SPEC, str(res_path), "--instance", str(inst_path), "-o", str(tmp_path / "c")])
    assert r2.exit_code == 2 and "--force" in r2.stderr and r2.stdout == ""
    r3 = runner.invoke(cli, ["evaluate", SPEC, str(tmp_path / "c")])
    assert r3.exit_code == 0, r3.output
    ev = json.loads(r3.stdout)
    assert set(ev["original"]) == set(ev["compressed"]) == {"fidelity", "heldout_mse"}
    assert ev["original"]["heldout_mse"] == 0.0 and ev["compressed"]["heldout_mse"] > 0.0
    assert ev["parameters"]["compressed"] < ev["parameters"]["original"]
    # basis mode from the same sidecar (it holds in_cov), at full rank: outputs unchanged
    r4 = runner.invoke(cli, ["apply", SPEC, str(res_path), "--instance", str(inst_path), "--mode", "basis",
                             "--rank", "full", "-o", str(tmp_path / "b")])
    assert r4.exit_code == 0, r4.output
    r5 = runner.invoke(cli, ["evaluate", SPEC, str(tmp_path / "b")])
    assert json.loads(r5.stdout)["compressed"]["heldout_mse"] < 1e-10


def test_cli_apply_bad_inputs(tmp_path):
    model = TinyMLP()
    inst, inst_path, _ = write_instance_with_sidecar(tmp_path, model, with_cov=False)
    other, other_path, _ = write_instance_with_sidecar(tmp_path, model, instance_kwargs={"seed": 4}, stem="other")
    res_path = tmp_path / "result.json"
    grouped(inst).save(res_path)
    runner = CliRunner()

    def run(*args):
        r = runner.invoke(cli, list(args))
        return r.exit_code, r.stderr.strip()

    code, msg = run("apply", SPEC, str(res_path), "--instance", str(other_path))
    assert code == 2 and "answers instance" in msg and len(msg.splitlines()) == 1
    code, msg = run("apply", SPEC, str(res_path), "--instance", str(inst_path), "--mode", "basis", "--ratio", "0.5")
    assert code == 2 and "re-run analyze with --mode basis" in msg
    code, msg = run("apply", SPEC, str(res_path), "--instance", str(inst_path), "--mode", "basis", "--ratio", "1.5")
    assert code == 2
    code, msg = run("apply", SPEC, str(res_path))
    assert code == 2 and "--instance" in msg
    code, msg = run("apply", "tests/materialize_helpers.py:nothing", str(res_path), "--instance", str(inst_path))
    assert code == 2
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_cli_apply_refuses_basis_options_in_tie_mode(tmp_path):
    model = TinyMLP()
    inst, inst_path, _ = write_instance_with_sidecar(tmp_path, model)
    res_path = tmp_path / "result.json"
    grouped(inst).save(res_path)
    r = CliRunner().invoke(cli, ["apply", SPEC, str(res_path), "--instance", str(inst_path), "--ratio", "0.5"])
    assert r.exit_code == 2 and "--mode basis" in r.stderr
