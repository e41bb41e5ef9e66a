"""Held-out audit of issue 14, files and numbers: every case here was a traceback-free exit 1, a hang, a lost
output or a wrong answer on main before its fix. Tie map fields that loading reads, a curvature sidecar named by a
path, thread counts and byte limits beyond reason, HiGHS options of the wrong type, outputs through links, into
pipes and onto full or read-only file systems."""
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from geoshare_opt.cli import cli  # noqa: E402
from geoshare_opt.errors import InputError  # noqa: E402
from geoshare_opt.instance import Instance  # noqa: E402
from geoshare_opt.materialize import TieMapError, load_compressed  # noqa: E402
from geoshare_opt.materialize.save import read_tie_map  # noqa: E402
from geoshare_opt.options import MAX_THREADS, SolveOptions  # noqa: E402
from cli_checks import one_error_line  # noqa: E402
from random_instances import one_type  # noqa: E402
from materialize_helpers import (GROUPS, SPEC, TinyMLP, make_instance, make_result,  # noqa: E402
                                 saved_tie_directory, write_instance_with_sidecar)

REPO = Path(__file__).resolve().parents[1]


def run(*args, **kw):
    return CliRunner().invoke(cli, [str(a) for a in args], **kw)


def signed(n, k=4, seed=0, density=0.5):
    return one_type(n, k, density, seed)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return saved_tie_directory(tmp_path_factory.mktemp("saved"))


def edited(saved, tmp_path, edit):
    out = tmp_path / "edited"
    shutil.copytree(saved[1], out)
    m = json.loads((out / "tiemap.json").read_text())
    edit(m)
    (out / "tiemap.json").write_text(json.dumps(m))
    return out


# ---------------------------------------------------------------------- tie map fields that loading reads
def _basis(rank, shape=(8, 8)):
    def edit(m):
        m["mode"] = "basis"
        for c in m["classes"]:
            c.update(side="in", rank=rank, shape=list(shape))
    return edit


@pytest.mark.parametrize("edit", [
    lambda m: m.__setitem__("fingerprint", 5),            # was TypeError: 'int' object is not subscriptable
    lambda m: m.__setitem__("colouring", 5),              # was TypeError: 'int' object is not iterable
    lambda m: m.__setitem__("colouring", {"hidden.0.weight": True}),
    lambda m: m.__setitem__("version", True),             # True == 1: was accepted
    lambda m: m.__setitem__("recovery", 5),               # recover: was TypeError
    lambda m: m.__setitem__("parameters", {"before": 5}),
    lambda m: m.__setitem__("parameters", {"before": {"params": "x"}}),
    _basis(-1),                                           # was RuntimeError: negative dimension
    _basis(10**12),                                       # was an allocation of 4 TB
    _basis(9),                                            # above the class's full rank (8)
    _basis(True),
    _basis(2, shape=(True, 8)),
], ids=["fingerprint", "colouring", "colouring-bool", "version-true", "recovery", "params-before",
        "params-before-str", "rank-negative", "rank-huge", "rank-above-side", "rank-bool", "shape-bool"])
def test_tie_map_fields_that_loading_reads_are_checked(saved, tmp_path, edit):
    out = edited(saved, tmp_path, edit)
    with pytest.raises(TieMapError):
        read_tie_map(out)
    with pytest.raises(TieMapError):
        load_compressed(out, saved[0])


def test_evaluate_of_a_tie_map_with_a_non_string_fingerprint_is_one_line(saved, tmp_path):
    out = edited(saved, tmp_path, lambda m: m.__setitem__("fingerprint", 5))
    assert "'fingerprint' must be a string" in one_error_line(run("evaluate", SPEC, out, "-q"))


# ---------------------------------------------------------------------- the curvature sidecar is beside its instance
def test_an_instance_cannot_name_a_sidecar_outside_its_directory(tmp_path):
    from geoshare_opt.frontend import load_curvature
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    inst, path, _ = write_instance_with_sidecar(tmp_path / "a", TinyMLP())
    assert load_curvature(path)                                            # the honest one loads
    meta = dict(inst.meta, curvature=dict(inst.meta["curvature"], file="../a/inst.curvature.safetensors"))
    moved = tmp_path / "b" / "inst.json"
    Instance(inst.name, inst.nodes, inst.edges, inst.budget, meta).save(moved)
    with pytest.raises(InputError, match="not a plain file name"):
        load_curvature(moved)                                              # was read from ../a
    res = run("solve", moved, "--solver", "classcost", "-q", "--time-limit", "5")
    assert "not a plain file name" in one_error_line(res)


# ---------------------------------------------------------------------- numbers from options and the environment
def test_thread_counts_are_bounded(tmp_path):
    with pytest.raises(InputError, match=f"1 to {MAX_THREADS}"):
        SolveOptions(threads=10**20)
    p = tmp_path / "i.json"
    signed(6).save(p)
    # was exit 1 (cpsat: an int64 overflow; classcost too); HiGHS with 10**6 threads hung or aborted the process
    for args in (["--solver", "cpsat", "--threads", "99999999999999999999"],
                 ["--solver", "highs", "--threads", str(MAX_THREADS + 1)],
                 ["--solver", "highs", "--native", f"threads={MAX_THREADS + 1}"],
                 ["--solver", "cpsat", "--native", f"num_workers={MAX_THREADS + 1}"]):
        assert "must be an integer from 1 to" in one_error_line(run("solve", p, "-q", *args)), args
    # torch commands: GEOSHARE_THREADS=10**20 was exit 1; --threads 100000 crashed the process (exit 139)
    res = run("evaluate", SPEC, "-q", env={"GEOSHARE_THREADS": "99999999999999999999"})
    assert "GEOSHARE_THREADS must be an integer from 1 to" in one_error_line(res)
    assert "--threads must be an integer" in one_error_line(run("evaluate", SPEC, "-q", "--threads", "100000"))


