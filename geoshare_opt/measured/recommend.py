"""The colouring the package recommends: a measured refinement of the whole colouring, on calibration data only.

``recommend(spec, instance, curvature, starts, ...)`` cuts the spec's calibration examples into ``chunks`` pieces
(``calibration_pieces``) and uses disjoint runs of them: the **search** and **confirm** pieces of the refinement
(``refine.Refiner``), which starts from every colouring it is given (the solved one and every heuristic) and, with
``class_costs``, the **cost** pieces: measured class costs (every class of every type with at most
``classcosts.SUBSET_MAX_NODES`` layers, then the best colouring under the summed measured costs, exactly, per type and
over the class budget) give one more start and order the candidates. They are off by default: on MiniLM they take
longer than the refinement itself and did not make its answer better at the same pass budget
(``benchmarks/measured/surrogates.py`` compares both). Without them the surrogate
that orders the candidates is the diagonal model's true class cost (tie mode) or the instance's own pair weights
(basis mode). Returns a ``Result`` (solver ``measured``; objective recomputed by the checker like every result) and a
JSON-ready record of the search.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import InputError
from ..instance import Instance

SOLVER = "measured"
# The default pass budget: forward passes until their work (parameters x positions per piece, ``pass_budget``) reaches
# WORK_BUDGET, about what 400 passes cost on MiniLM's pieces, clamped to PASS_RANGE: a network whose pass is cheap
# gets more passes in about the same time; the same spec and data give the same budget on every machine.
WORK_BUDGET = 3.6e12
PASS_RANGE = (400, 4000)


@dataclass
class RecommendOptions:
    """How much the recommendation measures (defaults sized for ``pipeline minilm`` on a 2-core CPU, see
    docs/measured.md). ``max_passes`` counts forward passes over one piece, after the starts are measured (None:
    ``pass_budget``'s rule, from the network's size and the pieces' positions, so that the result does not depend on
    the machine's speed); ``time_limit`` (seconds) caps it too. ``finalists``: with recovery, how many colourings
    (the refined one and the best starts) are recovered and compared after recovery (``after_recovery``)."""
    chunks: int = 64
    cost_chunks: int = 1
    search_chunks: int = 6
    confirm_chunks: int = 6
    max_passes: int | None = None
    time_limit: float | None = None
    class_costs: bool = False            # measured class costs first (a start and the candidates' order)
    score: str | None = None             # "loss" | "distill" (to the trained network); None: the spec's refine_score
    cache: bool = True
    finalists: int = 3

    @classmethod
    def from_dict(cls, options: Mapping[str, Any] | None) -> "RecommendOptions":
        opts = dict(options or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(opts) - known)
        if unknown:
            raise InputError(f"unknown refine option {unknown[0]!r} (known: {', '.join(sorted(known))})")
        out = cls(**opts)
        for name in ("chunks", "search_chunks", "confirm_chunks", "finalists"):
            value = getattr(out, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"refine option {name} must be a positive integer, got {value!r}")
        for name in ("cost_chunks", "max_passes"):
            value = getattr(out, name)
            if value is None and name == "max_passes":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"refine option {name} must be an integer >= 0, got {value!r}")
        if out.time_limit is not None and (isinstance(out.time_limit, bool) or
                                           not isinstance(out.time_limit, (int, float)) or out.time_limit < 0):
            raise InputError(f"refine option time_limit must be a number of seconds >= 0, got {out.time_limit!r}")
        from .network import SCORES
        if out.score is not None and out.score not in SCORES:
            raise InputError(f"refine option score must be one of {', '.join(SCORES)}, got {out.score!r}")
        for name in ("class_costs", "cache"):
            if not isinstance(getattr(out, name), bool):
                raise InputError(f"refine option {name} must be true or false, got {getattr(out, name)!r}")
        return out


def calibration_pieces(spec, chunks: int) -> list:
    """The spec's calibration batches cut into about ``chunks`` pieces (each batch into equally many pieces of nearly
    equal size), listed round robin over the batches so that every run of consecutive pieces mixes them evenly."""
    from ..materialize.recover import interleaved_pieces
    batches = list(spec.batches())
    pieces = interleaved_pieces(batches, max(1, math.ceil(chunks / max(1, len(batches)))))
    if len(pieces) < 2:
        raise InputError("the measured refinement needs at least two calibration examples")
    return pieces


def batch_positions(batch: Any) -> int:
    """The positions a forward pass over ``batch`` computes: the elements of its largest integer tensor of two or
    more dimensions (token ids: examples x tokens), else its number of examples."""
    from ..frontend.runtime import batch_size_of
    tensors = []

    def walk(item):
        if hasattr(item, "is_floating_point") and hasattr(item, "dim"):
            tensors.append(item)
        elif isinstance(item, Mapping):
            for v in item.values():
                walk(v)
        elif isinstance(item, (list, tuple)):
            for v in item:
                walk(v)
    walk(batch)
    tokens = [int(t.numel()) for t in tensors if not t.is_floating_point() and t.dim() >= 2]
    return max(tokens) if tokens else max(1, int(batch_size_of(batch)))


def pass_budget(model, batches) -> int:
    """The default number of refinement passes: ``WORK_BUDGET`` over the work of one pass (the model's parameters
    times the mean positions of ``batches``, the pieces the passes run on), clamped to ``PASS_RANGE``."""
    params = sum(int(p.numel()) for p in model.parameters())
    positions = float(np.mean([batch_positions(b) for b in batches]))
    low, high = PASS_RANGE
    return int(min(high, max(low, round(WORK_BUDGET / max(1.0, params * positions)))))


def split_indices(n: int, opts: RecommendOptions) -> tuple[list[int], list[int], list[int]]:
    """Cost, search and confirm pieces: disjoint runs of consecutive pieces (so each mixes the batches evenly); the
    search and confirm pieces come first, so measuring class costs (``class_costs``) does not change them. With fewer
    pieces than asked for, no cost pieces and the pieces halved between search and confirm."""
    if n < 2:
        raise InputError("the measured refinement needs at least two calibration pieces")
    s, c = opts.search_chunks, opts.confirm_chunks
    cost = opts.cost_chunks if opts.class_costs else 0
    if n < s + c + cost:
        return [], list(range(n // 2)), list(range(n // 2, n))
    return list(range(s + c, s + c + cost)), list(range(s)), list(range(s, s + c))


def diagonal_surrogate(instance: Instance, evaluator, curvature: Mapping | None):
    """The true class cost of the diagonal model from the trained weights and the curvature (tie mode), else the
    instance's pair weights."""
    from ..oracle import DiagonalClassCost, GraphObjective
    if evaluator.mode != "tie" or not curvature or any(f"diag/{i}" not in curvature for i in evaluator.ids):
        return GraphObjective(instance)
    from ..classcost import ClassCost
    weights = {i: w.cpu().numpy() for i, w in evaluator.trained.items()}
    return DiagonalClassCost(ClassCost(instance, {i: curvature[f"diag/{i}"].cpu().numpy() for i in evaluator.ids},
                                       weights))


