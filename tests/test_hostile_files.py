"""Hostile compressed-model directories and specs (issue 14, part A): loading data never runs code, tie maps cannot
reach outside their directory or rewire tensors, recover copies only regular files, ``apply -o DIR --force`` keeps
its own inputs, a spec's make() missing an argument and NaN metrics are one clear line; written directories and
weights follow the umask."""
import json
import os
import shutil
import stat

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from geoshare_opt.cli import cli  # noqa: E402
from geoshare_opt.errors import InputError  # noqa: E402
from geoshare_opt.materialize import TieMapError, load_compressed  # noqa: E402
from cli_checks import one_error_line  # noqa: E402
from materialize_helpers import (GROUPS, SPEC, TinyMLP, make_result, saved_tie_directory,  # noqa: E402
                                 write_instance_with_sidecar)



def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_exit_2(res, needle=None):
    line = one_error_line(res, 2)
    if needle:
        assert needle in line, line


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A compressed directory (tie mode) of the tiny spec, made once; tests copy it before editing."""
    return saved_tie_directory(tmp_path_factory.mktemp("saved"))


def edited(saved, tmp_path, edit) -> "os.PathLike":
    out = tmp_path / "edited"
    shutil.copytree(saved[1], out, symlinks=True)
    m = json.loads((out / "tiemap.json").read_text())
    edit(m, out)
    (out / "tiemap.json").write_text(json.dumps(m))
    return out


# ---------------------------------------------------------------------- 2. loading data never runs code
def test_load_compressed_never_imports_the_spec_a_tie_map_names(saved, tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('x')\ndef make():\n    open({str(marker)!r}, 'w')\n")

    def point_at_evil(m, out):
        m["spec"] = f"{evil}:make"
    out = edited(saved, tmp_path, point_at_evil)
    import geoshare_opt
    with pytest.raises(InputError, match="original network"):
        geoshare_opt.load_compressed(out)
    assert not marker.exists()
    loaded = load_compressed(out, saved[0])      # with the model given, the recorded spec is only provenance
    assert not marker.exists() and loaded.hidden[0].weight is loaded.hidden[1].weight


# ---------------------------------------------------------------------- 3. tie maps stay inside their directory
@pytest.mark.parametrize("name", ["../outside/model.safetensors", "/abs/model.safetensors", "sub/model.safetensors",
                                  "..", ""])
def test_a_weights_file_outside_the_directory_is_refused(saved, tmp_path, name):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(saved[1] / "model.safetensors", outside / "model.safetensors")

    def point_outside(m, out):
        m["weights"]["file"] = name.replace("/abs", str(outside)) if name.startswith("/abs") else name
    out = edited(saved, tmp_path, point_outside)
    with pytest.raises(TieMapError, match="weights"):
        load_compressed(out, saved[0])
    assert_exit_2(run("evaluate", SPEC, out), "weights")


def test_a_weights_file_that_links_outside_the_directory_is_refused(saved, tmp_path):
    outside = tmp_path / "elsewhere.safetensors"
    shutil.copy(saved[1] / "model.safetensors", outside)

    def link(m, out):
        (out / "model.safetensors").unlink()
        (out / "model.safetensors").symlink_to(outside)
    with pytest.raises(TieMapError, match="outside"):
        load_compressed(edited(saved, tmp_path, link), saved[0])


@pytest.mark.parametrize("value", [None, "", "0" * 63, 7])
def test_a_missing_or_malformed_sha256_is_refused(saved, tmp_path, value):
    def drop(m, out):
        if value is None:
            del m["weights"]["sha256"]
        else:
            m["weights"]["sha256"] = value
    with pytest.raises(TieMapError, match="sha256"):
        load_compressed(edited(saved, tmp_path, drop), saved[0])


@pytest.mark.parametrize("rewire", [
    {"inp.bias": "down.0.bias"},              # an unshared tensor loaded from another one of the same shape
    {"hidden.1.weight": "hidden.2.weight"},   # a class member loaded from another class's tensor
    {"hidden.2.weight": "hidden.0.weight"},   # two classes made to read one stored tensor
    {"hidden.0.weight": 5},
])
def test_an_alias_table_that_does_not_match_the_classes_is_refused(saved, tmp_path, rewire):
    def apply_rewire(m, out):
        m["weights"]["tensors"].update(rewire)
    with pytest.raises(TieMapError, match="weights.tensors"):
        load_compressed(edited(saved, tmp_path, apply_rewire), saved[0])


def test_a_node_in_two_classes_is_refused(saved, tmp_path):
    def twice(m, out):
        m["classes"][1]["members"].append(m["classes"][0]["members"][0])
    with pytest.raises(TieMapError, match="two classes"):
        load_compressed(edited(saved, tmp_path, twice), saved[0])


def test_recover_copies_only_regular_files_from_inside_the_directory(saved, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")

    def plant(m, out):
        (out / "notes.txt").symlink_to(secret)
        (out / "sub").mkdir()
        (out / "extra.txt").write_text("kept")
    out = edited(saved, tmp_path, plant)
    res = run("recover", SPEC, out, "--steps", "1", "--objective", "task", "-q", "-o", tmp_path / "rec")
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in (tmp_path / "rec").iterdir())
    assert "notes.txt" not in names and "sub" not in names and "extra.txt" in names


# ---------------------------------------------------------------------- 4. apply -o DIR --force keeps its inputs
@pytest.mark.parametrize("inside", ["result", "instance", "spec"])
def test_apply_force_into_a_directory_holding_its_inputs_is_refused(tmp_path, inside):
    model = TinyMLP()
    work = tmp_path / "work"
    work.mkdir()
    inst_dir = work if inside == "instance" else tmp_path
    inst, inst_path, _ = write_instance_with_sidecar(inst_dir, model)
    res_path = (work if inside == "result" else tmp_path) / "result.json"
    make_result(inst, GROUPS).save(res_path)
    spec = SPEC
    if inside == "spec":
        shutil.copy("tests/materialize_helpers.py", work / "helpers.py")
        spec = f"{work / 'helpers.py'}:make"
    before = sorted(p.name for p in work.iterdir())
    res = run("apply", spec, res_path, "--instance", inst_path, "-o", work, "--force", "-q")
    assert_exit_2(res, "input")
    assert sorted(p.name for p in work.iterdir()) == before


# ---------------------------------------------------------------------- 12. modes follow the umask
def test_apply_output_directory_and_weights_follow_the_umask(tmp_path):
    model = TinyMLP()
    inst, inst_path, _ = write_instance_with_sidecar(tmp_path, model)
    res_path = tmp_path / "result.json"
    make_result(inst, GROUPS).save(res_path)
    old = os.umask(0o022)
    try:
        res = run("apply", SPEC, res_path, "--instance", inst_path, "-o", tmp_path / "c", "-q")
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE((tmp_path / "c").stat().st_mode) == 0o755
    for name in ("model.safetensors", "tiemap.json"):
        assert stat.S_IMODE((tmp_path / "c" / name).stat().st_mode) == 0o644, name


# ---------------------------------------------------------------------- 10. make() needs an argument
def test_a_make_that_needs_an_argument_says_which(tmp_path):
    spec = tmp_path / "needs.py"
    spec.write_text("def make(depth, width=4):\n    raise AssertionError('never called')\n")
    for command in (["analyze", f"{spec}:make"], ["evaluate", f"{spec}:make"]):
        assert_exit_2(run(*command), "'depth'")
    res = run("evaluate", f"{spec}:make", "--spec-option", "widht=3")
    assert_exit_2(res, "'widht'")


# ---------------------------------------------------------------------- 8. NaN metrics
def test_nan_metrics_are_reported_as_null_not_a_crash(tmp_path):
    spec = tmp_path / "nanspec.py"
    spec.write_text(
        "import sys\nsys.path.insert(0, 'tests')\nfrom materialize_helpers import make as base\n"
        "def make():\n    d = base()\n    d['metrics'] = lambda net: {'acc': float('nan'), 'mse': 1.5}\n    return d\n")
    res = run("evaluate", f"{spec}:make")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["original"] == {"acc": None, "mse": 1.5}
    assert "acc" in res.stderr and "not a finite number" in res.stderr
    spec.write_text(spec.read_text().replace("float('nan')", "'high'"))
    assert_exit_2(run("evaluate", f"{spec}:make"), "'acc'")


def test_analyze_and_recover_never_overwrite_their_inputs(saved, tmp_path):
    spec = tmp_path / "spec.py"
    shutil.copy("tests/fixtures/user_spec.py", spec)
    before = spec.read_text()
    assert_exit_2(run("analyze", f"{spec}:make", "-o", spec), "input")
    assert spec.read_text() == before
    out = shutil.copytree(saved[1], tmp_path / "parent" / "out")
    res = run("recover", SPEC, out, "--steps", "1", "--objective", "task", "-o", tmp_path / "parent", "--force")
    assert_exit_2(res, "input")
    assert (out / "tiemap.json").is_file()


def test_a_correction_rank_beyond_the_layer_is_bad_input(saved, tmp_path):
    res = run("recover", SPEC, saved[1], "--method", "lora", "--rank", str(10**20), "--steps", "1",
              "--objective", "task", "-o", tmp_path / "r")
    assert_exit_2(res, "rank")
    assert not (tmp_path / "r").exists()
