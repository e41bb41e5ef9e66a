"""The back end's shared-basis mode with covariances that break whitening: singular (a dead input feature, a layer
that never saw input) still gives finite factors; a non-finite covariance is a one-line InputError naming the layer."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from geoshare_opt.errors import InputError  # noqa: E402
from geoshare_opt.materialize import apply  # noqa: E402
from materialize_helpers import TinyMLP, curvature_for, make_instance, make_result  # noqa: E402


def grouped(inst, members):
    a = {n.id: i for i, n in enumerate(inst.nodes)}
    for m in members:
        a[m] = a[members[0]]
    return a


def test_singular_covariances_give_finite_factors():
    model = TinyMLP()
    inst = make_instance(model)
    curv = curvature_for(model)
    curv["in_cov/hidden.1.weight"][:, 3] = 0          # input feature 3 never fires in this layer
    curv["in_cov/hidden.1.weight"][3, :] = 0
    curv["in_cov/hidden.2.weight"].zero_()             # this layer never saw input
    members = ["hidden.0.weight", "hidden.1.weight", "hidden.2.weight"]
    out = apply(model, inst, make_result(inst, grouped(inst, members)), "basis", curv, ratio=0.3)
    compressed, _ = out
    for p in compressed.parameters():
        assert bool(torch.isfinite(p).all())
    y = compressed(torch.randn(5, 6))
    assert bool(torch.isfinite(y).all())


def test_non_finite_covariance_is_refused_by_name():
    model = TinyMLP()
    inst = make_instance(model)
    curv = curvature_for(model)
    curv["in_cov/hidden.1.weight"][0, 0] = float("inf")
    members = ["hidden.0.weight", "hidden.1.weight"]
    with pytest.raises(InputError, match=r"hidden\.1\.weight.*not finite"):
        apply(model, inst, make_result(inst, grouped(inst, members)), "basis", curv, ratio=0.3)
