"""The whole job in one call: analyze → solve → apply → evaluate, with the solved colouring compared against every
heuristic colouring at the same number of classes per type (the same stored-parameter budget in tie mode; the same
per-class compression in basis mode). The only module besides the CLI that imports both the front end and the
solvers; nothing here prints (``progress`` receives one dict per step)."""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from .baselines import KINDS, baseline, check_ratio
from .errors import InputError

DEFAULT_BASELINES = ("all", "sequence", "cycle", "cycle-rev", "adjacent", "sandwich", "random")

# Sizes of the built-in specs for the pipeline, chosen so that ``geoshare-opt pipeline minilm`` (one analyze, one
# solve, eight colourings applied and evaluated) finishes within 3 minutes on a 2-core CPU: 128 calibration windows
# of 128 tokens, metrics on 256 held-out paragraphs and 32 held-out windows. ``spec_options`` overrides them.
PIPELINE_SPEC_DEFAULTS = {"minilm": {"n_calib": 128, "heldout_seqs": 32}}


class _Clock:
    def __init__(self):
        self.times: dict[str, float] = {}

    def run(self, stage: str, fn: Callable, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.times[stage] = self.times.get(stage, 0.0) + time.perf_counter() - t0


def evaluate_model(spec, model) -> dict[str, float]:
    if spec.metrics is None:
        raise InputError(f"spec {spec.name!r} has no metrics: nothing to evaluate")
    return {k: float(v) for k, v in spec.metrics(model).items()}


def pipeline(spec: Any, ratio: float = 0.5, *, solver: str = "auto", mode: str = "tie", estimator: str = "diag",
             time_limit: float | None = 20.0, seed: int = 0, samples: int | None = None,
             baselines: Iterable[str] = DEFAULT_BASELINES, outdir: str | os.PathLike | None = None,
             force: bool = False, spec_options: dict | None = None, analyze_options: dict | None = None,
             progress: Callable[[dict], None] | None = None) -> dict:
    """Run the job on ``spec`` (a ``ModelSpec`` or a spec ref) at ``ratio`` (fraction of the shareable layers'
    stored parameters removed). Returns a JSON-ready dict: ``rows`` (one per colouring: metrics, stored
    parameters, compression, apply/eval time), ``original`` metrics, ``times`` per stage, the solve summary.
    With ``outdir`` the solved compressed network is saved there (plus instance.json and result.json)."""
    from . import solve
    from .frontend import analyze, load_curvature
    from .materialize import save_compressed
    from .materialize.save import prepare_outdir
    from .specs import ModelSpec, load_spec

    check_ratio(ratio)
    kinds = list(baselines)
    for k in kinds:
        if k not in KINDS:
            raise InputError(f"unknown baseline kind {k!r}; choose from {', '.join(KINDS)}")
    if mode not in ("tie", "basis"):
        raise InputError(f"unknown mode {mode!r}; choose tie or basis")
    if outdir is not None:
        prepare_outdir(outdir, force)          # refuse early, before minutes of work
    say = progress or (lambda info: None)
    clock = _Clock()
    t_all = time.perf_counter()

    say({"stage": "load", "message": "loading the spec"})
    if isinstance(spec, ModelSpec):
        ref = spec.name
    else:
        ref = str(spec)
        opts = dict(PIPELINE_SPEC_DEFAULTS.get(ref, {}))
        if samples is not None and "n_calib" in opts:
            opts["n_calib"] = samples
        opts.update(spec_options or {})
        spec = clock.run("load", load_spec, ref, **opts)
    say({"stage": "analyze", "message": f"curvature ({estimator}, mode {mode})"})
    with tempfile.TemporaryDirectory(prefix="geoshare-pipeline-") as tmp:
        inst_path = Path(tmp) / "instance.json"
        aopts = dict(analyze_options or {})
        if samples is not None:
            aopts["samples"] = samples
        instance = clock.run("analyze", analyze, spec, estimator=estimator, mode=mode, ratio=ratio, seed=seed,
                             out=inst_path, progress=lambda info: say({"stage": "analyze", **info}), **aopts)
        curvature = load_curvature(inst_path)
        say({"stage": "solve", "message": f"solver {solver}"})
        result = clock.run("solve", solve, instance, solver, time_limit=time_limit, seed=seed)
        if not result.feasible:
            raise InputError(f"solver {solver} found no feasible colouring ({result.termination}: {result.message})")

        say({"stage": "evaluate", "message": "metrics of the original network"})
        original = clock.run("evaluate", evaluate_model, spec, spec.model)
        rows, solved = compare_colourings(spec, instance, curvature, result, mode, ratio, kinds, seed=seed,
                                          ref=ref, progress=say, clock=clock.times, keep_solved=outdir is not None)
        saved = None
        if outdir is not None and solved is not None:
            solved_model, solved_report = solved
            say({"stage": "save", "message": f"saving the solved network to {outdir}"})
            # instance + its sidecar + result beside the weights: `geoshare-opt apply` can redo it from there
            side = (instance.meta.get("curvature") or {}).get("file")
            copies = {side: Path(tmp) / side} if side and (Path(tmp) / side).is_file() else {}
            saved = str(clock.run("save", save_compressed, solved_model, outdir, solved_report.tie_map, force=force,
                                  extra_files={"instance.json": instance.dumps() + "\n",
                                               "result.json": result.dumps() + "\n"}, copy_files=copies))
    clock.times["total"] = time.perf_counter() - t_all
    return {
        "format": "geoshare-pipeline", "version": 1, "spec": ref, "ratio": ratio, "mode": mode,
        "estimator": estimator, "solver": solver, "seed": seed,
        "instance": {"sha256": instance.sha256, "nodes": len(instance.nodes), "types": len(instance.types),
                     "max_params": instance.budget.max_params},
        "solve": {"termination": result.termination, "objective": result.objective, "bound": result.bound,
                  "gap": result.gap, "classes_per_type": result.classes_per_type, "wall_time_s": result.wall_time_s},
        "original": original, "rows": rows, "best_heuristic": best_heuristic(rows, original),
        "times_s": {k: round(v, 3) for k, v in clock.times.items()}, "outdir": saved,
    }


def compare_colourings(spec, instance, curvature, result, mode: str, ratio: float, kinds: Iterable[str], *,
                       seed: int = 0, ref: str | None = None, progress: Callable[[dict], None] | None = None,
                       clock: dict | None = None, keep_solved: bool = False):
    """Apply ``result``'s colouring and every heuristic ``kinds`` (at the solved number of classes per type; in
    basis mode also ``none``, per-layer low rank at the same ratio) and measure the spec's metrics on each.
    Returns ``(rows, (solved model, report) or None)``."""
    from .materialize import apply
    say = progress or (lambda info: None)
    times = clock if clock is not None else {}
    colourings = [("solved", result)]
    for kind in kinds:
        if kind == "none" and mode == "tie":
            continue                              # no sharing = the original network in tie mode
        classes = None if kind in ("all", "none") else dict(result.classes_per_type)
        colourings.append((kind, baseline(instance, kind, classes=classes, seed=seed)))
    if mode == "basis" and "none" not in kinds:
        colourings.append(("none", baseline(instance, "none")))
    rows, solved = [], None
    for name, res in colourings:
        say({"stage": "apply", "message": f"{name}: apply ({mode}) and evaluate"})
        row: dict[str, Any] = {"colouring": name, "solver": res.solver, "objective": res.objective,
                               "classes": res.n_classes, "classes_per_type": res.classes_per_type,
                               "pattern": layer_patterns(instance, res.assignment)}
        if not res.feasible:
            row["error"] = res.message
            rows.append(row)
            continue
        t0 = time.perf_counter()
        model, report = apply(spec.model, instance, res, mode, curvature, ratio=ratio if mode == "basis" else None,
                              spec=ref)
        t1 = time.perf_counter()
        metrics = evaluate_model(spec, model)
        t2 = time.perf_counter()
        times["apply"] = times.get("apply", 0.0) + t1 - t0
        times["evaluate"] = times.get("evaluate", 0.0) + t2 - t1
        p = report.parameters
        costs = [c["predicted_cost"] for c in report.classes if "predicted_cost" in c]
        if costs:
            row["predicted_cost"] = sum(costs)      # the diagonal model's true class cost (tie mode)
        row.update(stored_params=p["after"]["shareable_params"],
                   shareable_removed=round(p.get("shareable_removed_fraction", 0.0), 6),
                   model_removed=round(p["removed_fraction"], 6), apply_s=round(t1 - t0, 3),
                   eval_s=round(t2 - t1, 3), metrics=metrics)
        rows.append(row)
        if name == "solved" and keep_solved:
            solved = (model, report)
        del model
    return rows, solved


def layer_patterns(instance, assignment: dict | None) -> dict[str, str] | None:
    """Per type, the class of each layer in layer order, relabelled 0.. by first appearance (e.g. ``012210``)."""
    from .baselines import layer_order
    if not assignment:
        return None
    out = {}
    for t in instance.types:
        labels = [assignment[instance.nodes[i].id] for i in layer_order(instance, t)]
        first: dict[int, int] = {}
        out[t] = " ".join(str(first.setdefault(c, len(first))) for c in labels)
    return out


def primary_metric(metrics: dict[str, float]) -> str:
    """The metric a comparison ranks by: the first one the spec reports."""
    return next(iter(metrics))


def best_heuristic(rows: list[dict], original: dict[str, float]) -> dict | None:
    """The best heuristic row by the primary metric (direction from its name), and whether solved beats it."""
    from .specs.base import lower_is_better
    if not original:
        return None
    key = primary_metric(original)
    sign = -1.0 if lower_is_better(key) else 1.0
    ok = [r for r in rows if "metrics" in r and r["colouring"] not in ("solved", "all", "none")]
    solved = next((r for r in rows if r["colouring"] == "solved" and "metrics" in r), None)
    if not ok or solved is None:
        return None
    best = max(ok, key=lambda r: sign * r["metrics"][key])
    return {"metric": key, "colouring": best["colouring"], "value": best["metrics"][key],
            "solved": solved["metrics"][key], "solved_at_least_as_good": sign * solved["metrics"][key] >= sign * best["metrics"][key]}
