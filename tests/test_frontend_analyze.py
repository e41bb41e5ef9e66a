"""``analyze`` end to end on tiny models: instance contents, sidecar, model left unchanged, budgets, bad input, CLI."""
from __future__ import annotations

import json
import math
import textwrap

import pytest

torch = pytest.importorskip("torch")
from click.testing import CliRunner  # noqa: E402
from torch import nn  # noqa: E402

from geoshare_opt.errors import InputError  # noqa: E402
from geoshare_opt.frontend import analyze, discover, fingerprint, load_curvature, role_of, sidecar_path  # noqa: E402
from geoshare_opt.frontend.runtime import FusedAttentionError, translated_errors  # noqa: E402
from geoshare_opt.instance import Instance  # noqa: E402


class Net(nn.Module):
    def __init__(self, width=8, depth=3):
        super().__init__()
        self.inp = nn.Linear(5, width)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.drop = nn.Dropout(0.5)
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, 3)

    def forward(self, x):
        x = torch.tanh(self.inp(x))
        for layer in self.hidden:
            x = torch.tanh(layer(self.drop(x)))
        return self.out(self.norm(x))


def tiny_spec(seed=0, n_batches=3, with_outputs=True, loss_fn=None):
    torch.manual_seed(seed)
    model = Net()
    g = torch.Generator().manual_seed(seed)
    data = [(torch.randn(6, 5, generator=g), torch.randint(0, 3, (6,), generator=g)) for _ in range(n_batches)]
    out_loss = lambda z, b: nn.functional.cross_entropy(z, b[1])
    spec = {"model": model, "batches": data, "loss": loss_fn or (lambda m, b: out_loss(m(b[0]), b))}
    if with_outputs:
        spec.update(outputs=lambda m, b: m(b[0]), output_loss=out_loss)
    return spec


HIDDEN = ["hidden.0.weight", "hidden.1.weight", "hidden.2.weight"]


@pytest.mark.parametrize("estimator", ["diag", "kfac", "lanczos"])
def test_instance_and_sidecar(tmp_path, estimator):
    spec = tiny_spec()
    model = spec["model"]
    model.train()
    model.norm.eval()                          # mixed modes must come back exactly
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    events = []
    out = tmp_path / "inst.json"
    inst = analyze(spec, estimator=estimator, ratio=0.5, out=out, progress=events.append, lanczos_steps=4, seed=3)
    # instance: node ids are parameter names, validates on reload, provenance present
    assert [n.id for n in inst.nodes] == HIDDEN
    assert {n.type for n in inst.nodes} == {"hidden:8x8"}
    assert [n.layer for n in inst.nodes] == [0, 1, 2]
    assert inst.nodes[0].meta == {"shape": [8, 8], "module": "hidden.0"}
    assert len(inst.edges) == 3 and all(math.isfinite(e.w) for e in inst.edges)
    assert inst.budget.max_params == math.floor(0.5 * 3 * 64) and inst.budget.max_classes == 3
    reloaded = Instance.load(out)
    assert reloaded.sha256 == inst.sha256
    meta = inst.meta
    assert meta["estimator"] == estimator and meta["mode"] == "tie" and meta["samples"] == 18
    assert meta["seed"] == 3 and meta["device"] == "cpu" and meta["dtype"] == "float32"
    assert set(meta["versions"]) == {"torch", "numpy", "geoshare-opt", "python"}
    assert meta["model"]["fingerprint"] == fingerprint(model, HIDDEN)
    assert meta["spread"] >= 0 and meta["time_s"] > 0
    assert meta["curvature"]["file"] == "inst.curvature.safetensors"
    assert events and {"step", "done", "total"} <= set(events[0])
    # sidecar
    tensors = load_curvature(out)
    for name in HIDDEN:
        d = tensors[f"diag/{name}"]
        assert d.shape == (8, 8) and d.dtype == torch.float32 and bool((d >= 0).all())
    if estimator == "kfac":
        assert tensors["in_cov/hidden.1.weight"].shape == (8, 8)
        assert tensors["out_cov/hidden.1.weight"].shape == (8, 8)
    else:
        assert not any(k.startswith(("in_cov/", "out_cov/")) for k in tensors)
    # the model is left as it was: bits, modes, hooks, grads
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]) and p.grad is None
    assert model.training and model.hidden[0].training and not model.norm.training
    for m in model.modules():
        assert not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks


def test_deterministic_given_seed_and_seed_matters():
    a = analyze(tiny_spec(), ratio=0.5)
    b = analyze(tiny_spec(), ratio=0.5)
    c = analyze(tiny_spec(), ratio=0.5, seed=1)
    assert [e.w for e in a.edges] == [e.w for e in b.edges]
    assert [e.w for e in a.edges] != [e.w for e in c.edges]


