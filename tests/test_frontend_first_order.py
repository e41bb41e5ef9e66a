"""``meta.first_order`` tells the truth: which layers' ``g·δ`` term entered the tie weights."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from geoshare_opt.frontend import analyze  # noqa: E402
from geoshare_opt.frontend.estimators.common import Curvature  # noqa: E402
from geoshare_opt.frontend.pairs import first_order_layers  # noqa: E402

from test_frontend_analyze import HIDDEN, tiny_spec  # noqa: E402


class FakeNode:
    def __init__(self, name):
        self.name = name


def test_first_order_layers_follow_the_snr_filter_and_zero_gradients():
    names = ["a", "b", "c"]
    grad = {"a": torch.ones(2, 2), "b": torch.ones(2, 2), "c": torch.zeros(2, 2)}
    curv = Curvature("diag", "empirical", diag={n: torch.ones(2, 2) for n in names}, samples=10, batches=1,
                     spread=0.0, grad=grad, stats={"gradient_snr": {"a": 10.0, "b": 1.0, "c": 50.0}})
    nodes = [FakeNode(n) for n in names]
    assert first_order_layers(nodes, curv) == ["a"]               # b is noise, c is exactly zero
    assert first_order_layers(nodes, curv, first_order=False) == []
    curv.grad = None
    assert first_order_layers(nodes, curv) == []


def test_meta_first_order_false_when_every_gradient_is_dropped():
    spec = tiny_spec(with_outputs=False)                   # empirical Fisher: per-example gradients, SNR measured
    kept = analyze(spec, include="hidden.*", diag_method="empirical")
    snr = kept.meta["gradient_snr"]
    assert set(snr) == set(HIDDEN)
    assert kept.meta["first_order_layers"] == [n for n in HIDDEN if snr[n] is None or snr[n] >= 4.0]
    assert kept.meta["first_order"] is bool(kept.meta["first_order_layers"])
    # drop every layer: the weights must equal those without the term, and the meta must say so
    from geoshare_opt.frontend import pairs
    old = pairs.GRADIENT_SNR
    try:
        pairs.GRADIENT_SNR = float("inf")
        none = analyze(spec, include="hidden.*", diag_method="empirical")
    finally:
        pairs.GRADIENT_SNR = old
    off = analyze(spec, include="hidden.*", diag_method="empirical", first_order=False)
    assert none.meta["first_order"] is False and none.meta["first_order_layers"] == []
    assert off.meta["first_order"] is False and off.meta["first_order_layers"] == []
    assert [e.w for e in none.edges] == pytest.approx([e.w for e in off.edges])


def test_meta_first_order_for_estimators_without_a_gradient_or_with_a_zero_one():
    spec = tiny_spec()
    ggn = analyze(spec, include="hidden.*")                       # Monte-Carlo Gauss-Newton: no gradient measured
    assert ggn.meta["method"] == "ggn" and ggn.meta["first_order"] is False
    lan = analyze(spec, include="hidden.*", estimator="lanczos", lanczos_steps=3)
    assert lan.meta["first_order"] is True and lan.meta["first_order_layers"] == HIDDEN
    # a distillation loss at the original weights: the gradient is exactly zero, no layer has a g·δ term
    model = spec["model"].eval()                                  # analyze runs in eval mode (dropout off)
    with torch.no_grad():
        teacher = [(x, model(x)) for x, _ in spec["batches"]]
    distill = analyze(model, teacher, lambda m, b: nn.functional.mse_loss(m(b[0]), b[1]), include="hidden.*",
                      estimator="lanczos", lanczos_steps=3)
    assert distill.meta["first_order"] is False and distill.meta["first_order_layers"] == []
    basis = analyze(spec, include="hidden.*", estimator="lanczos", lanczos_steps=3, mode="basis", rank=2)
    assert basis.meta["first_order"] is False
