"""Which objective and which curvature serve MiniLM's tie mode (issue 13's first part), in one run:

1. **Alignment**: at 20 % and 50 % fewer stored parameters, over the solved colouring, every heuristic and 20
   random neighbours of the best heuristic on calibration data (the moves the refinement makes), the Spearman
   correlation between a calibration loss and the held-out embedding cosine (the metric): the hidden-state MSE (the
   spec's loss before), the cosine distillation on packed windows only (its loss before short texts were added), and
   the spec's loss now (cosine distillation on windows and short calibration texts).
2. **Merge**: the solved colouring, sandwich and cycle-rev at 50 % tied with the plain mean, the diagonal curvature
   of the hidden-state MSE, the diagonal curvature of the cosine loss, and an output-space least-squares merge
   ``W̄ = (Σ W_l G_l)(Σ G_l)⁻¹`` with the input covariances ``G_l``; held-out metrics of each.
3. **Criterion**: the colouring ``auto`` solves from pair weights of the MSE curvature and of the cosine curvature
   (both tied with the MSE curvature's merge) at 30 % and 50 %.

    python benchmarks/measured/objective_check.py          # writes benchmarks/measured/objective_check.json

Uses the public API (``frontend.analyze``, ``solve``, ``baselines.baseline``, ``measured.ColouringEvaluator``).
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def curvatures(spec, tmp: Path):
    """The tie instance and sidecar of the MSE curvature (the spec's output loss) and of the cosine loss's."""
    from geoshare_opt.frontend import analyze, load_curvature
    from geoshare_opt.specs.prose_distill import embedding_distill_loss
    cosine = lambda hidden, batch: embedding_distill_loss(hidden, batch["teacher"], batch)
    out = {}
    for name, s in (("mse", spec), ("cosine", dataclasses.replace(spec, output_loss=cosine))):
        log(f"analyze: {name} curvature")
        inst = analyze(s, estimator="diag", mode="tie", ratio=0.5, out=tmp / f"{name}.json")
        out[name] = (inst, load_curvature(tmp / f"{name}.json"))
    return out


def input_covariances(spec, instance) -> dict:
    """``in_cov/<node>`` = E[x xᵀ] of every node's input over the calibration batches (forward hooks)."""
    import torch
    sums, counts, hooks = {}, {}, []
    modules = dict(spec.model.named_modules())
    for node in instance.nodes:
        def hook(_m, args, _out, nid=node.id):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).double()
            sums[nid] = sums.get(nid, 0) + x.T @ x
            counts[nid] = counts.get(nid, 0) + x.shape[0]
        hooks.append(modules[node.id.rpartition(".")[0]].register_forward_hook(hook))
    with torch.no_grad():
        for batch in spec.batches():
            spec.loss(spec.model, batch)
    for h in hooks:
        h.remove()
    return {k: sums[k] / counts[k] for k in sums}


def least_squares_metrics(spec, instance, colouring, covs) -> dict:
    """Held-out metrics of the colouring tied to ``W̄ = (Σ W_l G_l)(Σ G_l)⁻¹`` per class (a study-only merge)."""
    import copy
    import torch
    from geoshare_opt.measured.network import as_labels, class_lists
    model = copy.deepcopy(spec.model)
    params = dict(model.named_parameters())
    ids = [n.id for n in instance.nodes]
    with torch.no_grad():
        for members in class_lists(instance, as_labels(instance, colouring)):
            if len(members) < 2:
                continue
            names = [ids[i] for i in members]
            G = sum(covs[n] for n in names)
            G = G + 1e-6 * G.diagonal().mean() * torch.eye(G.shape[0], dtype=G.dtype)
            rhs = sum(covs[n] @ params[n].double().T for n in names)
            merged = torch.linalg.solve(G, rhs).T.to(params[names[0]].dtype)
            for n in names:
                params[n].copy_(merged)
    return {k: float(v) for k, v in spec.metrics(model).items()}


def colourings_at(instance, ratio: float):
    """The solved colouring and every heuristic at the solved classes per type."""
    from geoshare_opt import solve
    from geoshare_opt.baselines import baseline
    inst = instance.with_budget(max_params=math.floor((1 - ratio) * int(instance.params.sum())))
    solved = solve(inst, "auto", seed=0)
    out = {"solved": solved}
    for kind in ("sequence", "cycle", "cycle-rev", "adjacent", "sandwich"):
        out[kind] = baseline(inst, kind, classes=dict(solved.classes_per_type))
    out["random"] = baseline(inst, "random", classes=dict(solved.classes_per_type))
    return inst, out


def loss_variants(spec, model) -> dict:
    """The candidate calibration objectives of ``model``, example-weighted over the calibration batches."""
    import torch
    from geoshare_opt.specs.prose_distill import embedding_distill_loss, hidden_mse
    sums = {"mse_windows": 0.0, "cosine_windows": 0.0, "spec_loss": 0.0}
    counts = {k: 0 for k in sums}
    with torch.inference_mode():
        for batch in spec.batches():
            n = int(batch["input_ids"].shape[0])
            hidden = spec.outputs(model, batch)
            cos = float(embedding_distill_loss(hidden, batch["teacher"], batch))
            window = bool(batch["attention_mask"].all())
            for key, value, use in (("mse_windows", float(hidden_mse(hidden, batch)), window),
                                    ("cosine_windows", cos, window), ("spec_loss", cos, True)):
                if use:
                    sums[key] += value * n
                    counts[key] += n
    return {k: sums[k] / counts[k] for k in sums}