def measured_optimum(instance: Instance, oracle, say: Callable[[dict], None]) -> np.ndarray | None:
    """The colouring with the lowest summed measured class cost under the budget (None when a type is too deep to
    measure every class, or nothing fits)."""
    from .classcosts import SUBSET_MAX_NODES, allocate_types, best_partitions, colouring_from_curves
    if any(len(instance.type_members(t)) > SUBSET_MAX_NODES for t in instance.types):
        return None
    curves = {}
    for t in instance.types:
        members = instance.type_members(t)
        say({"stage": "refine", "message": f"measured class costs: {t} ({2 ** len(members) - len(members) - 1} "
                                           "classes)"})
        curves[t] = best_partitions(oracle.subset_costs(members), len(members))
    counts = allocate_types(instance, curves)
    return None if counts is None else colouring_from_curves(instance, curves, counts)


def as_result(instance: Instance, labels: np.ndarray, record: dict, started: float):
    """A ``Result`` for the recommended colouring (objective, feasibility and class counts from the checker)."""
    from ..provenance import __version__
    from ..checker import canonical, evaluate
    from ..result import Result, Status, Termination
    labels = canonical(np.asarray(labels))
    ev = evaluate(instance, labels)
    if not ev.feasible:
        raise InputError(f"the measured refinement produced an infeasible colouring: {ev.violations[0]}")
    return Result(instance_sha256=instance.sha256, instance_name=instance.name, solver=SOLVER,
                  solver_version=__version__, termination=Termination.COMPLETED.value,
                  status=Status.FEASIBLE.value, objective=ev.objective, bound=None, gap=None,
                  wall_time_s=round(time.perf_counter() - started, 6),
                  assignment={n.id: int(c) for n, c in zip(instance.nodes, labels)}, options={},
                  n_classes=ev.n_classes, classes_per_type=ev.classes_per_type, stored_params=ev.stored_params,
                  objective_per_type=ev.objective_per_type, stats={"refine": record})


