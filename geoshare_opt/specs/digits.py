"""Built-in spec ``digits-mlp``: an MLP with ``depth`` identical hidden layers trained on scikit-learn's digits.

A real, fast model for tests: 64 inputs -> ``inp`` (64 x hidden) -> ``hidden.0 .. hidden.{depth-1}`` (hidden x
hidden, the shareable layers) -> ``out`` (hidden x 10), ReLU between. Trained in a second or two with a fixed recipe
and seed on a fixed stratified 80/20 split, then cached as a state dict under ``$GEOSHARE_CACHE`` (default
``~/.cache/geoshare-opt``), keyed by the hash of the recipe, so later builds load it.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .base import ModelSpec, move_batch
from .prose_distill import check_positive

RECIPE_VERSION = 1
EPOCHS = 25
LEARNING_RATE = 3e-3
TRAIN_BATCH = 64
TEST_FRACTION = 0.2


class DigitsMLP(nn.Module):
    def __init__(self, hidden: int = 128, depth: int = 4):
        super().__init__()
        self.inp = nn.Linear(64, hidden)
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.out = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.inp(x))
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.out(x)


def cache_dir() -> Path:
    return Path(os.environ.get("GEOSHARE_CACHE") or Path.home() / ".cache" / "geoshare-opt")


def load_digits_split(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixels scaled to [0, 1]; a stratified split fixed by ``seed``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(data.data / 16.0, data.target, test_size=TEST_FRACTION,
                                              random_state=seed, stratify=data.target)
    as_x = lambda a: torch.tensor(a, dtype=torch.float32)
    as_y = lambda a: torch.tensor(a, dtype=torch.long)
    return as_x(x_tr), as_y(y_tr), as_x(x_te), as_y(y_te)


def train(hidden: int, depth: int, seed: int, x: torch.Tensor, y: torch.Tensor) -> DigitsMLP:
    """Adam on cross-entropy; seeded without touching the global RNG, on one thread so the bits repeat."""
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = DigitsMLP(hidden, depth)
            order_rng = torch.Generator().manual_seed(seed)
            opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS)
            for _ in range(EPOCHS):
                perm = torch.randperm(len(x), generator=order_rng)
                for start in range(0, len(x), TRAIN_BATCH):
                    idx = perm[start:start + TRAIN_BATCH]
                    opt.zero_grad(set_to_none=True)
                    F.cross_entropy(model(x[idx]), y[idx]).backward()
                    opt.step()
                sched.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def recipe(hidden: int, depth: int, seed: int) -> dict:
    return {"model": "digits-mlp", "version": RECIPE_VERSION, "hidden": hidden, "depth": depth, "seed": seed,
            "epochs": EPOCHS, "lr": LEARNING_RATE, "batch": TRAIN_BATCH, "test_fraction": TEST_FRACTION,
            "optimizer": "adam+cosine"}


def trained_model(hidden: int, depth: int, seed: int, x: torch.Tensor, y: torch.Tensor,
                  use_cache: bool = True) -> tuple[DigitsMLP, str, bool]:
    """The trained model, its recipe key, and whether it came from the cache."""
    key = hashlib.sha256(json.dumps(recipe(hidden, depth, seed), sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"digits-mlp-{key}.pt"
    if use_cache and path.is_file():
        model = DigitsMLP(hidden, depth)
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval(), key, True
        except Exception:  # a corrupt or foreign cache file: rebuild it
            pass
    model = train(hidden, depth, seed, x, y)
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
            os.close(fd)
            torch.save(model.state_dict(), tmp)
            os.replace(tmp, path)
        except OSError:  # an unwritable cache only costs a retrain next time
            pass
    return model, key, False


def make(hidden: int = 128, depth: int = 4, seed: int = 0, batch_size: int = 128, device=None,
         use_cache: bool = True) -> ModelSpec:
    """Calibration batches = the training set in ``batch_size`` chunks (fixed order); held-out = the test set."""
    hidden = check_positive("hidden", hidden)
    depth = check_positive("depth", depth)
    batch_size = check_positive("batch_size", batch_size)
    seed = int(seed)
    x_tr, y_tr, x_te, y_te = load_digits_split(seed)
    model, key, cached = trained_model(hidden, depth, seed, x_tr, y_tr, use_cache=use_cache)
    model.to(device)

    def chunks(x, y):
        return [(x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)) for i in range(0, len(x), batch_size)]

    calib, heldout = chunks(x_tr, y_tr), chunks(x_te, y_te)

    def outputs(net, batch):
        return net(batch[0])

    def output_loss(logits, batch):
        return F.cross_entropy(logits, batch[1])

    def loss(net, batch):
        return output_loss(outputs(net, batch), batch)

    @torch.no_grad()
    def metrics(net) -> dict[str, float]:
        was_training = net.training
        net.eval()
        try:
            correct = total_loss = 0.0
            param = next(net.parameters())
            for xb, yb in move_batch(heldout, param.device, param.dtype):  # follow the copy's device and dtype
                logits = net(xb)
                correct += float((logits.argmax(1) == yb).sum())
                total_loss += float(F.cross_entropy(logits, yb, reduction="sum"))
        finally:
            net.train(was_training)
        n = len(x_te)
        return {"accuracy": correct / n, "heldout_loss": total_loss / n}

    meta = {**recipe(hidden, depth, seed), "recipe_key": key, "cached": cached,
            "data": "sklearn.datasets.load_digits, stratified split", "n_train": len(x_tr), "n_test": len(x_te),
            "loss": "cross-entropy on training batches", "batch_size": batch_size}
    return ModelSpec(name="digits-mlp", model=model, batches=lambda: iter(calib), loss=loss, metrics=metrics,
                     heldout=lambda: iter(heldout), meta=meta, outputs=outputs, output_loss=output_loss)
