"""Parameter and byte counts that count each storage once (``state_dict()`` and ``named_parameters(remove_duplicate=
False)`` list every alias of a tied tensor; only unique storages are memory)."""
from __future__ import annotations

from torch import nn

from .basis import SharedBasisLinear
from .common import owner


def _unique(tensors) -> tuple[int, int, int]:
    """(parameters, bytes, storages) over distinct storages."""
    seen: dict[int, tuple[int, int]] = {}
    for t in tensors:
        s = t.untyped_storage()
        seen[s.data_ptr()] = (s.nbytes() // t.element_size(), s.nbytes())
    return sum(p for p, _ in seen.values()), sum(b for _, b in seen.values()), len(seen)


def node_tensors(model, node_ids) -> list:
    """The tensors that now carry the instance's nodes: a tied weight, or a shared basis and its coefficients, plus
    the member's low-rank correction after a lora recovery."""
    from .corrections import CORRECTED
    out = []
    for name in node_ids:
        module, attr = owner(model, name)
        if isinstance(module, SharedBasisLinear) and attr == "weight":
            out += [module.weight_in, module.weight_out]
        else:
            out.append(getattr(module, attr))
        if isinstance(module, CORRECTED) and attr == "weight":
            out += [module.lora_A, module.lora_B]
    return out


def parameter_report(model: nn.Module, node_ids=None) -> dict:
    """Unique parameters, bytes and storages of the whole model (parameters and buffers separately) and of the
    tensors serving the instance's nodes (the shareable layers)."""
    all_params = [p for _, p in model.named_parameters(remove_duplicate=False)]
    params, nbytes, storages = _unique(all_params)
    bparams, bbytes, _ = _unique(b for _, b in model.named_buffers(remove_duplicate=False))
    rep = {"params": params, "param_bytes": nbytes, "param_storages": storages,
           "aliases": len(all_params) - storages,
           "buffer_bytes": bbytes, "buffer_elements": bparams}
    from .corrections import correction_parameters
    corrections = correction_parameters(model)
    if corrections:
        rep["correction_params"] = _unique(corrections)[0]
    if node_ids is not None:
        sp, sb, ss = _unique(node_tensors(model, node_ids))
        rep.update(shareable_params=sp, shareable_bytes=sb, shareable_storages=ss)
    return rep


def compare(before: dict, after: dict) -> dict:
    """before/after side by side with the fraction of stored parameters removed (overall and shareable)."""
    out = {"before": before, "after": after,
           "removed_fraction": 1.0 - after["params"] / before["params"] if before["params"] else 0.0}
    if "shareable_params" in before and before["shareable_params"]:
        out["shareable_removed_fraction"] = 1.0 - after["shareable_params"] / before["shareable_params"]
    return out