def test_sidecar_hash_is_checked(tmp_path):
    out = tmp_path / "x.json"
    analyze(tiny_spec(), max_classes=2, out=out)
    side = sidecar_path(out)
    data = bytearray(side.read_bytes())
    data[-1] ^= 1
    side.write_bytes(bytes(data))
    with pytest.raises(InputError, match="does not match"):
        load_curvature(out)
    side.unlink()
    with pytest.raises(InputError, match="not found"):
        load_curvature(out)
    with pytest.raises(InputError, match="names no curvature sidecar"):
        load_curvature(analyze(tiny_spec(), max_classes=2))


def test_basis_mode_writes_input_covariances(tmp_path):
    out = tmp_path / "b.json"
    inst = analyze(tiny_spec(), mode="basis", ratio=0.5, out=out)
    assert inst.meta["basis_rank"] == {"hidden:8x8": math.floor(0.5 * 2 * 64 / 24)}
    assert inst.budget.max_params is None
    tensors = load_curvature(out)
    assert tensors["in_cov/hidden.0.weight"].shape == (8, 8)


def test_bare_model_with_batches_and_loss_and_empirical_fallback():
    spec = tiny_spec(with_outputs=False)
    inst = analyze(spec["model"], spec["batches"], spec["loss"], max_classes=1 + 0 * 2, include="hidden.*")
    assert inst.meta["method"] == "empirical"
    # the empirical Fisher measures the gradient; this random net's is within noise everywhere, so no g·δ term
    snr = inst.meta["gradient_snr"]
    assert inst.meta["first_order_layers"] == [n for n in snr if snr[n] is None or snr[n] >= 4.0] == []
    assert inst.meta["first_order"] is False
    assert inst.budget.max_classes == 1


def test_dtype_and_samples_are_honoured_on_a_copy():
    spec = tiny_spec(n_batches=4)
    inst = analyze(spec, dtype="float64", samples=10, ratio=0.5)
    assert inst.meta["dtype"] == "float64" and inst.meta["samples"] == 10 and inst.meta["batches"] == 2
    assert all(p.dtype == torch.float32 for p in spec["model"].parameters())


def test_discovery_roles_patterns_and_errors():
    assert role_of("encoder.layer.3.attention.self.query.weight") == "attn.q"
    assert role_of("encoder.layer.3.attention.output.dense.weight") == "attn.o"
    assert role_of("encoder.layer.3.intermediate.dense.weight") == "mlp.up"
    assert role_of("encoder.layer.3.output.dense.weight") == "mlp.down"
    assert role_of("model.layers.7.self_attn.k_proj.weight") == "attn.k"
    assert role_of("model.layers.7.mlp.gate_proj.weight") == "mlp.gate"
    assert role_of("model.layers.7.mlp.down_proj.weight") == "mlp.down"
    assert role_of("transformer.h.2.attn.c_proj.weight") == "attn.o"
    assert role_of("transformer.h.2.mlp.c_proj.weight") == "mlp.down"
    assert role_of("hidden.3.weight") == "hidden"
    model = Net(depth=4)
    assert [n.name for n in discover(model, exclude="hidden.3.*")] == HIDDEN
    assert [n.name for n in discover(model, include=["re:hidden\\.[02]"])] == ["hidden.0.weight", "hidden.2.weight"]
    with pytest.raises(InputError, match="matches no parameter"):
        discover(model, include="encoder.*")
    with pytest.raises(InputError, match="no two compatible tensors"):
        discover(model, include="hidden.0.*")
    with pytest.raises(InputError, match="not a valid regular expression"):
        discover(model, include="re:(")


def test_bad_options_and_budgets():
    with pytest.raises(InputError, match="not both"):
        analyze(tiny_spec(), ratio=0.5, max_classes=2)
    with pytest.raises(InputError, match="too high"):
        analyze(tiny_spec(), ratio=0.9)
    with pytest.raises(InputError, match="strictly between"):
        analyze(tiny_spec(), ratio=1.5)
    with pytest.raises(InputError, match="estimator"):
        analyze(tiny_spec(), estimator="exact")
    with pytest.raises(InputError, match="needs a rank or a ratio"):
        analyze(tiny_spec(), mode="basis")
    with pytest.raises(InputError, match="no CUDA GPU"):
        if torch.cuda.is_available():
            raise InputError("no CUDA GPU (skipped: a GPU is present)")
        analyze(tiny_spec(), device="cuda")


def test_non_finite_loss_fails_cleanly_without_files(tmp_path):
    calls = {"n": 0}

    def loss(m, b):
        calls["n"] += 1
        value = nn.functional.cross_entropy(m(b[0]), b[1])
        return value * float("nan") if calls["n"] == 2 else value
    out = tmp_path / "bad.json"
    with pytest.raises(InputError, match="not finite.*batch 1"):
        analyze(tiny_spec(with_outputs=False, loss_fn=loss), ratio=0.5, out=out)
    assert list(tmp_path.iterdir()) == []


