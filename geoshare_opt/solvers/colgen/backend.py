"""The ``colgen`` backend: set partitioning by column generation and branch and price (formulations/colgen.md).

It plugs into the exact decomposition every exact backend shares (``decompose.solve_exact``; ``sweep --solver
colgen`` uses the same ``model_solver``): each per-type point ``f_t(k)`` is one ``TypeEngine.solve``. The engine of a
type is built once per run and kept, so its column pool and master LP serve every k that the DP or the sweep asks
for. Models that couple types (``max_params`` with mixed parameter counts in a type, or native ``decompose=false``)
are not set-partitioning models of one type: they go to CP-SAT's model solver, and ``stats["monolithic"]`` says so.

Native options (besides the shared ``decompose``, ``hint``, ``seed_heuristic``; ``symmetry`` and ``triangles`` do not
apply): ``keep`` (classes per pricing call, default 24), ``smoothing`` (Wentges α in [0, 1), default 0.5),
``mip_nodes`` (branch-and-bound nodes of each restricted-master MIP, default 50), ``enum_max`` (exact pricing by
enumeration up to this many groups, default 12, at most 30), ``work_limit`` (a deterministic work budget for the
whole run, ``pricing.WorkMeter`` units, default 0 = none: ``auto`` uses it when no time limit is given),
``stop_at_keep`` (1, default: branch-and-bound pricing stops once it holds ``keep`` negative classes; 0: every
exact pricing searches to the end), ``sdp_cuts`` (1, default: the SDP bound of open points adds triangle and
clique cuts; 0: the plain relaxation).
"""
from __future__ import annotations

import time

import numpy as np

from ...errors import InputError
from ...instance import Instance
from ...options import SolveOptions
from ..base import Backend, Outcome, SolveContext
from ..budget import memory_limit_or_default
from ..curves import INF, Model, ModelAnswer, Part
from ..decompose import model_memory_limit, solve_exact, solver_native
from .engine import Settings, TypeEngine
from .pricing import WorkMeter

_FLAGS = ("symmetry", "triangles")      # formulation switches of the assignment models: no meaning here
#: bytes of dense matrices per pair of a type's nodes (W, hard, a node's group sums and products)
BYTES_PER_PAIR = 48


class ColgenBackend(Backend):
    name = "colgen"
    summary = ("set partitioning: column generation and branch and price per type (exact pricing, Lagrangian and SDP "
               "bounds, probing, Ryan-Foster branching)")
    exact = True
    gives_bound = True
    determinism = "deterministic"
    modules = ("highspy", "numba")
    distributions = ("highspy", "numba", "scipy")

    def run(self, instance: Instance, options: SolveOptions, ctx: SolveContext) -> Outcome:
        return solve_exact(instance, options, ctx, model_solver(options, ctx), full_curves=True)


def settings_from(native: dict) -> Settings:
    """The engine settings from native options; one clear line for anything unknown or out of range."""
    native = {k: v for k, v in native.items() if k not in _FLAGS}
    s = Settings()
    for key, value in native.items():
        if key not in Settings.__dataclass_fields__:
            known = ", ".join(sorted(Settings.__dataclass_fields__))
            raise InputError(f"colgen: unknown native option {key!r} (known: {known})")
        default = getattr(s, key)
        try:
            value = type(default)(value)
        except (TypeError, ValueError):
            raise InputError(f"colgen: native option {key!r} must be a number, got {value!r}") from None
        setattr(s, key, value)
    if s.keep < 1 or not 0 <= s.smoothing < 1 or s.mip_nodes < 0 or not 1 <= s.enum_max <= 30 \
            or s.work_limit < 0 or s.oracle_steps < 0 or s.stop_at_keep not in (0, 1) or s.sdp_cuts not in (0, 1):
        raise InputError("colgen: native options need keep >= 1, 0 <= smoothing < 1, mip_nodes >= 0, "
                         "1 <= enum_max <= 30, work_limit >= 0, oracle_steps >= 0, stop_at_keep 0 or 1, "
                         "sdp_cuts 0 or 1")
    return s


def refusal(part: Part, memory_limit: float | None) -> str:
    """Why the engine of ``part`` should not be built ("" when it may): its dense matrices (pair weights, hard
    pairs, a node's group sums) take about ``BYTES_PER_PAIR · n²`` bytes, compared with ``memory_limit`` (default
    the share of the available memory that ``budget.MEMORY_SHARE`` allows)."""
    need = BYTES_PER_PAIR * part.n ** 2
    memory_limit = memory_limit_or_default(memory_limit)
    if memory_limit is not None and need > memory_limit:
        return (f"colgen: type {part.type!r} ({part.n} nodes) would need about {need / 2 ** 30:.2g} GB of dense "
                f"matrices, more than the {memory_limit / 2 ** 30:.2g} GB it may use")
    return ""


def model_solver(options: SolveOptions, ctx: SolveContext):
    """A ``SolveModel`` (decompose.py) backed by one cached ``TypeEngine`` per type."""
    settings = settings_from(solver_native(options))
    memory_limit = model_memory_limit(options)
    work = WorkMeter(settings.work_limit)       # one budget for the whole run, across types and budgets
    engines: dict[tuple, TypeEngine] = {}
    fallback = []

    def engine_of(part: Part) -> TypeEngine:
        key = (part.type, part.nodes.tobytes())
        if key not in engines:
            engines[key] = TypeEngine(part.W, part.hard, settings=settings, work=work)
        return engines[key]

    def solve(model: Model, time_limit: float | None, hint) -> ModelAnswer:
        if len(model.parts) != 1 or model.max_params is not None:
            return monolithic(model, time_limit, hint)
        part = model.parts[0]
        why = refusal(part, memory_limit)
        if why:
            return ModelAnswer("unknown", None, -INF, {"not_built": why})
        k = min(part.cap, model.max_classes)
        deadline = None if time_limit is None else time.monotonic() + time_limit
        res = engine_of(part).solve(k, deadline, None if hint is None else np.asarray(hint[0]))
        labels = None if res.labels is None else [res.labels]
        return ModelAnswer(res.status, labels, res.bound, {"colgen": res.stats}, res.interrupted)

    def monolithic(model: Model, time_limit: float | None, hint) -> ModelAnswer:
        if not fallback:
            from ..cpsat import model_solver as cpsat_solver
            fallback.append(cpsat_solver(SolveOptions(seed=options.seed, threads=options.threads), ctx))
        ans = fallback[0](model, time_limit, hint)
        ans.stats["monolithic"] = "solved by CP-SAT: the model couples types (colgen prices one type at a time)"
        return ans

    return solve
