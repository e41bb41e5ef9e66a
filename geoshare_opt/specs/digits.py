"""Built-in spec ``digits-mlp``: an MLP with ``depth`` identical hidden layers trained on scikit-learn's digits.

A real, fast model for tests: 64 inputs -> ``inp`` (64 x hidden) -> ``hidden.0 .. hidden.{depth-1}`` (hidden x
hidden, the shareable layers) -> ``out`` (hidden x 10), ReLU between. Trained in a second or two with a fixed recipe
and seed, then cached as a state dict under ``$GEOSHARE_CACHE`` (default ``~/.cache/geoshare-opt``), keyed by the
hash of the recipe (training split and recipe included), so later builds load it.

Data: a fixed stratified 80/20 split of the 1797 images into development (1437) and test (360, the held-out set).
Three options decide how the network is trained and calibrated (see benchmarks/frontend/README.md for what each
does to the damage prediction):

- ``calibration``: ``"train"`` (default) calibrates on the training images themselves (all 1437 development
  images train the network); ``"split"`` keeps 360 development images out of training and calibrates on them,
  as post-training compression is used (train 1077 / calibration 360 / test 360).
- ``loss``: ``"ce"`` (default) is cross-entropy with the labels; ``"distill"`` is label-free, the KL divergence
  from the original network's softmax (the teacher's logits travel in each batch as its third element). At the
  original weights that loss and its gradient are zero and its Hessian is the Gauss-Newton matrix, so the quadratic
  model of sharing damage is the right one.
- ``recipe``: ``"fit"`` (default) is Adam with a cosine schedule for 25 epochs, which drives the training loss to
  about zero; ``"regularised"`` is AdamW with weight decay, early-stopped on a validation slice of the training
  images (the epoch with the lowest validation loss is kept).
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

from ..atomic import follow_umask
from ..errors import InputError
from .base import ModelSpec, eval_mode, move_batch
from .prose_distill import check_positive

RECIPE_VERSION = 1
EPOCHS = 25
LEARNING_RATE = 3e-3
TRAIN_BATCH = 64
TEST_FRACTION = 0.2
CALIB_SIZE = 360               # development images kept out of training with calibration="split"
WEIGHT_DECAY = 0.05            # recipe "regularised" (AdamW, decoupled)
REG_EPOCHS = 60                # recipe "regularised": at most this many epochs, the best on validation is kept
VALIDATION_SIZE = 180          # recipe "regularised": training images held back for early stopping

CALIBRATIONS = ("train", "split")
LOSSES = ("ce", "distill")
RECIPES = ("fit", "regularised")


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


def _split(x, y, size, seed):
    from sklearn.model_selection import train_test_split
    return train_test_split(x, y, test_size=size, random_state=seed, stratify=y)


def load_digits_split(seed: int, calibration: str = "train") -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Pixels scaled to [0, 1]; stratified splits fixed by ``seed``: ``train``, ``calib`` and ``test`` as
    ``(x, y)``. With ``calibration="train"`` the calibration set is the training set."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x_dev, x_te, y_dev, y_te = _split(data.data / 16.0, data.target, TEST_FRACTION, seed)
    if calibration == "split":
        x_tr, x_ca, y_tr, y_ca = _split(x_dev, y_dev, CALIB_SIZE, seed)
    else:
        x_tr, y_tr, x_ca, y_ca = x_dev, y_dev, x_dev, y_dev
    pair = lambda x, y: (torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.long))
    return {"train": pair(x_tr, y_tr), "calib": pair(x_ca, y_ca), "test": pair(x_te, y_te)}


def _epoch(model, opt, x, y, order_rng) -> None:
    perm = torch.randperm(len(x), generator=order_rng)
    for start in range(0, len(x), TRAIN_BATCH):
        idx = perm[start:start + TRAIN_BATCH]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()


def train(hidden: int, depth: int, seed: int, x: torch.Tensor, y: torch.Tensor, recipe_name: str = "fit") -> DigitsMLP:
    """Train by ``recipe_name``; seeded without touching the global RNG, on one thread so the bits repeat."""
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = DigitsMLP(hidden, depth)
            order_rng = torch.Generator().manual_seed(seed)
            if recipe_name == "fit":
                opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
                sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS)
                for _ in range(EPOCHS):
                    _epoch(model, opt, x, y, order_rng)
                    sched.step()
            else:
                _train_regularised(model, x, y, seed, order_rng)
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def _train_regularised(model: DigitsMLP, x, y, seed: int, order_rng) -> None:
    """AdamW with weight decay; keeps the epoch with the lowest loss on a validation slice of the training data."""
    x_tr, x_va, y_tr, y_va = _split(x.numpy(), y.numpy(), VALIDATION_SIZE, seed)
    x_tr, x_va = torch.from_numpy(x_tr), torch.from_numpy(x_va)
    y_tr, y_va = torch.from_numpy(y_tr), torch.from_numpy(y_va)
    opt = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    best, best_state = float("inf"), None
    for _ in range(REG_EPOCHS):
        model.train()
        _epoch(model, opt, x_tr, y_tr, order_rng)
        model.eval()
        with torch.no_grad():
            val = float(F.cross_entropy(model(x_va), y_va))
        if val < best:
            best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)


def training_recipe(hidden: int, depth: int, seed: int, calibration: str = "train", recipe_name: str = "fit") -> dict:
    """What determines the trained weights (the cache key). The defaults give the keys of earlier versions."""
    out = {"model": "digits-mlp", "version": RECIPE_VERSION, "hidden": hidden, "depth": depth, "seed": seed,
           "epochs": EPOCHS, "lr": LEARNING_RATE, "batch": TRAIN_BATCH, "test_fraction": TEST_FRACTION,
           "optimizer": "adam+cosine"}
    if calibration == "split":                      # fewer training images: other weights
        out["calib_size"] = CALIB_SIZE
    if recipe_name == "regularised":
        out.update(optimizer="adamw", epochs=REG_EPOCHS, weight_decay=WEIGHT_DECAY,
                   early_stop={"validation": VALIDATION_SIZE, "keep": "lowest validation loss"})
    return out


def trained_model(hidden: int, depth: int, seed: int, x: torch.Tensor, y: torch.Tensor, use_cache: bool = True,
                  calibration: str = "train", recipe_name: str = "fit") -> tuple[DigitsMLP, str, bool]:
    """The trained model, its recipe key, and whether it came from the cache."""
    key = hashlib.sha256(json.dumps(training_recipe(hidden, depth, seed, calibration, recipe_name),
                                    sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"digits-mlp-{key}.pt"
    if use_cache and path.is_file():
        model = DigitsMLP(hidden, depth)
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval(), key, True
        except Exception:  # a corrupt or foreign cache file: rebuild it
            pass
    model = train(hidden, depth, seed, x, y, recipe_name)
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
            os.close(fd)
            torch.save(model.state_dict(), tmp)
            follow_umask(tmp)
            os.replace(tmp, path)
        except OSError:  # an unwritable cache only costs a retrain next time
            pass
    return model, key, False


def _choice(name: str, value, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InputError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _kl_to_teacher(logits: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean over examples of KL(softmax(teacher) ‖ softmax(logits))."""
    return F.kl_div(F.log_softmax(logits, -1), F.log_softmax(teacher, -1), reduction="batchmean", log_target=True)