def neighbours(instance, labels, evaluator, curvature, count: int, seed: int = 0) -> dict:
    """``count`` random colourings one refinement move away from ``labels``."""
    import random
    from geoshare_opt.measured.recommend import diagonal_surrogate
    from geoshare_opt.measured.refine import Refiner, apply_change, labels_of, partition_of
    part = partition_of(instance, labels)
    refiner = Refiner(evaluator, instance, [0], [1], diagonal_surrogate(instance, evaluator, curvature))
    picked = random.Random(seed).sample(refiner.candidates(part), count)
    return {f"neighbour-{k}-{kind}": labels_of(instance, apply_change(part, change))
            for k, (_, kind, change) in enumerate(picked)}


def alignment(spec, instance, curvature) -> dict:
    from scipy.stats import spearmanr
    from geoshare_opt.checker import labels_from_assignment
    from geoshare_opt.measured import ColouringEvaluator
    out = {}
    for ratio in (0.2, 0.5):
        inst, cols = colourings_at(instance, ratio)
        labels = {k: labels_from_assignment(inst, v.assignment) for k, v in cols.items()}
        rows = []
        with ColouringEvaluator(spec, inst, curvature) as ev:
            for name, lab in labels.items():
                ev.set(lab)
                rows.append({"colouring": name, **loss_variants(spec, ev.model), **ev.metrics()})
            # the refinement's start: the colouring with the lowest calibration loss
            best = min(rows, key=lambda r: r["spec_loss"])
            for name, lab in neighbours(inst, labels[best["colouring"]], ev, curvature, 20).items():
                ev.set(lab)
                rows.append({"colouring": name, **loss_variants(spec, ev.model), **ev.metrics()})
                log(f"alignment {ratio} {name}: {rows[-1]}")
        near = [r for r in rows if r["colouring"].startswith("neighbour") or r is best]
        rho = lambda rs, key: float(spearmanr([r[key] for r in rs], [r["embedding_cosine"] for r in rs]).correlation)
        out[str(ratio)] = {"rows": rows, "around": best["colouring"],
                           "spearman_all": {k: rho(rows, k) for k in ("mse_windows", "cosine_windows", "spec_loss")},
                           "spearman_neighbours": {k: rho(near, k) for k in ("mse_windows", "cosine_windows",
                                                                             "spec_loss")}}
        log(f"alignment {ratio}: {out[str(ratio)]['spearman_all']} {out[str(ratio)]['spearman_neighbours']}")
    return out


def merges(spec, cur) -> dict:
    from geoshare_opt.measured import ColouringEvaluator
    instance, mse_curv = cur["mse"]
    covs = input_covariances(spec, instance)
    inst, cols = colourings_at(instance, 0.5)
    out = {}
    for name in ("solved", "sandwich", "cycle-rev"):
        res = cols[name]
        for merge, curv in (("mean", None), ("mse-curvature", mse_curv), ("cosine-curvature", cur["cosine"][1])):
            with ColouringEvaluator(spec, inst, curv) as ev:
                out[f"{name}/{merge}"] = ev.metrics(res)
        out[f"{name}/least-squares"] = least_squares_metrics(spec, inst, res, covs)
        log(f"merges {name}: " + ", ".join(f"{k.split('/')[1]} {v['embedding_cosine']:.4f}"
                                           for k, v in out.items() if k.startswith(name + "/")))
    return out


def criteria(spec, cur) -> dict:
    from geoshare_opt.measured import ColouringEvaluator
    out = {}
    for ratio in (0.3, 0.5):
        for name in ("mse", "cosine"):
            inst, cols = colourings_at(cur[name][0], ratio)
            mse_inst = cur["mse"][0].with_budget(max_params=inst.budget.max_params)
            labels = [cols["solved"].assignment[n.id] for n in inst.nodes]
            with ColouringEvaluator(spec, mse_inst, cur["mse"][1]) as ev:
                out[f"{ratio}/{name}"] = {"classes_per_type": cols["solved"].classes_per_type, **ev.metrics(labels)}
            log(f"criterion {ratio} {name}: {out[f'{ratio}/{name}']}")
    return out


def main() -> int:
    import torch
    torch.set_num_threads(1)
    from geoshare_opt.pipeline import load_pipeline_spec
    t0 = time.perf_counter()
    spec = load_pipeline_spec("minilm")
    with tempfile.TemporaryDirectory() as tmp:
        cur = curvatures(spec, Path(tmp))
        result = {"alignment": alignment(spec, *cur["mse"]), "merges": merges(spec, cur),
                  "criteria": criteria(spec, cur), "spec_options": spec.meta.get("n_calib"),
                  "command": "python benchmarks/measured/objective_check.py",
                  "wall_s": None}
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    (HERE / "objective_check.json").write_text(json.dumps(result, indent=1) + "\n")
    log(f"done in {result['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
