"""The built-in deep spec ``tiny-gpt``: recipe, cache, spec contract, discovery and analyze. Test recipe only (24
narrow blocks, trained in seconds), cached in a temporary directory."""
from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")

from geoshare_opt import Instance  # noqa: E402
from geoshare_opt.errors import InputError  # noqa: E402
from geoshare_opt.specs import tinygpt  # noqa: E402
from geoshare_opt.specs.base import lower_is_better  # noqa: E402
from geoshare_opt.specs.load import load_spec  # noqa: E402

ROLES = {"attn.q", "attn.k", "attn.v", "attn.o", "mlp.up", "mlp.down"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("tinygpt-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("GEOSHARE_OPT_CACHE", str(path))
    yield path
    mp.undo()


@pytest.fixture(scope="module")
def spec(cache):
    return load_spec("tiny-gpt", recipe="test", n_calib=16, batch_size=8, heldout_seqs=16, quiet=True)


def test_training_is_deterministic_and_does_not_touch_the_global_rng(spec):
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    fresh, record = tinygpt.build_model("test", use_cache=False, progress=False)
    after = torch.rand(3)
    assert torch.equal(before, after) and torch.get_num_threads() == threads
    cached, fresh_state = spec.model.state_dict(), fresh.state_dict()  # the fixture's model was trained separately
    assert cached.keys() == fresh_state.keys()
    assert all(torch.equal(cached[k].cpu(), fresh_state[k]) for k in cached)
    assert record["cached"] is False and record["heldout_perplexity"] == pytest.approx(
        spec.meta["trained_heldout_perplexity"], rel=0, abs=0)


def test_recipe_hash_names_the_cache_and_is_stable():
    full, test = tinygpt.resolve_recipe("full"), tinygpt.resolve_recipe("test")
    assert tinygpt.recipe_key(full) == tinygpt.recipe_key(tinygpt.resolve_recipe("full"))
    assert tinygpt.recipe_key(full) != tinygpt.recipe_key(test)
    assert full["n_layer"] >= 24 and test["n_layer"] >= 24
    with pytest.raises(TypeError):
        tinygpt.RECIPES["full"]["steps"] = 1  # frozen


def test_cache_hit_does_not_retrain_and_a_corrupt_cache_is_rebuilt(cache, spec, monkeypatch, capsys):
    assert spec.meta["recipe_sha256"] == tinygpt.recipe_key(tinygpt.resolve_recipe("test"))
    weights, record = tinygpt.cache_paths(spec.meta["recipe_sha256"])
    assert weights.is_file() and record.is_file() and weights.parent == cache
    assert json.loads(record.read_text())["weights_sha256"]
    reference = {k: v.clone() for k, v in spec.model.state_dict().items()}

    real_train = tinygpt.train
    calls = []

    def counting_train(*args, **kwargs):
        calls.append(1)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(tinygpt, "train", counting_train)
    model, rec = tinygpt.build_model("test", progress=False)
    assert rec["cached"] is True and not calls
    assert all(torch.equal(model.state_dict()[k], reference[k]) for k in reference)

    weights.write_bytes(weights.read_bytes()[:100])  # truncated weights
    model, rec = tinygpt.build_model("test", progress=True)
    assert rec["cached"] is False and len(calls) == 1
    assert "do not match" in capsys.readouterr().err
    assert all(torch.equal(model.state_dict()[k], reference[k]) for k in reference)  # same recipe, same bits
    assert tinygpt.build_model("test", progress=False)[1]["cached"] is True

    record.write_text("{not json")
    assert tinygpt.build_model("test", progress=False)[1]["cached"] is False and len(calls) == 2


def test_perplexity_is_below_uniform_and_metrics_are_lower_is_better(spec):
    m = spec.metrics(spec.model)
    assert set(m) == {"heldout_perplexity", "heldout_loss"}
    assert math.isclose(m["heldout_perplexity"], math.exp(m["heldout_loss"]), rel_tol=1e-9)
    assert m["heldout_perplexity"] < 256  # a uniform byte model
    assert all(lower_is_better(k) for k in m)
    damaged = {k: v.clone() for k, v in spec.model.state_dict().items()}
    with torch.no_grad():
        for block in spec.model.blocks:
            block.mlp.down_proj.weight.mul_(-30.0)
    try:
        assert spec.metrics(spec.model)["heldout_perplexity"] > m["heldout_perplexity"]
    finally:
        spec.model.load_state_dict(damaged)


def test_spec_contract_batches_loss_outputs_and_distill_loss(spec):
    batches = list(spec.batches())
    assert sum(b.shape[0] for b in batches) == 16 and batches[0].dtype == torch.long
    assert batches[0].shape[1] == tinygpt.resolve_recipe("test")["block_size"] + 1
    assert int(batches[0].max()) < 256
    heldout = torch.cat(list(spec.heldout()))
    calib = torch.cat(batches)
    assert not any(torch.equal(h, c) for h in heldout for c in calib)
    batch = batches[0]
    with torch.no_grad():
        logits = spec.outputs(spec.model, batch)
    assert logits.shape == (*batch[:, :-1].shape, 256)
    assert torch.allclose(spec.loss(spec.model, batch), spec.output_loss(logits, batch))
    assert float(spec.distill_loss(logits, logits, batch).detach()) == pytest.approx(0.0, abs=1e-6)
    other = logits + torch.randn_like(logits)
    kl = spec.distill_loss(other, logits, batch).detach()
    p = torch.softmax(logits, -1)
    manual = (p * (torch.log_softmax(logits, -1) - torch.log_softmax(other, -1))).sum(-1).mean()
    assert float(kl) == pytest.approx(float(manual), rel=1e-4) and float(kl) > 0
    # the loss is cross-entropy on sampled next bytes: the refinement ranks colourings by the distillation instead
    assert spec.refine_score == "distill"


def test_discovery_finds_six_types_of_24_layers(spec):
    from geoshare_opt.frontend.discovery import discover, group_by_type

    nodes = discover(spec.model)
    groups = group_by_type(nodes)
    assert len(groups) == 6 and {t.split(":")[0] for t in groups} == ROLES
    for idx in groups.values():
        assert sorted(nodes[i].layer for i in idx) == list(range(24))


def test_analyze_diag_writes_a_valid_instance(spec, tmp_path):
    from geoshare_opt.frontend import analyze

    out = tmp_path / "tiny.json"
    inst = analyze(spec, estimator="diag", ratio=0.5, samples=8, out=out)
    loaded = Instance.load(out)
    assert loaded.sha256 == inst.sha256
    assert len(loaded.nodes) == 144 and len(loaded.types) == 6
    assert (tmp_path / "tiny.curvature.safetensors").is_file()
    u, v, w, hard = loaded.edge_arrays
    assert len(w) > 0 and all(math.isfinite(x) for x in w)


@pytest.mark.parametrize("options, message", [
    ({"recipe": "huge"}, "recipe 'huge'"),
    ({"seq_len": 1000}, "exceeds tiny-gpt's context"),
    ({"n_calib": 0}, "n_calib must be an integer"),
    ({"heldout_seqs": 10 ** 6}, "held-out"),
    ({"seed": "x"}, "seed must be an integer"),
    ({"layers": 3}, "unknown option 'layers'"),
])
def test_bad_options_are_one_line_input_errors(cache, options, message):
    with pytest.raises(InputError) as info:
        load_spec("tiny-gpt", **{"recipe": "test", "quiet": True, **options})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_build_model_command_prints_a_json_summary(cache):
    from click.testing import CliRunner

    from geoshare_opt.cli import cli

    result = CliRunner().invoke(cli, ["build-model", "tiny-gpt", "--recipe", "test", "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["cached"] is True and summary["path"].startswith(str(cache))
    assert summary["heldout_perplexity"] < 256 and summary["train_time_s"] > 0
    bad = CliRunner().invoke(cli, ["build-model", "tiny-gpt", "--recipe", "nope", "--quiet"])
    assert bad.exit_code == 2 and "recipe 'nope'" in bad.stderr


def test_the_dict_contract_accepts_distill_loss_and_checks_it():
    from geoshare_opt.specs.base import as_spec

    net = torch.nn.Linear(2, 2)
    base = {"model": net, "batches": [torch.zeros(1, 2)], "loss": lambda m, b: m(b).sum()}
    gn = {"outputs": lambda m, b: m(b), "output_loss": lambda z, b: z.sum()}
    kl = lambda s, t, b: (s - t).pow(2).mean()  # noqa: E731
    assert as_spec({**base, **gn, "distill_loss": kl}).distill_loss is kl
    assert as_spec(base).distill_loss is None
    for bad in ({**base, **gn, "distill_loss": 3}, {**base, "distill_loss": kl}):
        with pytest.raises(InputError, match="distill_loss"):
            as_spec(bad)
