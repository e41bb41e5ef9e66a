"""Measured evaluation, measured class costs and the measured refinement (``geoshare_opt.measured``), on a tiny random
network with three layer types (milliseconds per forward pass)."""
import itertools
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from geoshare_opt.baselines import baseline  # noqa: E402
from geoshare_opt.checker import evaluate, labels_from_assignment  # noqa: E402
from geoshare_opt.errors import InputError  # noqa: E402
from geoshare_opt.materialize import apply  # noqa: E402
from geoshare_opt.measured import (ColouringEvaluator, MeasuredClassCost, Refiner, best_partitions,  # noqa: E402
                                   evaluate_colouring, recommend)
from geoshare_opt.measured.classcosts import allocate_types, colouring_from_curves  # noqa: E402
from geoshare_opt.measured.recommend import diagonal_surrogate  # noqa: E402
from geoshare_opt.measured.refine import (Feasibility, Scored, Surrogate, apply_change, merge_splits, moves,  # noqa: E402
                                         partition_of, swaps)
from geoshare_opt.specs import as_spec  # noqa: E402

from materialize_helpers import TinyMLP, make_instance, node_ids  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    """A spec (distillation to the network's own outputs on random inputs), an instance at 60 % of the stored
    parameters (hidden 8x8 x4, up 16x8 x2, down 8x16 x2: three classes of hidden and one each of up and down fit,
    or one of hidden and two of up, ...) and a curvature mapping with tie weights and input covariances."""
    model = TinyMLP(seed=3).eval()
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(16, 6, generator=g) for _ in range(6)]
    with torch.no_grad():
        batches = [(x, model(x)) for x in xs]
    spec = as_spec({"model": model, "batches": batches, "heldout": batches[:2],
                    "loss": lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1]),
                    "metrics": lambda m: {"fidelity_mse": float(torch.nn.functional.mse_loss(m(xs[0]), batches[0][1]).detach())}},
                   "tiny")
    total = sum(p.numel() for n, p in model.named_parameters() if n in node_ids(model))
    instance = make_instance(model, max_params=total * 6 // 10)
    params = dict(model.named_parameters())
    curvature = {}
    for nid in node_ids(model):
        w = params[nid]
        curvature[f"diag/{nid}"] = torch.rand(w.shape, generator=g) + 0.1
        a = torch.randn(w.shape[1], w.shape[1], generator=g)
        curvature[f"in_cov/{nid}"] = a @ a.T / w.shape[1] + 0.1 * torch.eye(w.shape[1])
    return spec, instance, curvature


def classes(instance):
    return {t: 3 if t.startswith("hidden") else 1 for t in instance.types}


def applied_loss(spec, instance, colouring, curvature, mode, ratio=None):
    model, _ = apply(spec.model, instance, colouring, mode, curvature, ratio=ratio)
    with torch.no_grad():
        losses = [float(spec.loss(model, b)) for b in spec.batches()]
    return float(np.mean(losses))


@pytest.mark.parametrize("mode", ["tie", "basis"])
def test_evaluator_measures_what_apply_builds_and_restores_the_network(tiny, mode):
    spec, instance, curvature = tiny
    before = {k: v.clone() for k, v in spec.model.state_dict().items()}
    ratio = 0.5 if mode == "basis" else None
    colourings = [baseline(instance, k, classes=classes(instance)) for k in ("cycle", "sandwich", "sequence")]
    expected = [applied_loss(spec, instance, res, curvature, mode, ratio) for res in colourings]
    with ColouringEvaluator(spec, instance, curvature, mode=mode, ratio=ratio, copy_model=False) as ev:
        for res, loss in zip(colourings + colourings[::-1], expected + expected[::-1]):   # only changes rewritten
            assert ev.loss(res) == pytest.approx(loss, rel=1e-5)
        ev.reset()
        assert ev.loss() == pytest.approx(0.0, abs=1e-12)
    after = spec.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_evaluate_colouring_reports_loss_feasibility_and_metrics(tiny):
    spec, instance, curvature = tiny
    res = baseline(instance, "cycle", classes=classes(instance))
    out = evaluate_colouring(spec, instance, res, curvature, metrics=True)
    assert out["loss_trained"] == pytest.approx(0.0, abs=1e-12) and out["loss_increase"] == out["loss"] > 0
    assert out["feasible"] and out["violations"] == [] and out["examples"] == 96
    assert out["metrics"]["fidelity_mse"] > 0
    held = evaluate_colouring(spec, instance, res.assignment, curvature, data="heldout")
    assert held["examples"] == 32
    unshared = evaluate_colouring(spec, instance, list(range(len(instance.nodes))), curvature)
    assert unshared["loss"] == pytest.approx(0.0, abs=1e-12) and not unshared["feasible"]     # over the budget
    with pytest.raises(InputError, match="data must be"):
        evaluate_colouring(spec, instance, res, curvature, data="train")
    with pytest.raises(InputError, match="mixes node types"):
        evaluate_colouring(spec, instance, [0] * len(instance.nodes), curvature)


def test_measured_class_cost_is_the_loss_increase_and_is_cached(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("GEOSHARE_OPT_CACHE", str(tmp_path))
    spec, instance, curvature = tiny
    ev = ColouringEvaluator(spec, instance, curvature)
    oracle = MeasuredClassCost(ev, [0, 1, 2], curvature=curvature)
    hidden = list(instance.type_members(instance.types[0]))
    direct = ev.loss(labels_for(instance, [hidden[:2]]), indices=[0, 1, 2]) - oracle.base
    assert oracle.cost(hidden[:2]) == pytest.approx(direct)
    assert oracle.cost(hidden[:1]) == 0.0 and oracle.singleton_cost(hidden[0]) == 0.0    # tie: alone = unchanged
    table = oracle.subset_costs(hidden)
    assert table[0b11] == pytest.approx(direct) and oracle.measured == 3 * (2 ** 4 - 4 - 1)
    oracle.close()
    again = MeasuredClassCost(ColouringEvaluator(spec, instance, curvature), [0, 1, 2], curvature=curvature)
    assert np.array_equal(again.subset_costs(hidden), table) and again.measured == 0       # from the disk cache
    other = MeasuredClassCost(ColouringEvaluator(spec, instance, curvature), [3, 4], curvature=curvature)
    assert other.cost(hidden[:2]) != pytest.approx(direct)                                 # other data, other key


def labels_for(instance, classes):
    labels = list(range(len(instance.nodes)))
    for members in classes:
        for i in members:
            labels[i] = members[0]
    return labels


def all_partitions(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in all_partitions(rest):
        for k in range(len(part)):
            yield part[:k] + [[first] + part[k]] + part[k + 1:]
        yield [[first]] + part


@pytest.mark.parametrize("n", [1, 3, 5, 6])
def test_best_partitions_is_the_brute_force_optimum_at_every_class_count(n):
    rng = np.random.default_rng(n)
    table = rng.random(2 ** n)
    best = best_partitions(table, n)
    for k in range(1, n + 1):
        brute = min(sum(table[sum(1 << b for b in c)] for c in p) for p in all_partitions(list(range(n)))
                    if len(p) == k)
        value, masks = best[k]
        assert value == pytest.approx(brute)
        assert sorted(b for m in masks for b in range(n) if m >> b & 1) == list(range(n)) and len(masks) == k
    assert best[0] is None or n == 0


def test_measured_optimum_fits_the_budget(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("GEOSHARE_OPT_CACHE", str(tmp_path))
    spec, instance, curvature = tiny
    oracle = MeasuredClassCost(ColouringEvaluator(spec, instance, curvature), [0], curvature=curvature)
    curves = {t: best_partitions(oracle.subset_costs(instance.type_members(t)), len(instance.type_members(t)))
              for t in instance.types}
    counts = allocate_types(instance, curves)
    labels = colouring_from_curves(instance, curves, counts)
    assert evaluate(instance, labels).feasible
    assert sum(curves[t][counts[t]][0] for t in instance.types) == pytest.approx(min(
        sum(curves[t][k][0] for t, k in zip(instance.types, ks))
        for ks in itertools.product(*[range(1, len(instance.type_members(t)) + 1) for t in instance.types])
        if evaluate(instance, colouring_from_curves(instance, curves, dict(zip(instance.types, ks)))).feasible))


def test_neighbourhoods_keep_every_node_in_one_class_of_its_type(tiny):
    spec, instance, curvature = tiny
    part = partition_of(instance, labels_from_assignment(instance, baseline(instance, "cycle",
                                                                            classes=classes(instance)).assignment))
    surrogate = Surrogate(diagonal_surrogate(instance, ColouringEvaluator(spec, instance, curvature), curvature))
    members = {t: sorted(int(i) for i in instance.type_members(t)) for t in instance.types}
    kinds = set()
    slack = instance.budget.max_params - Feasibility(instance).type_stored([c for t in part for c in part[t]])
    for kind, change in itertools.chain(moves(part), swaps(part), merge_splits(part, surrogate, instance.params,
                                                                                slack)):
        kinds.add(kind)
        cand = apply_change(part, change)
        assert cand != part and {t for t, _ in change} == {t for t in part if cand[t] != part[t]}
        for t in instance.types:
            assert sorted(i for c in cand[t] for i in c) == members[t]
        if kind == "merge+split":          # the class budget moves between types within max_params
            assert Feasibility(instance).ok(cand)
    assert kinds == {"move", "swap", "merge+split"}


def test_refinement_never_ends_worse_than_its_best_start_and_respects_the_budget(tiny):
    spec, instance, curvature = tiny
    ev = ColouringEvaluator(spec, instance, curvature)
    starts = {k: baseline(instance, k, classes=classes(instance)).assignment for k in ("cycle", "sandwich", "sequence", "random")}
    starts = {k: labels_from_assignment(instance, v) for k, v in starts.items()}
    surrogate = diagonal_surrogate(instance, ev, curvature)
    runs = [Refiner(ev, instance, [0, 1], [2, 3], surrogate, max_passes=passes).run(starts) for passes in (0, 60, 60)]
    idle, found, again = runs
    assert idle.accepted == [] and idle.stopped == "budget"
    best = min(idle.starts, key=lambda k: idle.starts[k]["search"] + idle.starts[k]["confirm"])
    assert idle.start == best and np.array_equal(idle.labels, starts[best])
    assert found.accepted and found.search_loss < found.starts[found.start]["search"]       # it does improve
    assert found.confirm_loss <= min(s["confirm"] for s in found.starts.values())
    scored = lambda search, confirm: Scored({}, np.array(search, float), np.array(confirm, float))
    fits_search_only = [("a", scored([0, 0], [2, 2]))]          # best in total, behind start b on the confirm split
    chosen = Refiner(ev, instance, [0, 1], [2, 3], surrogate).choose(
        fits_search_only, {"a": scored([5, 5], [3, 3]), "b": scored([4, 4], [1, 1])})
    assert chosen[0] == "b"
    assert found.forward_passes - 4 * len(starts) <= 60 + 2     # starts measured first; a confirm may end a pass over
    assert evaluate(instance, found.labels).feasible
    assert np.array_equal(found.labels, again.labels) and found.accepted == again.accepted    # deterministic
    with pytest.raises(InputError, match="disjoint"):
        Refiner(ev, instance, [0, 1], [1, 2], surrogate)


def test_recommend_returns_a_checked_result_from_the_starts(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("GEOSHARE_OPT_CACHE", str(tmp_path))
    spec, instance, curvature = tiny
    starts = {k: baseline(instance, k, classes=classes(instance)) for k in ("cycle", "sandwich", "all")}
    result, record = recommend(spec, instance, curvature, starts,
                               options={"chunks": 12, "cost_chunks": 1, "search_chunks": 2, "confirm_chunks": 2,
                                        "max_passes": 40, "class_costs": True})
    assert result.solver == "measured" and result.feasible
    assert evaluate(instance, result.assignment).feasible
    assert record["surrogate"] == "MeasuredClassCost" and "measured-costs" in record["starts"]
    assert record["search_loss"] <= min(s["search"] for s in record["starts"].values()) + 1e-12 or record["accepted"]
    with pytest.raises(InputError, match="unknown refine option"):
        recommend(spec, instance, curvature, starts, options={"passes": 3})
    with pytest.raises(InputError, match="max_passes"):
        recommend(spec, instance, curvature, starts, options={"max_passes": -1})
    with pytest.raises(InputError, match="class_costs"):
        recommend(spec, instance, curvature, starts, options={"class_costs": "yes"})
    _, plain = recommend(spec, instance, curvature, starts, options={"chunks": 12, "max_passes": 10})
    assert plain["surrogate"] != "MeasuredClassCost" and "measured-costs" not in plain["starts"]


def test_basis_mode_evaluator_rejects_a_curvature_without_covariances(tiny):
    spec, instance, curvature = tiny
    diag_only = {k: v for k, v in curvature.items() if k.startswith("diag/")}
    with pytest.raises(InputError, match="mode basis|--mode basis"):
        ColouringEvaluator(spec, instance, diag_only, mode="basis", ratio=0.5)
    assert math.isfinite(ColouringEvaluator(spec, instance, diag_only).loss(baseline(instance, "cycle", classes=classes(instance))))


def test_calibration_pieces_mix_every_batch_and_keep_every_example():
    from geoshare_opt.materialize.recover import interleaved_pieces
    from geoshare_opt.measured.recommend import RecommendOptions, split_indices
    first, second = torch.arange(10.0), torch.arange(100.0, 104.0)
    pieces = interleaved_pieces([(first, torch.tensor(7.0)), {"x": second}], 3)
    sizes = [len(p[0]) if isinstance(p, tuple) else len(p["x"]) for p in pieces]
    assert sizes == [3, 1, 4, 2, 3, 1]                       # round robin: batch 0, batch 1, batch 0, ...
    assert torch.equal(torch.cat([p[0] for p in pieces[0::2]]), first)
    assert torch.equal(torch.cat([p["x"] for p in pieces[1::2]]), second)
    assert all(float(p[1]) == 7.0 for p in pieces[0::2])        # a value without a batch dimension is kept whole
    opts = RecommendOptions(search_chunks=2, confirm_chunks=2, cost_chunks=1)
    assert split_indices(6, opts) == ([], [0, 1], [2, 3])
    with_costs = RecommendOptions(search_chunks=2, confirm_chunks=2, cost_chunks=1, class_costs=True)
    assert split_indices(6, with_costs) == ([4], [0, 1], [2, 3])    # the same search and confirm pieces
    assert split_indices(3, with_costs) == ([], [0], [1, 2])


# ---------------------------------------------------------------- the recommendation after recovery; the pass budget
RECOVERY = {"steps": 3, "lr": 1e-3, "method": "distill", "rank": 8, "batch_size": None, "objective": "task", "seed": 0}
SMALL = {"chunks": 12, "search_chunks": 2, "confirm_chunks": 2, "max_passes": 10}


def test_pieces_except_keeps_every_example_outside_the_held_pieces():
    from geoshare_opt.materialize.recover import interleaved_pieces, pieces_except
    batches = [torch.arange(10), {"x": torch.arange(100, 107)}, torch.arange(200, 203)]
    values = lambda ps: sorted(v for p in ps for v in (p["x"] if isinstance(p, dict) else p).tolist())
    pieces = interleaved_pieces(batches, 4)
    held = {1, 3, 4}                     # batch 1's first piece, batch 0's second, batch 1's second
    kept = pieces_except(batches, 4, held)
    assert values(kept) == sorted(set(values(pieces)) - set(values([pieces[i] for i in held])))
    assert [p.tolist() if torch.is_tensor(p) else p["x"].tolist() for p in kept] == \
        [[0, 1], [5, 6, 7, 8, 9], [104, 105, 106], [200, 201, 202]]    # runs of consecutive pieces, whole batches
    assert pieces_except(batches, 4, set()) == batches


def test_after_recovery_recommends_the_finalist_best_after_recovery(tiny, monkeypatch):
    from geoshare_opt.measured import after_recovery
    spec, instance, curvature = tiny
    starts = {k: baseline(instance, k, classes=classes(instance)) for k in ("cycle", "sandwich", "adjacent")}
    refined, record = recommend(spec, instance, curvature, starts, options=SMALL)
    train, confirm, _ = after_recovery.recovery_data(spec, after_recovery.RecommendOptions.from_dict(SMALL))
    rows = lambda bs: {tuple(r.tolist()) for b in bs for r in b[0]}
    assert not rows(train) & rows(confirm) and len(rows(train) | rows(confirm)) == 6 * 16   # calibration data only
    result, name = after_recovery.recommend_after_recovery(spec, instance, curvature, refined, record, starts,
                                                           RECOVERY, options=SMALL)
    scores = {f["colouring"]: f["recovered_objective"] for f in record["after_recovery"]["finalists"]}
    assert len(scores) == 3 and "measured" in scores and all(math.isfinite(v) for v in scores.values())
    assert name == record["after_recovery"]["choice"] == min(scores, key=scores.get)
    # the choice follows the scores after recovery, not before: make the worst finalist before recovery the best
    worst = max(record["after_recovery"]["finalists"], key=lambda f: f["confirm_loss"])["colouring"]
    fake = {n: (0.0 if n == worst else 1.0 + i) for i, n in enumerate(scores)}
    from geoshare_opt.measured.network import as_labels
    labels = {n: tuple(as_labels(instance, refined if n == "measured" else starts[n])) for n in scores}
    by_labels = {v: n for n, v in labels.items()}
    monkeypatch.setattr(after_recovery, "recovered_loss",
                        lambda spec, train_spec, instance, curvature, lab, confirm, **kw: fake[by_labels[tuple(lab)]])
    result, name = after_recovery.recommend_after_recovery(spec, instance, curvature, refined, record, starts,
                                                           RECOVERY, options=SMALL)
    assert name == worst and tuple(as_labels(instance, result)) == labels[worst]
    assert evaluate(instance, result.assignment).feasible


def test_recovery_aware_recommendation_is_off_without_recovery(tiny, monkeypatch):
    from geoshare_opt import solve
    from geoshare_opt.measured import after_recovery
    from geoshare_opt.pipeline import recommend_colouring, refine_settings
    spec, instance, curvature = tiny
    result = solve(instance, "auto")
    calls = []
    monkeypatch.setattr(after_recovery, "recommend_after_recovery",
                        lambda spec, instance, curvature, refined, record, *a, **kw: calls.append(1) or
                        (baseline(instance, "cycle", classes=classes(instance)), "cycle"))
    args = (spec, instance, curvature, result, ["cycle", "sandwich"], "tie", 0.4, 0, refine_settings(True, SMALL),
            lambda info: None)
    rows, record = recommend_colouring(*args)
    assert [n for n, _ in rows] == ["measured"] and "after_recovery" not in record and not calls
    rows, _ = recommend_colouring(*args, RECOVERY)
    assert [n for n, _ in rows] == ["measured", "measured-rec"] and calls == [1]    # the last one is recommended


def test_refine_options_for_recovery_and_passes_are_checked():
    from geoshare_opt.measured.recommend import RecommendOptions
    for bad in ({"finalists": 0}, {"finalists": True}, {"finalists": 1.5}, {"max_passes": "many"}):
        with pytest.raises(InputError, match="refine option (finalists|max_passes)") as info:
            RecommendOptions.from_dict(bad)
        assert "\n" not in str(info.value)
    assert RecommendOptions.from_dict({"max_passes": None}).max_passes is None


def test_distillation_score_measures_the_damage_against_the_trained_networks_outputs(tiny):
    """score="distill": the recovery's distillation to the trained network's outputs on the same pieces. The tiny
    spec's loss is the MSE to the trained network's own outputs, so both scores agree there; a spec without
    outputs cannot be scored so (one line), and an unknown score is refused."""
    from geoshare_opt.measured.recommend import RecommendOptions
    spec, instance, curvature = tiny
    with_outputs = as_spec({"model": spec.model, "batches": list(spec.batches()), "loss": spec.loss,
                            "outputs": lambda m, b: m(b[0]),
                            "output_loss": lambda out, b: torch.nn.functional.mse_loss(out, b[1])}, "tiny-outputs")
    colourings = [baseline(instance, k, classes=classes(instance)) for k in ("cycle", "sandwich")]
    by_loss = ColouringEvaluator(with_outputs, instance, curvature)
    by_distill = ColouringEvaluator(with_outputs, instance, curvature, score="distill")
    for res in colourings:
        assert by_distill.loss(res) == pytest.approx(by_loss.loss(res), rel=1e-5) and by_distill.loss(res) > 0
    by_distill.reset()
    assert by_distill.loss() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(InputError, match="score 'distill' needs outputs") as info:
        recommend(spec, instance, curvature, {"cycle": colourings[0]}, options={"score": "distill"})
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="refine option score must be one of loss, distill"):
        RecommendOptions.from_dict({"score": "cosine"})


def test_the_refinement_scores_by_the_specs_refine_score_unless_the_option_says_otherwise(tiny):
    """A spec declares what the refinement ranks colourings by (``refine_score``, default the loss); the refine
    option wins; a spec asking for distillation without outputs, or for an unknown score, is refused in one line."""
    spec, instance, curvature = tiny
    fields = {"model": spec.model, "batches": list(spec.batches()), "loss": spec.loss,
              "outputs": lambda m, b: m(b[0]), "output_loss": lambda out, b: torch.nn.functional.mse_loss(out, b[1])}
    assert as_spec(dict(fields), "plain").refine_score == "loss"
    distilling = as_spec({**fields, "refine_score": "distill"}, "distilling")
    start = {"cycle": baseline(instance, "cycle", classes=classes(instance))}
    small = {**SMALL, "max_passes": 0}
    assert recommend(distilling, instance, curvature, start, options=small)[1]["score"] == "distill"
    assert recommend(distilling, instance, curvature, start, options={**small, "score": "loss"})[1]["score"] == "loss"
    assert recommend(spec, instance, curvature, start, options=small)[1]["score"] == "loss"
    for bad, message in (({"refine_score": "cosine"}, "'refine_score' must be 'loss' or 'distill'"),
                         ({"refine_score": "distill", "outputs": None, "output_loss": None}, "needs 'outputs'")):
        with pytest.raises(InputError, match=message) as info:
            as_spec({**fields, **bad}, "bad")
        assert "\n" not in str(info.value)


def test_default_pass_budget_follows_the_work_of_a_pass_and_an_explicit_budget_wins(tiny):
    from geoshare_opt.measured.recommend import PASS_RANGE, WORK_BUDGET, batch_positions, pass_budget
    tokens, features = torch.zeros(4, 130, dtype=torch.long), torch.zeros(4, 64)
    assert batch_positions(tokens) == 520 and batch_positions((features, torch.zeros(4, dtype=torch.long))) == 4
    assert batch_positions({"input_ids": tokens, "mask": tokens[:, :10]}) == 520
    small, big = torch.nn.Linear(10, 10), torch.nn.Linear(1000, 1000)
    long_tokens = torch.zeros(64, 1000, dtype=torch.long)
    assert pass_budget(small, [tokens]) == PASS_RANGE[1] and pass_budget(big, [long_tokens] * 3) == PASS_RANGE[0]
    middle = torch.nn.Linear(100, 100)                    # 10100 parameters
    expected = round(WORK_BUDGET / (10100 * 520 * 1000))
    assert PASS_RANGE[0] < expected < PASS_RANGE[1]
    assert pass_budget(middle, [torch.zeros(1000, 520, dtype=torch.long)]) == expected
    assert pass_budget(middle, [torch.zeros(1000, 520, dtype=torch.long)]) == expected      # no clock involved
    spec, instance, curvature = tiny
    starts = {"cycle": baseline(instance, "cycle", classes=classes(instance))}
    _, explicit = recommend(spec, instance, curvature, starts, options=SMALL)
    assert explicit["max_passes"] == 10 and explicit["forward_passes"] <= 10 + 2 * 4 + 2
    _, default = recommend(spec, instance, curvature, starts, options={**SMALL, "max_passes": None})
    assert default["max_passes"] == PASS_RANGE[1]          # a tiny network: the most passes


def test_objective_loss_measures_what_recovery_trains(tiny):
    import copy
    import dataclasses
    from geoshare_opt.materialize.recover import objective_loss
    spec, _, _ = tiny
    spec = dataclasses.replace(spec, outputs=lambda m, b: m(b[0]))
    batches = list(spec.batches())[:3]
    assert objective_loss(spec, spec.model, batches) == 0.0          # the original network distils to itself
    other = copy.deepcopy(spec.model)
    with torch.no_grad():
        next(other.parameters()).add_(0.5)
    assert objective_loss(spec, other, batches) > 0.0
    with torch.no_grad():
        task = np.mean([float(spec.loss(other, b)) for b in batches])    # equal batches: the plain mean
    assert objective_loss(spec, other, batches, "task") == pytest.approx(task)
    with pytest.raises(InputError, match="unknown recovery objective"):
        objective_loss(spec, other, batches, "mse")
