"""User specs around ``TinyMLP`` for the recovery tests: one that distils (``outputs``/``output_loss``, held-out
batches), and one built from other weights (a spec that does not match a compressed directory)."""
from __future__ import annotations

import torch

from materialize_helpers import TinyMLP


def _spec(model_seed: int) -> dict:
    model = TinyMLP(seed=model_seed)
    g = torch.Generator().manual_seed(11)
    calib = [torch.randn(32, 6, generator=g) for _ in range(4)]
    heldout = [torch.randn(32, 6, generator=g) for _ in range(2)]
    with torch.no_grad():
        targets = [model(x) for x in calib]

    def outputs(net, batch):
        return net(batch[0])

    def output_loss(out, batch):
        return ((out - batch[1]) ** 2).mean()

    def loss(net, batch):
        return output_loss(outputs(net, batch), batch)

    @torch.no_grad()
    def metrics(net):
        return {"heldout_mse": float(sum(((net(x) - model(x)) ** 2).mean() for x in heldout) / len(heldout))}

    with torch.no_grad():
        held = [(x, model(x)) for x in heldout]
    return {"model": model, "batches": list(zip(calib, targets)), "heldout": held, "loss": loss,
            "metrics": metrics, "outputs": outputs, "output_loss": output_loss}


def make():
    return _spec(0)


def make_other():
    return _spec(3)
