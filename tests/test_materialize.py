"""The back end's apply: tying shares storage for real, the merge is the closed form, shared bases at full rank
reproduce the network, and results/models/curvature that do not belong together are refused."""
import pytest

torch = pytest.importorskip("torch")

from geoshare_opt.checker import evaluate  # noqa: E402
from geoshare_opt.errors import InputError  # noqa: E402
from geoshare_opt.materialize import SharedBasisLinear, apply, parameter_report  # noqa: E402
from geoshare_opt.materialize.basis import factor_class  # noqa: E402
from materialize_helpers import TinyMLP, curvature_for, make_instance, make_result, node_ids  # noqa: E402

X = torch.randn(7, 6, generator=torch.Generator().manual_seed(3))


def colouring(inst, groups):
    """{node: class} with the given groups (lists of node ids) and every other node alone."""
    a, c = {}, 0
    for g in groups:
        for n in g:
            a[n] = c
        c += 1
    for n in inst.nodes:
        if n.id not in a:
            a[n.id], c = c, c + 1
    return a


@pytest.fixture(scope="module")
def setup():
    model = TinyMLP()
    inst = make_instance(model)
    return model, inst, curvature_for(model)


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_tie_shares_storage_and_counts_match_the_colouring(setup):
    model, inst, curv = setup
    before = snapshot(model)
    groups = [["hidden.0.weight", "hidden.2.weight", "hidden.3.weight"], ["up.0.weight", "up.1.weight"]]
    res = make_result(inst, colouring(inst, groups))
    compressed, report = apply(model, inst, res, "tie", curv)
    ptr = lambda n: compressed.get_parameter(n).data_ptr()  # noqa: E731
    assert ptr("hidden.0.weight") == ptr("hidden.2.weight") == ptr("hidden.3.weight")
    assert compressed.hidden[0].weight is compressed.hidden[3].weight
    assert ptr("hidden.1.weight") != ptr("hidden.0.weight")
    assert ptr("up.0.weight") == ptr("up.1.weight") and ptr("down.0.weight") != ptr("down.1.weight")
    assert compressed.hidden[0].bias.data_ptr() != compressed.hidden[2].bias.data_ptr()   # biases stay per layer
    ev = evaluate(inst, res.assignment)
    after = report.parameters["after"]
    assert after["shareable_params"] == ev.stored_params
    assert report.parameters["before"]["params"] - after["params"] == sum(inst.params) - ev.stored_params
    assert after["params"] == sum(p.numel() for p in compressed.parameters())   # parameters() dedups by identity
    assert after["param_bytes"] == 4 * after["params"]
    # the input model is untouched and still untied
    assert all(torch.equal(v, snapshot(model)[k]) for k, v in before.items())
    assert model.hidden[0].weight is not model.hidden[2].weight
    # one optimiser step moves every member together (it really is one tensor)
    compressed(X).sum().backward()
    with torch.no_grad():
        compressed.hidden[0].weight -= 0.1 * compressed.hidden[0].weight.grad
    assert torch.equal(compressed.hidden[0].weight, compressed.hidden[3].weight)


def test_curvature_weighted_merge_equals_closed_form(setup):
    model, inst, curv = setup
    members = ["hidden.1.weight", "hidden.2.weight", "hidden.3.weight"]
    res = make_result(inst, colouring(inst, [members]))
    compressed, report = apply(model, inst, res, "tie", curv)
    w = [model.get_parameter(m).detach().double() for m in members]
    h = [curv[f"diag/{m}"].double() for m in members]
    expect = sum(hi * wi for hi, wi in zip(h, w)) / sum(h)
    assert torch.allclose(compressed.hidden[1].weight.double(), expect, atol=1e-6)
    # and it minimises the diagonal quadratic model: any other common value costs more
    cost = lambda v: sum((hi * (wi - v) ** 2).sum() for hi, wi in zip(h, w))  # noqa: E731
    assert cost(expect) < cost(sum(w) / 3) and cost(expect) < cost(expect + 1e-3)
    record = next(c for c in report.classes if c["members"] == members)
    assert record["merge"] == "curvature-weighted"
    # without curvature: the plain mean
    plain, rep2 = apply(model, inst, res, "tie", None)
    assert torch.allclose(plain.hidden[1].weight.double(), sum(w) / 3, atol=1e-6)
    assert next(c for c in rep2.classes if c["members"] == members)["merge"] == "mean"


@pytest.mark.parametrize("side", ["in", "out", "auto"])
def test_basis_full_rank_reproduces_outputs(setup, side):
    model, inst, curv = setup
    groups = [["hidden.0.weight", "hidden.1.weight", "hidden.3.weight"], ["up.0.weight", "up.1.weight"],
              ["down.0.weight", "down.1.weight"]]
    compressed, report = apply(model, inst, make_result(inst, colouring(inst, groups)), "basis", curv,
                               rank="full", side=side)
    assert isinstance(compressed.hidden[0], SharedBasisLinear)
    h0, h3 = compressed.hidden[0], compressed.hidden[3]
    shared = h0.shared
    assert getattr(h0, shared) is getattr(h3, shared)
    assert getattr(h0, shared).data_ptr() == getattr(h3, shared).data_ptr()
    assert torch.allclose(compressed(X), model(X), atol=1e-5)
    for name in ("hidden.0.weight", "up.1.weight", "down.0.weight"):
        mod = compressed.get_submodule(name.rsplit(".", 1)[0])
        delta = (mod.weight - model.get_parameter(name)).double()
        g = curv[f"in_cov/{name}"].double()
        # equal on every input direction the layer sees (a dead ReLU unit's column is free)
        assert torch.trace(delta @ g @ delta.T) < 1e-8