def test_a_highs_option_of_the_wrong_type_is_bad_input(tmp_path):
    p = tmp_path / "i.json"
    signed(6).save(p)
    res = run("solve", p, "--solver", "highs", "-q", "--native", "mip_rel_gap=[1]")   # was exit 1 (TypeError)
    assert "cannot set option 'mip_rel_gap'" in one_error_line(res) and res.stdout == ""


def test_a_huge_input_byte_limit_means_no_limit(tmp_path):
    p = tmp_path / "i.json"
    signed(6).save(p)
    res = run("validate", p, env={"GEOSHARE_MAX_INPUT_BYTES": "9" * 30})      # was OverflowError, exit 1
    assert res.exit_code == 0, res.stderr


# ---------------------------------------------------------------------- where outputs go
def test_an_output_through_a_link_writes_the_file_it_names(tmp_path):
    p = tmp_path / "i.json"
    signed(6).save(p)
    target, link = tmp_path / "target.json", tmp_path / "link.json"
    target.write_text("old")
    link.symlink_to(target.name)
    for args in (["solve", p, "--solver", "dsatur", "-q", "-o", link], ["export", p, "--format", "lp", "-o", link]):
        assert run(*args).exit_code == 0
        assert link.is_symlink() and target.read_text() != "old"     # was: the link replaced, the target stale
        target.write_text("old")
    link.unlink()
    (tmp_path / "dir").mkdir()
    link.symlink_to("dir")
    assert run("apply", SPEC, _result_file(tmp_path), "-o", link, "-q").exit_code == 0
    assert link.is_symlink() and (tmp_path / "dir" / "tiemap.json").is_file()


def _result_file(tmp_path):
    model = TinyMLP()
    inst = make_instance(model)
    r = make_result(inst, GROUPS)
    inst.save(tmp_path / "inst.json")
    r.instance_path = str(tmp_path / "inst.json")
    r.save(tmp_path / "r.json")
    return tmp_path / "r.json"


def test_an_output_into_a_named_pipe_is_written_into_it(tmp_path):
    p = tmp_path / "i.json"
    signed(6).save(p)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    res = run("solve", p, "--solver", "dsatur", "-q", "-o", fifo)
    reader.join(timeout=30)
    assert res.exit_code == 0, res.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode), "the pipe was replaced by a regular file (its reader waits forever)"
    assert got and json.loads(got[0])["status"] == "feasible"


def _limited(limit_bytes):
    def set_limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return set_limit


def _cli(args, cwd, preexec=None):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "geoshare_opt.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, preexec_fn=preexec, timeout=300)


def test_a_full_disk_is_one_line_and_leaves_no_file(tmp_path):
    """RLIMIT_FSIZE stands in for a full disk (writes fail with EFBIG as they would with ENOSPC)."""
    p = tmp_path / "i.json"
    signed(120, k=6).save(p)            # its LP model is about 1 MB
    out = tmp_path / "out"
    out.mkdir()
    res = _cli(["export", p, "-o", out / "m.lp"], tmp_path, _limited(50_000))
    assert res.returncode == 2 and "incomplete" in res.stderr, res.stderr[-2000:]   # was: exit 0, a cut-off file
    res = _cli(["apply", SPEC, _result_file(tmp_path), "-o", out / "c", "-q"], REPO, _limited(2_000))
    assert res.returncode == 2 and res.stderr.startswith("error: cannot write"), res.stderr[-2000:]  # was exit 1
    assert list(out.iterdir()) == []


def test_an_unwritable_output_directory_is_refused_before_the_work(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == ro and mode == os.W_OK
                        else real_access(path, mode, **kw))
    marker = tmp_path / "spec-loaded"
    spec = tmp_path / "spec.py"
    spec.write_text(f"import pathlib\nfrom materialize_helpers import make as _make\n"
                    f"def make():\n    pathlib.Path({str(marker)!r}).write_text('x')\n    return _make()\n")
    monkeypatch.syspath_prepend(str(REPO / "tests"))
    for args in (["apply", f"{spec}:make", _result_file(tmp_path), "-o", ro / "c", "-q"],
                 ["analyze", f"{spec}:make", "-o", ro / "a.json", "-q"]):
        assert "not writable" in one_error_line(run(*args)), args         # was: all the work, then exit 1
        assert not marker.exists()


def test_an_encoder_decoder_model_directory_is_one_line(tmp_path, monkeypatch):
    """T5 (a plain `pip install transformers` model) was exit 1: its forward needs decoder inputs."""
    pytest.importorskip("transformers")
    import hf_models
    monkeypatch.setitem(hf_models.ARCHITECTURES, "t5", ("T5Config", dict(d_model=hf_models.HIDDEN, d_ff=64,
                                                                          num_layers=2, num_heads=2, d_kv=16), "bytes"))
    directory = hf_models.make_model_dir("t5", tmp_path / "t5")
    assert "encoder-decoder" in one_error_line(run("analyze", directory, "--ratio", "0.5", "-q"))


def test_a_key_repeated_in_a_json_object_is_refused(tmp_path):
    """Readers differ on which of two values counts (the last, here; the first, elsewhere): was silently the last."""
    p = tmp_path / "i.json"
    text = signed(4).dumps()
    p.write_text(text[:-1] + ', "budget": {"max_classes": 1}}')
    assert "'budget' appears twice" in one_error_line(run("validate", p))
    r = tmp_path / "r.json"
    r.write_text('{"format": "geoshare-result", "version": 1, "version": 1}')
    assert "appears twice" in one_error_line(run("validate", r))
