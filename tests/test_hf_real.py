"""Hugging Face model directories through the REAL transformers library (the version the dev extras install, 5.x):
tiny randomly initialised encoders (BERT, MPNet) and decoders (GPT-2, LLaMA with gate/up/down) built from configs,
no hub. Every role gets its proper name; the pipeline runs end to end and its saved network measures the same."""
import json

import pytest

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from hf_models import ARCHITECTURES, make_model_dir  # noqa: E402

from geoshare_opt.cli import cli  # noqa: E402
from geoshare_opt.frontend import analyze  # noqa: E402

# tiny sizes: a few windows of 32 tokens (test time), not the model-sized defaults
SMALL = {"n_calib": 8, "seq_len": 32, "batch_size": 4, "n_heldout": 16, "heldout_seqs": 4}
ROLES = {
    "bert": {"attn.q", "attn.k", "attn.v", "attn.o", "mlp.up", "mlp.down"},
    "mpnet": {"attn.q", "attn.k", "attn.v", "attn.o", "mlp.up", "mlp.down"},
    "gpt2": {"attn.qkv", "attn.o", "mlp.up", "mlp.down"},
    "llama": {"attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.up", "mlp.down"},
}


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {arch: str(make_model_dir(arch, root / arch)) for arch in ARCHITECTURES}


@pytest.mark.parametrize("arch", sorted(ROLES))
def test_every_role_gets_its_proper_name(model_dirs, arch):
    inst = analyze(model_dirs[arch], ratio=0.5, spec_options=SMALL)
    roles = {t.split(":")[0] for t in inst.types}
    assert roles == ROLES[arch]
    assert all(len(inst.type_members(t)) == 2 for t in inst.types)        # one tensor per layer, 2 layers
    assert inst.meta["model"]["spec"] == model_dirs[arch]


@pytest.mark.parametrize("arch", ["mpnet", "llama"])
def test_pipeline_and_evaluate_on_a_real_hf_directory(model_dirs, tmp_path, arch):
    out_dir = tmp_path / "out"
    opts = [a for k, v in SMALL.items() for a in ("--spec-option", f"{k}={v}")]
    r = CliRunner().invoke(cli, ["pipeline", model_dirs[arch], "--solver", "cpsat", "--baselines", "sequence",
                                 "-o", str(out_dir), *opts])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    solved = next(row for row in out["rows"] if row["colouring"] == "solved")
    assert solved["shareable_removed"] >= 0.5 - 1e-9
    assert set(out["original"]) >= {"embedding_cosine", "heldout_loss"}
    tie_map = json.loads((out_dir / "tiemap.json").read_text())
    assert tie_map["spec"] == model_dirs[arch] and tie_map["spec_options"] == SMALL
    r = CliRunner().invoke(cli, ["evaluate", model_dirs[arch], str(out_dir), "-q", *opts])
    assert r.exit_code == 0, r.output
    again = json.loads(r.stdout)["compressed"]
    for key, value in solved["metrics"].items():
        assert again[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_special_tokens_are_read_off_the_tokenizer(model_dirs):
    from geoshare_opt.specs.hf import hf_codec, load_directory
    from pathlib import Path
    expected = {"bert": (["[CLS]"], ["[SEP]"]), "mpnet": (["<s>"], ["</s>"]), "gpt2": ([], []), "llama": ([], [])}
    for arch, (before, after) in expected.items():
        tokenizer, _ = load_directory(Path(model_dirs[arch]))
        codec = hf_codec(tokenizer)
        body = codec.ids(["abc"])[0]
        assert tokenizer.convert_ids_to_tokens(codec.wrap(body)) == before + tokenizer.convert_ids_to_tokens(body) + after
        assert codec.n_special == len(before) + len(after)


def test_hf_directories_get_sizes_that_fit_the_machine():
    from geoshare_opt.specs.hf import REFERENCE_SIZES, default_sizes
    assert default_sizes(22_700_000) == REFERENCE_SIZES                     # minilm's pipeline sizes
    big = default_sizes(110_000_000)                                        # a 12-layer MPNet
    assert big["n_calib"] * 110 <= 128 * 23 * 1.5 and big["batch_size"] <= 8
    assert default_sizes(30_000)["n_calib"] == 256                          # tiny models keep the full data
