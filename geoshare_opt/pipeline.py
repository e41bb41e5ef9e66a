"""The whole job in one call: analyze → solve → apply → evaluate, with the solved colouring compared against every
heuristic colouring at the same number of classes per type (the same stored-parameter budget in tie mode; the same
per-class compression in basis mode). The only module besides the CLI that imports both the front end and the
solvers; nothing here prints (``progress`` receives one dict per step)."""
from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from .baselines import KINDS, baseline
from .errors import InputError
from .options import check_ratio

DEFAULT_BASELINES = ("all", "sequence", "cycle", "cycle-rev", "adjacent", "sandwich", "random")

# Sizes of the built-in specs for the pipeline, chosen so that ``geoshare-opt pipeline minilm`` (one analyze, one
# solve, eight colourings applied and evaluated) finishes within 3 minutes on a 2-core CPU: 128 calibration windows
# of 128 tokens, metrics on 256 held-out paragraphs and 32 held-out windows. ``spec_options`` overrides them.
PIPELINE_SPEC_DEFAULTS = {"minilm": {"n_calib": 128, "heldout_seqs": 32},
                          "tiny-gpt": {"n_calib": 128, "heldout_seqs": 256}}


def load_pipeline_spec(ref: str, spec_options: dict | None = None, samples: int | None = None):
    """The spec ``ref`` at the pipeline's sizes (``PIPELINE_SPEC_DEFAULTS``) with ``spec_options`` on top: what
    every command working on one network loads (pipeline, apply, evaluate, recover), so their data agree."""
    from .specs import load_spec
    return load_spec(ref, **pipeline_spec_options(ref, spec_options, samples))


def pipeline_spec_options(ref: str, spec_options: dict | None = None, samples: int | None = None) -> dict:
    """The keyword arguments ``load_pipeline_spec`` gives the spec's ``make()`` (recorded in the outputs)."""
    opts = dict(PIPELINE_SPEC_DEFAULTS.get(ref, {}))
    if samples is not None and "n_calib" in opts:
        opts["n_calib"] = samples
    opts.update(spec_options or {})
    return opts


class _Clock:
    def __init__(self):
        self.times: dict[str, float] = {}

    def run(self, stage: str, fn: Callable, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.times[stage] = self.times.get(stage, 0.0) + time.perf_counter() - t0


def evaluate_model(spec, model) -> dict[str, float | None]:
    """The spec's metrics of ``model``: numbers, or None for a value that is not finite (NaN, inf: JSON holds
    neither; it then shows as null). A metric that is not a number at all is the spec's mistake (InputError)."""
    import math
    if spec.metrics is None:
        raise InputError(f"spec {spec.name!r} has no metrics: nothing to evaluate")
    values = spec.metrics(model)
    if not isinstance(values, dict):
        raise InputError(f"spec {spec.name!r}: metrics() must return a dict of name -> number, "
                         f"got {type(values).__name__}")
    out: dict[str, float | None] = {}
    for k, v in values.items():
        try:
            if isinstance(v, (bool, str)):
                raise TypeError
            x = float(v)
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"spec {spec.name!r}: metric {k!r} is not a number, got {v!r}"[:300]) from None
        out[str(k)] = x if math.isfinite(x) else None
    return out


REPORT = "pipeline.json"
SIDECARS = ("full", "diag", "none")