def make(hidden: int = 128, depth: int = 4, seed: int = 0, batch_size: int = 128, device=None,
         use_cache: bool = True, calibration: str = "train", loss: str = "ce", recipe: str = "fit") -> ModelSpec:
    """Calibration batches = the calibration set (see the module docstring) in ``batch_size`` chunks (fixed order);
    held-out = the test set. Batches are ``(x, y)``, or ``(x, y, teacher_logits)`` with ``loss="distill"``."""
    hidden = check_positive("hidden", hidden)
    depth = check_positive("depth", depth)
    batch_size = check_positive("batch_size", batch_size)
    calibration = _choice("calibration", calibration, CALIBRATIONS)
    loss_name = _choice("loss", loss, LOSSES)
    recipe_name = _choice("recipe", recipe, RECIPES)
    seed = int(seed)
    data = load_digits_split(seed, calibration)
    (x_tr, y_tr), (x_ca, y_ca), (x_te, y_te) = data["train"], data["calib"], data["test"]
    model, key, cached = trained_model(hidden, depth, seed, x_tr, y_tr, use_cache=use_cache,
                                       calibration=calibration, recipe_name=recipe_name)
    distill = loss_name == "distill"

    def chunks(x, y):
        out = []
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size], y[i:i + batch_size]
            if distill:  # the original network's logits, computed once on the CPU (as trained)
                with torch.no_grad():
                    out.append((xb, yb, model(xb)))
            else:
                out.append((xb, yb))
        return [tuple(t.to(device) for t in b) for b in out]

    calib, heldout = chunks(x_ca, y_ca), chunks(x_te, y_te)
    model.to(device)

    def outputs(net, batch):
        return net(batch[0])

    def output_loss(logits, batch):
        if distill:
            return _kl_to_teacher(logits, batch[2])
        return F.cross_entropy(logits, batch[1])

    def loss_fn(net, batch):
        return output_loss(outputs(net, batch), batch)

    def distill_loss(student, teacher, batch):
        return _kl_to_teacher(student, teacher)

    @torch.no_grad()
    def metrics(net) -> dict[str, float]:
        """Task metrics on the test set (cross-entropy with the labels, whichever loss calibrates)."""
        with eval_mode(net):
            correct = total_loss = 0.0
            param = next(net.parameters())
            for batch in move_batch(heldout, param.device, param.dtype):  # follow the copy's device and dtype
                xb, yb = batch[0], batch[1]
                logits = net(xb)
                correct += float((logits.argmax(1) == yb).sum())
                total_loss += float(F.cross_entropy(logits, yb, reduction="sum"))
        n = len(x_te)
        return {"accuracy": correct / n, "heldout_loss": total_loss / n}

    meta = {**training_recipe(hidden, depth, seed, calibration, recipe_name), "recipe_key": key, "cached": cached,
            "data": "sklearn.datasets.load_digits, stratified split", "n_train": len(x_tr), "n_calib": len(x_ca),
            "n_test": len(x_te), "calibration": calibration, "recipe": recipe_name,
            "loss": ("KL divergence to the original network's softmax" if distill else "cross-entropy")
            + (" on the training batches" if calibration == "train" else " on a calibration split kept out of training"),
            "batch_size": batch_size}
    return ModelSpec(name="digits-mlp", model=model, batches=lambda: iter(calib), loss=loss_fn, metrics=metrics,
                     heldout=lambda: iter(heldout), meta=meta, outputs=outputs, output_loss=output_loss,
                     distill_loss=distill_loss if distill else None)