def test_write_failure_leaves_no_partial_files(tmp_path, monkeypatch):
    import geoshare_opt.frontend.sidecar as sidecar

    def broken(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(sidecar.os, "replace", broken)
    with pytest.raises(OSError):
        analyze(tiny_spec(), ratio=0.5, out=tmp_path / "x.json")
    assert list(tmp_path.iterdir()) == []


def test_fused_attention_error_is_explained():
    msg = "derivative for aten::_scaled_dot_product_efficient_attention_backward is not implemented"
    with pytest.raises(FusedAttentionError, match="math path"):
        with translated_errors("lanczos", torch.device("cpu")):
            raise RuntimeError(msg)
    with pytest.raises(InputError, match="out of memory on cpu during diag: lower"):
        with translated_errors("diag", torch.device("cpu")):
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes")


def test_attention_model_runs_second_order_through_math_kernel():
    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(nn.Linear(8, 8) for _ in range(2))

        def forward(self, x):
            for layer in self.layers:
                h = layer(x)
                x = x + nn.functional.scaled_dot_product_attention(h, h, h)
            return x
    torch.manual_seed(0)
    data = [torch.randn(2, 4, 8)]
    inst = analyze(Attn(), data, lambda m, b: m(b).pow(2).mean(), estimator="lanczos", lanczos_steps=3,
                   max_classes=1)
    assert len(inst.edges) == 1 and math.isfinite(inst.edges[0].w)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    cpu = analyze(tiny_spec(), ratio=0.5, estimator="kfac", dtype="float64")
    gpu = analyze(tiny_spec(), ratio=0.5, estimator="kfac", dtype="float64", device="cuda")
    assert gpu.meta["device"].startswith("cuda")
    for a, b in zip(cpu.edges, gpu.edges):
        assert b.w == pytest.approx(a.w, rel=0.5)   # different random streams: same scale, not same bits


SPEC_FILE = textwrap.dedent("""
    import torch
    from torch import nn

    def make():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6))
        data = [torch.randn(5, 4) for _ in range(2)]
        return {"model": model, "batches": data, "loss": lambda m, b: m(b).pow(2).mean()}

    def broken():
        return 42
""")


def test_cli_writes_files_and_reports_errors(tmp_path, monkeypatch):
    from geoshare_opt.cli import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "userspec.py").write_text(SPEC_FILE)
    runner = CliRunner()
    res = runner.invoke(cli, ["analyze", "userspec.py:make", "-o", "u.json", "--ratio", "0.4", "-q"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["nodes"] == 2 and summary["edges"] == 1 and summary["curvature"] == "u.curvature.safetensors"
    inst = Instance.load(tmp_path / "u.json")
    assert [n.id for n in inst.nodes] == ["2.weight", "4.weight"]
    assert load_curvature(tmp_path / "u.json")["diag/2.weight"].shape == (6, 6)
    # no -o: the instance on stdout, nothing written
    res = runner.invoke(cli, ["analyze", "userspec.py:make", "--max-classes", "1", "-q"])
    assert res.exit_code == 0 and Instance.loads(res.stdout).budget.max_classes == 1
    for args, pattern in [(["userspec.py:broken"], "must return a dict"),
                          (["userspec.py:make", "--include", "nothing*"], "matches no parameter"),
                          (["userspec.py:make", "--device", "cuda"], "no CUDA GPU"),
                          (["userspec.py:make", "--ratio", "0.4", "--max-classes", "2"], "not both"),
                          (["missing.py:make"], "not found")]:
        if "cuda" in args and torch.cuda.is_available():
            continue
        res = runner.invoke(cli, ["analyze", *args, "-q", "-o", "e.json"])
        assert res.exit_code == 2, (args, res.output)
        assert pattern in res.stderr and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u.curvature.safetensors", "u.json", "userspec.py"]


def test_lanczos_graph_budget_changes_nothing_but_what_is_kept():
    spec = tiny_spec(n_batches=3)
    kept = analyze(spec, estimator="lanczos", lanczos_steps=4, include="hidden.*")
    redone = analyze(spec, estimator="lanczos", lanczos_steps=4, include="hidden.*", lanczos_graph_budget=0)
    assert kept.meta["lanczos"]["graphs_kept"] == "3/3" and kept.meta["lanczos"]["graphs_kept_mb"] >= 0
    assert redone.meta["lanczos"]["graphs_kept"] == "0/3"
    assert kept.meta["lanczos"]["eigenvalues"] == redone.meta["lanczos"]["eigenvalues"]
    assert [e.w for e in kept.edges] == [e.w for e in redone.edges]
    for bad in (-1, 1.5, True):
        with pytest.raises(InputError, match="lanczos_graph_budget"):
            analyze(spec, estimator="lanczos", lanczos_graph_budget=bad)