class PipelineOutput:
    """The output directory of ``pipeline(outdir=...)``. It appears once the solve is done, with the instance, its
    sidecar, the result and ``pipeline.json`` (the report, ``"complete": false``); the report is rewritten
    atomically after each measured row, so a killed run keeps every row already measured; the solved network
    (``model.safetensors`` + ``tiemap.json``) and the complete report come last. Without a directory nothing is
    written."""

    def __init__(self, outdir: str | os.PathLike | None, force: bool, sidecar: str):
        from .materialize.save import prepare_outdir
        self.out = None if outdir is None else prepare_outdir(outdir, force)   # refuse early, before minutes of work
        self.sidecar = sidecar

    def publish(self, workdir: Path, instance, result, report: dict) -> None:
        """The first files, replacing an old directory (``force``) only now that there is something new."""
        if self.out is None:
            return
        import shutil
        from .atomic import follow_umask, write_json_atomic
        from .materialize.save import publish_dir
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=".tmp", dir=self.out.parent))
        try:
            follow_umask(tmp)
            (tmp / "instance.json").write_text(instance.dumps() + "\n", encoding="utf-8")
            (tmp / "result.json").write_text(result.dumps() + "\n", encoding="utf-8")
            side = (instance.meta.get("curvature") or {}).get("file")
            if side and self.sidecar != "none":     # `geoshare-opt apply` can redo the colouring from here
                shutil.copyfile(workdir / side, tmp / side)
            write_json_atomic(tmp / REPORT, report)
            publish_dir(tmp, self.out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def report(self, report: dict) -> None:
        if self.out is not None:
            from .atomic import write_json_atomic
            write_json_atomic(self.out / REPORT, report)

    def result(self, name: str, result) -> None:
        """Another result beside ``result.json`` (``<name>.json``, written atomically)."""
        if self.out is not None:
            from .atomic import write_json_atomic
            write_json_atomic(self.out / f"{name}.json", result.to_dict())

    def model(self, model, tie_map: dict) -> None:
        from .materialize.save import add_model_files
        add_model_files(model, self.out, tie_map)


def pipeline(spec: Any, ratio: float = 0.5, *, solver: str = "auto", mode: str = "tie", estimator: str = "diag",
             time_limit: float | None = None, seed: int = 0, samples: int | None = None,
             baselines: Iterable[str] = DEFAULT_BASELINES, outdir: str | os.PathLike | None = None,
             force: bool = False, spec_options: dict | None = None, analyze_options: dict | None = None,
             recover_steps: int | None = None, recover_options: dict | None = None, sidecar: str = "diag",
             refine: bool = True, refine_options: dict | None = None,
             progress: Callable[[dict], None] | None = None) -> dict:
    """Run the job on ``spec`` (a ``ModelSpec`` or a spec ref) at ``ratio`` (fraction of the shareable layers'
    stored parameters removed). Returns a JSON-ready dict: ``rows`` (one per colouring: metrics, stored
    parameters, compression, apply/eval time), ``original`` metrics, ``times`` per stage, the solve summary,
    ``recommended`` (the colouring the package recommends and how it compares with the best heuristic).
    ``time_limit`` None (the default) solves with fixed work budgets, so the colouring (and the class split the
    heuristics inherit) does not depend on the machine's speed. ``refine`` (default): the recommended colouring is
    the ``measured`` one (``geoshare_opt.measured.recommend``: a measured refinement of the whole
    colouring scored by the spec's loss on calibration data, from the solved colouring and every heuristic;
    ``refine_options``: ``measured.RecommendOptions`` fields); without it, the solved one. With ``outdir`` the run
    is saved there as it goes (``PipelineOutput``): instance.json (its ``meta.model`` records the spec and
    ``spec_options``), the curvature sidecar (``sidecar``: full, diag = without the weight copy, none),
    result.json (the solver's), measured.json (the refinement's), pipeline.json and the recommended compressed
    network. With ``recover_steps`` every colouring is also recovered with the same budget
    (``materialize.recover``; ``recover_options``: lr, method, rank, batch_size, objective) and measured again:
    ``row["recovered"]``; the saved network is then the recovered one, and the recommendation is chosen for it:
    the refined colouring and the best starts are recovered on calibration data and the best after recovery is
    recommended (``measured.after_recovery``; row and file ``measured-rec`` when it is not the refined one)."""
    from .specs import ModelSpec

    kinds = check_pipeline_options(ratio, mode, baselines, sidecar)
    recovery = recovery_settings(recover_steps, recover_options, seed)
    refinement = refine_settings(refine, refine_options)
    output = PipelineOutput(outdir, force, sidecar)
    say = progress or (lambda info: None)
    clock = _Clock()
    t_all = time.perf_counter()

    say({"stage": "load", "message": "loading the spec"})
    if isinstance(spec, ModelSpec):
        ref, options = spec.name, dict(spec_options or {})
    else:
        ref, options = str(spec), pipeline_spec_options(str(spec), spec_options, samples)
        spec = clock.run("load", load_pipeline_spec, ref, spec_options, samples)
    with tempfile.TemporaryDirectory(prefix="geoshare-pipeline-") as tmp:
        instance, curvature, result = analyze_and_solve(
            spec, Path(tmp) / "instance.json", clock, say, ref=ref, spec_options=options, solver=solver, mode=mode,
            estimator=estimator, ratio=ratio, seed=seed, samples=samples, time_limit=time_limit, sidecar=sidecar,
            analyze_options=analyze_options)
        header = {"spec": ref, "spec_options": options, "ratio": ratio, "mode": mode, "estimator": estimator,
                  "solver": solver, "time_limit": time_limit, "seed": seed, "refine": None}
        report = lambda rows, original, done: pipeline_report(header, instance, result, original, rows, recovery,
                                                             clock.times, done, output.out)
        output.publish(Path(tmp), instance, result, report([], None, False))

        say({"stage": "evaluate", "message": "metrics of the original network"})
        original = clock.run("evaluate", evaluate_model, spec, spec.model)
        extra = []
        if refinement is not None:
            extra, header["refine"] = clock.run("refine", recommend_colouring, spec, instance, curvature, result,
                                                kinds, mode, ratio, seed, refinement, say, recovery)
            for name, res in extra:
                output.result(name, res)
            header["recommended_colouring"] = extra[-1][0]
        rows, kept = compare_colourings(spec, instance, curvature, result, mode, ratio, kinds, seed=seed,
                                        ref=ref, progress=say, clock=clock.times, keep_solved=output.out is not None,
                                        recovery=recovery, extra=extra, on_row=lambda done: output.report(
                                            report(done, original, False)))
    if output.out is not None and kept is not None:
        say({"stage": "save", "message": f"saving the recommended network to {output.out}"})
        clock.run("save", output.model, kept[0], kept[1].tie_map)
    clock.times["total"] = time.perf_counter() - t_all
    final = report(rows, original, True)
    output.report(final)
    return final


def analyze_and_solve(spec, inst_path: Path, clock: _Clock, say: Callable[[dict], None], *, ref: str,
                      spec_options: dict, solver: str, mode: str, estimator: str, ratio: float, seed: int,
                      samples: int | None, time_limit: float | None, sidecar: str, analyze_options: dict | None):
    """The instance (written to ``inst_path`` with its sidecar), its curvature and the solver's feasible result."""
    from .api import solve
    from .frontend import analyze, load_curvature
    say({"stage": "analyze", "message": f"curvature ({estimator}, mode {mode})"})
    aopts = dict(analyze_options or {})
    if samples is not None:
        aopts["samples"] = samples
    instance = clock.run("analyze", analyze, spec, estimator=estimator, mode=mode, ratio=ratio, seed=seed,
                         out=inst_path, progress=lambda info: say({"stage": "analyze", **info}),
                         sidecar="full" if sidecar == "full" else "diag",
                         provenance={"spec": ref, "spec_options": spec_options}, **aopts)
    curvature = load_curvature(inst_path)
    limit = (f"time limit {time_limit:g} s" if time_limit is not None
             else "work budgets, reproducible" if solver == "auto" else "no time limit")
    say({"stage": "solve", "message": f"solver {solver} ({limit})"})
    result = clock.run("solve", solve, instance, solver, time_limit=time_limit, seed=seed)
    if not result.feasible:
        raise InputError(f"solver {solver} found no feasible colouring ({result.termination}: {result.message})")
    return instance, curvature, result


def refine_settings(refine: bool, options: dict | None):
    """The refinement's options (``measured.RecommendOptions``), checked before any work; None without one."""
    if not refine:
        if options:
            raise InputError("refine options were given with the refinement switched off")
        return None
    from .measured.recommend import RecommendOptions
    return RecommendOptions.from_dict(options)


def recommend_colouring(spec, instance, curvature, result, kinds: Iterable[str], mode: str, ratio: float,
                        seed: int, options, say: Callable[[dict], None], recovery: dict | None = None):
    """``([(name, Result)], record)``: ``measured``, the measured refinement from the solved colouring and every
    heuristic; with ``recovery``, the recommendation after recovery too (``measured.after_recovery``) when it is
    another colouring (``measured-rec``). The last one is the recommendation."""
    from .measured import recommend
    from .measured.after_recovery import REFINED, recommend_after_recovery
    say({"stage": "refine", "message": "measured refinement of the colouring on calibration data"})
    starts = {"solved": result, **dict(heuristic_colourings(instance, result, kinds, mode, seed))}
    basis_ratio = ratio if mode == "basis" else None
    measured, record = recommend(spec, instance, curvature, starts, mode=mode, ratio=basis_ratio, options=options,
                                 progress=say)
    rows = [("measured", measured)]
    if recovery is not None:
        after, name = recommend_after_recovery(spec, instance, curvature, measured, record, starts, recovery,
                                               mode=mode, ratio=basis_ratio, options=options, progress=say)
        if name != REFINED:
            rows.append(("measured-rec", after))
    return rows, record


def check_pipeline_options(ratio: float, mode: str, baselines: Iterable[str], sidecar: str) -> list[str]:
    """The baseline kinds, after checking every option that can be checked before any work."""
    check_ratio(ratio)
    kinds = list(baselines)
    for k in kinds:
        if k not in KINDS:
            raise InputError(f"unknown baseline kind {k!r}; choose from {', '.join(KINDS)}")
    if mode not in ("tie", "basis"):
        raise InputError(f"unknown mode {mode!r}; choose tie or basis")
    if sidecar not in SIDECARS:
        raise InputError(f"unknown sidecar {sidecar!r}; choose {', '.join(SIDECARS)}")
    return kinds


def pipeline_report(header: dict, instance, result, original: dict | None, rows: list[dict],
                    recovery: dict | None, times: dict, complete: bool, outdir: Path | None) -> dict:
    """The pipeline's JSON document (``complete`` false while rows are still being measured)."""
    return {
        "format": "geoshare-pipeline", "version": 1, "complete": complete, **header,
        "instance": {"sha256": instance.sha256, "nodes": len(instance.nodes), "types": len(instance.types),
                     "max_params": instance.budget.max_params},
        "solve": {"termination": result.termination, "objective": result.objective, "bound": result.bound,
                  "gap": result.gap, "classes_per_type": result.classes_per_type, "wall_time_s": result.wall_time_s},
        "original": original, "rows": list(rows),
        "best_heuristic": best_heuristic(rows, original) if original else None,
        "recovery": recovery, "best_heuristic_recovered": best_heuristic(rows, original, recovered=True)
        if recovery and original else None,
        "recommended": recommended_verdict(rows, original, recovery,
                                           header.get("recommended_colouring", "solved")),
        "times_s": {k: round(v, 3) for k, v in times.items()}, "outdir": None if outdir is None else str(outdir),
    }


def recovery_settings(steps, options: dict | None, seed: int) -> dict | None:
    """The recovery every colouring gets (None: no recovery), checked before any work."""
    if steps is None:
        if options:
            raise InputError("recovery options were given without a number of recovery steps")
        return None
    from .materialize.recover import METHODS, OBJECTIVES, check_budget
    opts = dict(options or {})
    unknown = set(opts) - {"lr", "method", "rank", "batch_size", "objective"}
    if unknown:
        raise InputError(f"unknown recovery option {sorted(unknown)[0]!r}")
    settings = {"steps": steps, "lr": 1e-4, "method": "distill", "rank": 8, "batch_size": None,
                "objective": "distill", "seed": seed}
    settings.update({k: v for k, v in opts.items() if v is not None})
    check_budget(settings["steps"], settings["lr"])
    if settings["method"] not in METHODS:
        raise InputError(f"unknown recovery method {settings['method']!r}; choose {' or '.join(METHODS)}")
    if settings["objective"] not in OBJECTIVES:
        raise InputError(f"unknown recovery objective {settings['objective']!r}; choose {' or '.join(OBJECTIVES)}")
    return settings


def heuristic_colourings(instance, result, kinds: Iterable[str], mode: str, seed: int = 0,
                         random_seeds: Iterable[int] | None = None) -> list[tuple[str, Any]]:
    """``(name, Result)`` of every heuristic ``kinds`` at the solved number of classes per type (``all`` and
    ``none`` at their own; in basis mode ``none``, per-layer low rank, always; in tie mode never, it is the
    original network). ``random_seeds``: the ``random`` kind once per seed (``random-<seed>``)."""
    seeds = [seed] if random_seeds is None else [int(s) for s in random_seeds]
    out = []
    for kind in kinds:
        if kind == "none" and mode == "tie":
            continue                              # no sharing = the original network in tie mode
        classes = None if kind in ("all", "none") else dict(result.classes_per_type)
        if kind == "random" and random_seeds is not None:
            out += [(f"random-{s}", baseline(instance, kind, classes=classes, seed=s)) for s in seeds]
            continue
        out.append((kind, baseline(instance, kind, classes=classes, seed=seed)))
    if mode == "basis" and "none" not in kinds:
        out.append(("none", baseline(instance, "none")))
    return out


def compare_colourings(spec, instance, curvature, result, mode: str, ratio: float, kinds: Iterable[str], *,
                       seed: int = 0, ref: str | None = None, progress: Callable[[dict], None] | None = None,
                       clock: dict | None = None, keep_solved: bool = False, recovery: dict | None = None,
                       random_seeds: Iterable[int] | None = None, extra: Iterable[tuple[str, Any]] = (),
                       on_row: Callable[[list[dict]], None] | None = None):
    """Apply ``result``'s colouring, the ``extra`` ones (name, Result; e.g. the measured recommendation) and every
    heuristic (``heuristic_colourings``) and measure the spec's metrics on each. ``recovery``
    (``recovery_settings``): each colouring is then recovered with the same budget and measured again
    (``row["recovered"]``, the recovery time in ``row["recover_s"]``). Returns ``(rows, (model, report) or
    None)``: with ``keep_solved`` the compressed network of the recommended colouring (the last of ``extra``,
    else the solved one)."""
    from .materialize import apply
    say = progress or (lambda info: None)
    times = clock if clock is not None else {}
    extra = list(extra)
    colourings = [("solved", result), *extra,
                  *heuristic_colourings(instance, result, kinds, mode, seed, random_seeds)]
    keep = extra[-1][0] if extra else "solved"
    rows, solved = [], None
    teacher_cache: dict = {}             # the original network's outputs, computed once for every colouring
    split = recovery_split(spec) if recovery is not None else None
    for name, res in colourings:
        say({"stage": "apply", "message": f"{name}: apply ({mode}) and evaluate"})
        row: dict[str, Any] = {"colouring": name, "solver": res.solver, "objective": res.objective,
                               "classes": res.n_classes, "classes_per_type": res.classes_per_type,
                               "pattern": layer_patterns(instance, res.assignment)}
        if not res.feasible:
            row["error"] = res.message
            rows.append(row)
            on_row and on_row(rows)
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
        if recovery is not None:
            row["recovered"], row["recover_s"] = recover_and_measure(spec, model, report, recovery, name, say,
                                                                     times, teacher_cache, split)
        rows.append(row)
        on_row and on_row(rows)
        if name == keep and keep_solved:
            solved = (model, report)
        del model
    return rows, solved


def recovery_split(spec) -> tuple[Any, list | None]:
    """(the spec training on the calibration examples outside the refinement's confirm pieces, those pieces): the
    recovery keeps its best checkpoint on them (``materialize.recover``), the split the choice after recovery
    (``measured.after_recovery``) also uses. A calibration set too small to split: (spec, None), no checkpoints."""
    from .measured.after_recovery import recovery_data
    from .measured.recommend import RecommendOptions
    try:
        train, confirm, _ = recovery_data(spec, RecommendOptions())
    except InputError:
        return spec, None
    return dataclasses.replace(spec, batches=lambda: iter(train)), confirm


def recover_and_measure(spec, model, report, recovery: dict, name: str, say: Callable, times: dict,
                        teacher_cache: dict | None = None, split: tuple[Any, list | None] | None = None):
    """Recover ``model`` in place (its tie map in ``report`` updated) and measure it again: (record, seconds).
    ``split`` (``recovery_split``): train on its spec, keep the best checkpoint on its validation pieces."""
    from .materialize.recover import recover, recovered_tie_map
    from .materialize.report import parameter_report
    opts = {k: v for k, v in recovery.items() if k != "steps"}
    train_spec, validation = split if split is not None else (spec, None)
    say({"stage": "recover", "message": f"{name}: recover ({recovery['method']}, {recovery['steps']} steps)"})
    t0 = time.perf_counter()
    rep = recover(model, train_spec, steps=recovery["steps"], teacher_cache=teacher_cache, validation=validation,
                  **opts)
    t1 = time.perf_counter()
    metrics = evaluate_model(spec, model)
    times["recover"] = times.get("recover", 0.0) + t1 - t0
    times["evaluate"] = times.get("evaluate", 0.0) + time.perf_counter() - t1
    report.tie_map = recovered_tie_map(report.tie_map, model, rep)
    node_ids = list(report.tie_map.get("colouring") or [])
    record = {"metrics": metrics, "loss_before": rep.loss_before, "loss_after": rep.loss_after,
              "heldout_before": rep.heldout_before, "heldout_after": rep.heldout_after, "train_s": rep.train_s,
              "params_added": rep.parameters["added"], "kept_step": rep.kept_step}
    if node_ids:
        record["stored_params"] = parameter_report(model, node_ids)["shareable_params"]
    return record, round(t1 - t0, 3)


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


NOT_HEURISTICS = ("solved", "measured", "all", "none")   # rows a colouring is not compared against


def best_heuristic(rows: list[dict], original: dict[str, float], recovered: bool = False,
                   colouring: str = "solved") -> dict | None:
    """The best heuristic row by the primary metric (direction from its name), and whether ``colouring`` is at
    least as good (``recovered``: compare the metrics after recovery). ``all`` stores fewer parameters and
    ``none`` (basis mode) is the no-sharing reference: neither is a heuristic at the same budget. The keys
    ``solved``/``solved_at_least_as_good`` hold ``colouring``'s value and verdict (named after the solved row,
    which the report has always compared)."""
    from .specs.base import lower_is_better
    if not original:
        return None
    key = primary_metric(original)
    sign = -1.0 if lower_is_better(key) else 1.0

    def metrics(r):
        m = (r.get("recovered") or {}).get("metrics") if recovered else r.get("metrics")
        return m if m and m.get(key) is not None else None
    ok = [r for r in rows if metrics(r) and r["colouring"] not in NOT_HEURISTICS]
    mine = next((r for r in rows if r["colouring"] == colouring and metrics(r)), None)
    if not ok or mine is None:
        return None
    best = max(ok, key=lambda r: sign * metrics(r)[key])
    return {"metric": key, "colouring": best["colouring"], "value": metrics(best)[key],
            "solved": metrics(mine)[key],
            "solved_at_least_as_good": sign * metrics(mine)[key] >= sign * metrics(best)[key]}


def recommended_verdict(rows: list[dict], original: dict | None, recovery: dict | None, name: str) -> dict | None:
    """The recommended colouring ``name`` against the best heuristic, before and (with recovery) after."""
    if not original:
        return None
    out = {"colouring": name}
    for label, recovered in (("before", False), ("after_recovery", True)):
        if recovered and not recovery:
            continue
        b = best_heuristic(rows, original, recovered=recovered, colouring=name)
        out[label] = None if b is None else {
            "metric": b["metric"], "best_heuristic": b["colouring"], "best_value": b["value"],
            "value": b["solved"], "at_least_as_good": b["solved_at_least_as_good"]}
    return out
