"""``apply``: a colouring (a result) becomes a compressed copy of the network, with a report and a tie map."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..checker import checked_labels
from ..errors import InputError
from ..instance import Instance
from ..options import check_ratio
from ..provenance import versions
from .basis import choose_side, class_rank, swap_class
from .common import as_result, check_model, classes_of, fingerprint
from .report import compare, parameter_report
from .tie import tie_classes

MODES = ("tie", "basis")
BASIS_NEEDS_COV = "basis mode needs input covariances: re-run analyze with --mode basis"


@dataclass
class ApplyReport:
    mode: str
    parameters: dict                       # before/after counts over unique storages (report.compare)
    classes: list[dict]                    # one record per class: members, and the merge or the side/rank
    tie_map: dict = field(repr=False)      # what save_compressed writes as tiemap.json

    def to_dict(self) -> dict:
        return {"mode": self.mode, "parameters": self.parameters, "classes": self.classes}


def basis_ratio(instance: Instance, ratio: float | None) -> float:
    """The compression target of basis mode: ``ratio`` if given, else the instance's (``meta.budget_from.ratio``
    as analyze records it, or ``meta.ratio``), else ``1 − max_params / total``."""
    if ratio is None:
        meta = instance.meta if isinstance(instance.meta, Mapping) else {}
        ratio = meta.get("ratio")
        for key in ("budget_from", "budget"):          # the front end records the ratio under budget_from
            if ratio is None and isinstance(meta.get(key), Mapping):
                ratio = meta[key].get("ratio")
        if ratio is None and instance.budget.max_params is not None:
            total = int(instance.params.sum())
            ratio = 1.0 - instance.budget.max_params / total if total else None
        if ratio is None:
            raise InputError("basis mode needs a compression ratio: pass --ratio (the instance records none)")
    check_ratio(ratio)
    return float(ratio)


def apply(model, instance: Instance, result: Any, mode: str = "tie", curvature: Mapping | None = None, *,
          ratio: float | None = None, rank: int | str | None = None, side: str = "auto",
          spec: str | None = None, check_fingerprint: bool = True):
    """Materialise ``result``'s colouring of ``instance`` on a deep copy of ``model``.

    ``mode="tie"``: each class becomes one Parameter (curvature-weighted mean of its members; ``curvature`` maps
    ``diag/<name>`` to the element-wise curvature, e.g. ``geoshare_opt.frontend.load_curvature``; plain mean
    without it). ``mode="basis"``: each class shares one low-rank basis (``curvature`` must hold
    ``in_cov/<name>``); ranks from ``rank`` (an int or ``"full"``) or from ``ratio`` (fraction of the shareable
    parameters removed; default: the instance's budget). Returns ``(compressed model, ApplyReport)``; the input
    model is never modified.
    """
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose tie or basis")
    res = as_result(result)
    labels = checked_labels(instance, res)
    if check_fingerprint:
        check_model(model, instance)
    else:
        params = dict(model.named_parameters(remove_duplicate=False))
        missing = [n.id for n in instance.nodes if n.id not in params]
        if missing:
            raise InputError(f"the model has no parameter {missing[0]!r} named by the instance")
    node_ids = [n.id for n in instance.nodes]
    classes = classes_of(instance, labels)
    before = parameter_report(model, node_ids)
    compressed = copy.deepcopy(model)
    meta_model = (instance.meta.get("model") or {}) if isinstance(instance.meta, Mapping) else {}

    if mode == "tie":
        records = tie_classes(compressed, classes, curvature)["classes"]
        target = None
    else:
        if curvature is None or any(f"in_cov/{m}" not in curvature for m in node_ids):
            raise InputError(BASIS_NEEDS_COV)
        target = None if rank is not None else basis_ratio(instance, ratio)
        records = []
        params = dict(model.named_parameters(remove_duplicate=False))
        for members in classes:
            d_out, d_in = params[members[0]].shape
            s = choose_side(side, d_out, d_in)
            r = class_rank(rank, target, s, len(members), d_out, d_in)
            covs = [curvature[f"in_cov/{m}"] for m in members]
            for m, c in zip(members, covs):
                if tuple(c.shape) != (d_in, d_in):
                    raise InputError(f"in_cov/{m} has shape {list(c.shape)}, expected {[d_in, d_in]}: the "
                                     "curvature file belongs to another model")
            records.append(swap_class(compressed, members, covs, r, s))

    after = parameter_report(compressed, node_ids)
    parameters = compare(before, after)
    tie_map = {
        "format": "geoshare-tiemap", "version": 1, "mode": mode,
        "instance_sha256": instance.sha256, "instance_name": instance.name,
        "spec": spec if spec is not None else meta_model.get("spec"),
        # the make() options the network was built with: `evaluate`/`recover` need them to rebuild it
        **({"spec_options": meta_model["spec_options"]} if meta_model.get("spec_options") else {}),
        "fingerprint": meta_model.get("fingerprint") or fingerprint(model, node_ids),
        "result": {"solver": res.solver, "objective": res.objective, "termination": res.termination},
        "colouring": {n.id: int(c) for n, c in zip(instance.nodes, labels)},
        "ratio": target, "classes": records,
        "parameters": parameters, "versions": versions("torch", "safetensors"),
    }
    return compressed, ApplyReport(mode, parameters, records, tie_map)