def test_basis_ratio_meets_the_budget_and_error_falls_with_rank(setup):
    model, inst, curv = setup
    res = make_result(inst, colouring(inst, [["hidden.0.weight", "hidden.1.weight"],
                                             ["hidden.2.weight", "hidden.3.weight"]]))
    errs = []
    for ratio in (0.7, 0.5, 0.2):
        compressed, report = apply(model, inst, res, "basis", curv, ratio=ratio)
        p = report.parameters
        assert p["shareable_removed_fraction"] >= ratio - 1e-9       # floor(rank) never exceeds the budget
        assert p["after"]["shareable_params"] == sum(c["stored"] for c in report.classes)
        with torch.no_grad():
            errs.append(float((compressed(X) - model(X)).pow(2).mean()))
    assert errs[0] > errs[1] > errs[2]


def test_own_covariance_refit_is_no_worse_than_pooled():
    g = torch.Generator().manual_seed(0)
    W = [torch.randn(5, 6, generator=g, dtype=torch.float64) for _ in range(3)]
    covs = []
    for i in range(3):
        A = torch.randn(6, 6, generator=g, dtype=torch.float64) * (1 + i)
        covs.append(A @ A.T / 6)
    V, coefs = factor_class(W, covs, 3, "in")
    G = sum(covs)
    for w, c, gl in zip(W, coefs, covs):
        own = torch.trace((w - c @ V) @ gl @ (w - c @ V).T)
        pooled_c = w @ G @ V.T @ torch.linalg.inv(V @ G @ V.T)
        pooled = torch.trace((w - pooled_c @ V) @ gl @ (w - pooled_c @ V).T)
        assert own <= pooled + 1e-9
        # closed form: the gradient of the own-covariance error vanishes at the refit coefficients
        grad = (c @ V - w) @ gl @ V.T
        assert grad.abs().max() < 1e-8


def test_result_for_another_instance_is_refused(setup):
    model, inst, curv = setup
    other = make_instance(model, seed=9)
    res = make_result(other, colouring(other, []))
    with pytest.raises(InputError, match="answers instance"):
        apply(model, inst, res, "tie", curv)


def test_model_with_other_weights_is_refused(setup):
    model, inst, curv = setup
    other = TinyMLP(seed=1)
    with pytest.raises(InputError, match="fingerprint"):
        apply(other, inst, make_result(inst, colouring(inst, [])), "tie", curv)


def test_wrong_architecture_is_refused(setup):
    model, inst, curv = setup
    with pytest.raises(InputError, match="no parameter"):
        apply(TinyMLP(depth=2), inst, make_result(inst, colouring(inst, [])), "tie", None)


def test_basis_without_covariances_is_refused(setup):
    model, inst, _ = setup
    diag_only = curvature_for(model, with_cov=False)
    with pytest.raises(InputError, match="basis mode needs input covariances: re-run analyze with --mode basis"):
        apply(model, inst, make_result(inst, colouring(inst, [])), "basis", diag_only, ratio=0.5)


def test_infeasible_or_unknown_inputs_are_refused(setup):
    model, inst, curv = setup
    res = make_result(inst, colouring(inst, []))
    bad = make_result(inst, colouring(inst, []))
    bad.assignment = dict(bad.assignment, **{"up.0.weight": bad.assignment["hidden.0.weight"]})   # mixes types
    with pytest.raises(InputError):
        apply(model, inst, bad, "tie", curv)
    with pytest.raises(InputError, match="mode"):
        apply(model, inst, res, "prune", curv)
    with pytest.raises(InputError, match="ratio"):
        apply(model, inst, res, "basis", curv, ratio=1.5)


def test_parameter_report_counts_unique_storages():
    model = TinyMLP()
    rep = parameter_report(model, node_ids(model))
    assert rep["params"] == sum(p.numel() for p in model.parameters()) and rep["aliases"] == 0
    model.hidden[1].weight = model.hidden[0].weight
    rep2 = parameter_report(model, node_ids(model))
    assert rep2["params"] == rep["params"] - 64 and rep2["aliases"] == 1 and rep2["shareable_storages"] == 7


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_apply_on_a_cuda_model_keeps_the_device(setup):
    model, inst, curv = setup
    cuda_model = TinyMLP().cuda()
    res = make_result(inst, colouring(inst, [["hidden.0.weight", "hidden.1.weight"]]))
    for mode in ("tie", "basis"):
        compressed, _ = apply(cuda_model, inst, res, mode, curv, rank="full" if mode == "basis" else None)
        assert all(p.is_cuda for p in compressed.parameters())
        if mode == "basis":
            x = X.cuda()
            assert torch.allclose(compressed(x), cuda_model(x), atol=1e-4)


def test_top_level_load_compressed_is_the_back_end_loader():
    import geoshare_opt
    from geoshare_opt.materialize import load_compressed
    assert geoshare_opt.load_compressed is load_compressed


def test_predicted_class_cost_is_the_quadratic_model(setup):
    model, inst, curv = setup
    members = ["up.0.weight", "up.1.weight"]
    _, report = apply(model, inst, make_result(inst, colouring(inst, [members])), "tie", curv)
    rec = next(c for c in report.classes if c["members"] == members)
    w = [model.get_parameter(m).detach().double() for m in members]
    h = [curv[f"diag/{m}"].double() for m in members]
    # for a pair: ½ Σ h_i h_j / (h_i + h_j) (w_i − w_j)², the front end's tie pair weight without the gradient term
    pair = 0.5 * (h[0] * h[1] / (h[0] + h[1]) * (w[0] - w[1]) ** 2).sum()
    assert rec["predicted_cost"] == pytest.approx(float(pair), rel=1e-9)
