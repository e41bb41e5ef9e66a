"""Tiny torch models and hand-made instances for the back-end tests (node ids = parameter names)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from geoshare_opt.instance import Instance
from geoshare_opt.result import Result, Status, Termination


class TinyMLP(nn.Module):
    """An input layer, ``depth`` identical hidden layers (the shareable nodes) and a head."""

    def __init__(self, d_in=6, hidden=8, depth=4, d_out=3, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.inp = nn.Linear(d_in, hidden)
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.up = nn.ModuleList(nn.Linear(hidden, 2 * hidden) for _ in range(2))
        self.down = nn.ModuleList(nn.Linear(2 * hidden, hidden) for _ in range(2))
        self.head = nn.Linear(hidden, d_out)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.4)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        for layer in self.hidden:
            h = torch.tanh(layer(h))
        for up, down in zip(self.up, self.down):
            h = h + down(torch.relu(up(h)))
        return self.head(h)


def node_ids(model: TinyMLP):
    ids = [f"hidden.{i}.weight" for i in range(len(model.hidden))]
    ids += [f"up.{i}.weight" for i in range(len(model.up))]
    ids += [f"down.{i}.weight" for i in range(len(model.down))]
    return ids


def make_instance(model: TinyMLP, max_classes=None, max_params=None, fingerprint=True, weights=None, seed=0):
    from geoshare_opt.materialize.common import fingerprint as fp
    params = dict(model.named_parameters())
    nodes = []
    for nid in node_ids(model):
        role, layer, _ = nid.split(".")
        shape = list(params[nid].shape)
        nodes.append({"id": nid, "type": f"{role}:{shape[0]}x{shape[1]}", "params": params[nid].numel(),
                      "layer": int(layer), "meta": {"shape": shape, "module": nid.rsplit(".", 1)[0]}})
    g = torch.Generator().manual_seed(seed)
    edges = []
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            if a["type"] == b["type"]:
                w = float(torch.rand(1, generator=g)) if weights is None else weights(a["id"], b["id"])
                edges.append({"u": a["id"], "v": b["id"], "w": w})
    meta = {"model": {"spec": "tiny", "fingerprint": fp(model, [n["id"] for n in nodes])}} if fingerprint else {}
    return Instance.build(nodes, edges, max_classes or len(nodes), max_params=max_params, meta=meta, name="tiny")


def make_result(instance: Instance, assignment: dict, solver="hand") -> Result:
    from geoshare_opt.checker import evaluate
    ev = evaluate(instance, assignment)
    return Result(instance_sha256=instance.sha256, solver=solver, solver_version="0", termination=
                  Termination.COMPLETED.value, status=Status.FEASIBLE.value, objective=ev.objective, bound=None,
                  gap=None, wall_time_s=0.0, assignment=dict(assignment), n_classes=ev.n_classes,
                  classes_per_type=ev.classes_per_type, stored_params=ev.stored_params)


def curvature_for(model: TinyMLP, n=64, seed=1, with_cov=True):
    """Random positive diagonal curvature and the true input covariances of every node layer."""
    g = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    out = {f"diag/{nid}": torch.rand(params[nid].shape, generator=g) + 0.05 for nid in node_ids(model)}
    if with_cov:
        inputs = {}
        hooks = []
        for nid in node_ids(model):
            mod = model.get_submodule(nid.rsplit(".", 1)[0])
            def keep(m, args, out_, nid=nid):
                inputs[nid] = args[0].detach()
            hooks.append(mod.register_forward_hook(keep))
        with torch.no_grad():
            model(torch.randn(n, model.inp.in_features, generator=g))
        for h in hooks:
            h.remove()
        for nid, x in inputs.items():
            out[f"in_cov/{nid}"] = x.T @ x / x.shape[0]
    return out


def make():
    """A user spec (``tests/materialize_helpers.py:make``) around ``TinyMLP`` for the CLI tests."""
    model = TinyMLP()
    g = torch.Generator().manual_seed(5)
    xs = [torch.randn(16, 6, generator=g) for _ in range(2)]
    ys = [model(x).detach() for x in xs]
    batches = list(zip(xs, ys))

    def loss(net, batch):
        return ((net(batch[0]) - batch[1]) ** 2).mean()

    @torch.no_grad()
    def metrics(net):
        return {"fidelity": float(-sum(loss(net, b) for b in batches)), "heldout_mse": float(loss(net, batches[0]))}

    return {"model": model, "batches": batches, "loss": loss, "metrics": metrics}


def write_instance_with_sidecar(tmp_path, model, instance_kwargs=None, with_cov=True, stem="inst"):
    """An instance file whose meta points at a curvature sidecar, as the front end writes them."""
    import hashlib
    from safetensors.torch import save_file
    curv = {k: v.contiguous() for k, v in curvature_for(model, with_cov=with_cov).items()}
    side = tmp_path / f"{stem}.curvature.safetensors"
    save_file(curv, str(side))
    base = make_instance(model, **(instance_kwargs or {}))
    meta = dict(base.meta)
    meta["curvature"] = {"file": side.name, "sha256": hashlib.sha256(side.read_bytes()).hexdigest()}
    inst = Instance(base.name, base.nodes, base.edges, base.budget, meta)
    path = tmp_path / f"{stem}.json"
    inst.save(path)
    return inst, path, curv


#: the spec of this module as the command line names it, and a tie colouring of TinyMLP with every kind of class
SPEC = "tests/materialize_helpers.py:make"
GROUPS = {"hidden.0.weight": 0, "hidden.1.weight": 0, "hidden.2.weight": 1, "hidden.3.weight": 0,
          "up.0.weight": 2, "up.1.weight": 2, "down.0.weight": 3, "down.1.weight": 4}


def saved_tie_directory(folder: Path):
    """A compressed directory (tie mode, ``GROUPS``) of a fresh TinyMLP saved under ``folder / "out"``:
    ``(model, path)``. Tests that edit it work on a copy."""
    from geoshare_opt.materialize import apply, save_compressed
    model = TinyMLP()
    inst = make_instance(model)
    compressed, report = apply(model, inst, make_result(inst, GROUPS), "tie", curvature_for(model), spec=SPEC)
    return model, save_compressed(compressed, folder / "out", report.tie_map)