def recommend(spec, instance: Instance, curvature: Mapping | None, starts: Mapping[str, Any], *, mode: str = "tie",
              ratio: float | None = None, options: Mapping[str, Any] | RecommendOptions | None = None,
              progress: Callable[[dict], None] | None = None):
    """``(Result, record)``: the recommended colouring (see the module docstring) from ``starts`` (name -> a
    Result, mapping or labels; infeasible ones are skipped)."""
    from .classcosts import MeasuredClassCost
    from .network import ColouringEvaluator, as_labels
    from .refine import Refiner
    opts = options if isinstance(options, RecommendOptions) else RecommendOptions.from_dict(options)
    say = progress or (lambda info: None)
    started = time.perf_counter()
    pieces = calibration_pieces(spec, opts.chunks)
    score = opts.score or getattr(spec, "refine_score", "loss")
    if score == "distill" and getattr(spec, "outputs", None) is None:
        raise InputError(f"refine option score 'distill' needs outputs to distil to; spec {spec.name!r} gives none")
    evaluator = ColouringEvaluator(spec, instance, curvature, mode=mode, ratio=ratio, batches=pieces, score=score)
    try:
        cost_idx, search, confirm = split_indices(len(evaluator.batches), opts)
        labelled = {}
        for name, colouring in starts.items():
            try:
                labelled[name] = as_labels(instance, colouring)
            except InputError:
                continue                         # a heuristic the budget rejects is no start
        oracle, record = None, {"options": asdict(opts), "score": score, "pieces": len(pieces)}
        if opts.class_costs and cost_idx:
            oracle = MeasuredClassCost(evaluator, cost_idx, curvature=curvature, cache=opts.cache,
                                       progress=lambda info: say({"stage": "refine", **info}))
            optimum = measured_optimum(instance, oracle, say)
            record["class_cost_passes"] = oracle.measured
            oracle.cache.flush()
            if optimum is None:
                oracle = None
            else:
                labelled["measured-costs"] = optimum
        surrogate = oracle if oracle is not None else diagonal_surrogate(instance, evaluator, curvature)
        record["surrogate"] = type(surrogate).__name__
        passes = opts.max_passes
        if passes is None:
            passes = pass_budget(evaluator.model, [evaluator.batches[i] for i in search + confirm])
        record["max_passes"] = passes
        refiner = Refiner(evaluator, instance, search, confirm, surrogate, max_passes=passes,
                          time_limit=opts.time_limit, progress=lambda info: say({"stage": "refine", **info}))
        found = refiner.run(labelled)
        record.update(found.to_dict())
        return as_result(instance, found.labels, record, started), record
    finally:
        evaluator.close()
