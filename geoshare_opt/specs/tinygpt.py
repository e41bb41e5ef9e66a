"""Built-in spec ``tiny-gpt``: a deep (24-block) byte-level GPT trained by the package on the stdlib prose snapshot.

The model is rebuilt offline by anyone from a frozen recipe (``RECIPES``: sizes, steps, learning-rate schedule, batch,
context, seed, data split). The sha256 of the recipe (plus the prose snapshot's sha256) names the cache entry under
``$GEOSHARE_OPT_CACHE`` (else ``$GEOSHARE_CACHE``, else ``~/.cache/geoshare-opt``): ``tiny-gpt-<key>.safetensors``
(the weights) and ``tiny-gpt-<key>.json`` (the recipe, the weights' sha256, training time and perplexities), each
written atomically, the JSON last so that its presence marks a complete entry. A missing, foreign or corrupt entry is
rebuilt (a line on stderr, a tqdm bar while training).

Data (``geoshare_opt.data``): the training split is the snapshot's ``calib`` split (80 % of paragraphs, fixed by a
hash of each paragraph); calibration windows come from the same split (what the model was trained on, as calibration
data usually is); the ``heldout`` split (20 %) is never used for training or calibration and gives the metrics:
``heldout_loss`` (next-byte cross-entropy, nats per byte) and ``heldout_perplexity`` (its exponential).

A batch is a ``LongTensor (batch, seq_len + 1)`` of byte ids; inputs are ``[:, :-1]``, next-byte targets ``[:, 1:]``.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from types import MappingProxyType
from typing import Callable

import torch
import torch.nn.functional as F

from ..data import load_paragraphs, snapshot_sha256
from ..errors import InputError
from .base import ModelSpec, eval_mode, move_batch
from .gpt import GPTConfig, TinyGPT, next_byte_loss
from .prose_distill import check_positive

RECIPE_VERSION = 1
# Frozen: changing any value changes the cache key, so a new model is trained instead of a stale one reused.
RECIPES = MappingProxyType({
    "full": MappingProxyType({
        "n_layer": 24, "d_model": 64, "n_head": 4, "d_mlp": 256, "block_size": 64,
        "steps": 400, "batch": 32, "lr": 3e-3, "min_lr_fraction": 0.1, "warmup": 20, "weight_decay": 0.1,
        "betas": (0.9, 0.95), "grad_clip": 1.0, "seed": 0, "train_split": "calib",
        "eval_windows": None,  # the recorded held-out perplexity: every held-out byte
    }),
    # twice as deep, otherwise the same recipe: the 32- and 48-layer instances of the set-partitioning benchmark
    # (benchmarks/solvers/colgen); about 21 minutes of training on one core
    "deep48": MappingProxyType({
        "n_layer": 48, "d_model": 64, "n_head": 4, "d_mlp": 256, "block_size": 64,
        "steps": 400, "batch": 32, "lr": 3e-3, "min_lr_fraction": 0.1, "warmup": 20, "weight_decay": 0.1,
        "betas": (0.9, 0.95), "grad_clip": 1.0, "seed": 0, "train_split": "calib",
        "eval_windows": None,
    }),
    # for tests only: same depth, tiny width, trains in seconds
    "test": MappingProxyType({
        "n_layer": 24, "d_model": 16, "n_head": 2, "d_mlp": 32, "block_size": 32,
        "steps": 40, "batch": 8, "lr": 1e-2, "min_lr_fraction": 0.1, "warmup": 4, "weight_decay": 0.1,
        "betas": (0.9, 0.95), "grad_clip": 1.0, "seed": 0, "train_split": "calib",
        "eval_windows": 64,
    }),
})
PARAGRAPH_SEPARATOR = b"\n"
EVAL_BATCH = 32


def cache_dir() -> Path:
    env = os.environ.get("GEOSHARE_OPT_CACHE") or os.environ.get("GEOSHARE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "geoshare-opt"


def resolve_recipe(recipe: str) -> dict:
    if not isinstance(recipe, str) or recipe not in RECIPES:
        raise InputError(f"tiny-gpt recipe {recipe!r}: use one of {', '.join(RECIPES)}")
    return {"model": "tiny-gpt", "version": RECIPE_VERSION, "name": recipe,
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in RECIPES[recipe].items()}}


def recipe_key(recipe: dict) -> str:
    """sha256 of the canonical recipe JSON and of the training corpus."""
    payload = json.dumps({"recipe": recipe, "data_sha256": snapshot_sha256()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def config_of(recipe: dict) -> GPTConfig:
    return GPTConfig(n_layer=recipe["n_layer"], d_model=recipe["d_model"], n_head=recipe["n_head"],
                     d_mlp=recipe["d_mlp"], block_size=recipe["block_size"])


# ---------------------------------------------------------------------- data
def as_stream(paragraphs: list[str]) -> torch.Tensor:
    """Paragraphs as one stream of byte ids, separated by a newline."""
    data = PARAGRAPH_SEPARATOR.join(p.encode("utf-8") for p in paragraphs)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).long()


def byte_stream(split: str) -> torch.Tensor:
    """A split's paragraphs in snapshot order (the training and evaluation stream)."""
    return as_stream(load_paragraphs(split))


def packed_windows(stream: torch.Tensor, width: int, n: int | None, what: str) -> torch.Tensor:
    """``n`` (all when None) windows of ``width`` bytes, overlapping by one byte so every byte after the first is a
    target exactly once."""
    step = width - 1
    available = (len(stream) - 1) // step
    n = available if n is None else n
    if n > available:
        raise InputError(f"{what}: the prose split has {len(stream)} bytes, enough for {available} windows of "
                         f"{step} bytes, not {n}; ask for fewer")
    return torch.stack([stream[i * step:i * step + width] for i in range(n)])


def shuffled_stream(split: str, seed: int) -> torch.Tensor:
    """A split's paragraphs in an order fixed by ``seed`` (calibration windows differ per seed)."""
    paragraphs = load_paragraphs(split)
    random.Random(seed).shuffle(paragraphs)
    return as_stream(paragraphs)


# ---------------------------------------------------------------------- training
def lr_at(step: int, recipe: dict) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_fraction`` of the peak."""
    peak, warm, total = recipe["lr"], recipe["warmup"], recipe["steps"]
    if step < warm:
        return peak * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    floor = peak * recipe["min_lr_fraction"]
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * progress))


@torch.no_grad()
def mean_loss(model: TinyGPT, windows: torch.Tensor, device) -> float:
    total = count = 0.0
    for start in range(0, len(windows), EVAL_BATCH):
        chunk = windows[start:start + EVAL_BATCH].to(device)
        total += float(next_byte_loss(model(chunk[:, :-1]).float(), chunk[:, 1:], reduction="sum"))
        count += chunk[:, 1:].numel()
    return total / count


def unigram_loss(train: torch.Tensor, targets: torch.Tensor) -> float:
    """Cross-entropy (nats per byte) of the add-one-smoothed byte frequencies of ``train`` on ``targets``."""
    counts = torch.bincount(train, minlength=256).double() + 1.0
    logp = (counts / counts.sum()).log()
    return float(-logp[targets.reshape(-1)].mean())


def train(recipe: dict, device=None, progress: bool = True) -> tuple[TinyGPT, dict]:
    """Train from scratch: AdamW (weight decay on matrices only), clipped gradients, warm-up + cosine schedule, random
    windows of the training stream drawn by a seeded generator. Seeded without touching the global RNG; on a CPU it
    runs on one thread so that the same recipe gives the same bits whatever the machine's core count."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    stream = byte_stream(recipe["train_split"])
    width = recipe["block_size"] + 1
    if len(stream) <= width:
        raise InputError("tiny-gpt: the training split is shorter than one window")
    threads = torch.get_num_threads()
    try:
        if device.type == "cpu":
            torch.set_num_threads(1)  # the same bits on every CPU count, and no stalls on a shared machine
        return _train(recipe, device, stream, width, progress)
    finally:
        torch.set_num_threads(threads)


def _train(recipe: dict, device: torch.device, stream: torch.Tensor, width: int,
           progress: bool) -> tuple[TinyGPT, dict]:
    started, cpu_started = time.perf_counter(), time.process_time()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe["seed"])
        model = TinyGPT(config_of(recipe))
    model.to(device).train()
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=recipe["lr"],
                            betas=tuple(recipe["betas"]))
    order = torch.Generator().manual_seed(recipe["seed"])
    offsets = torch.arange(width)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=recipe["steps"], desc="tiny-gpt training", unit="step", file=sys.stderr, mininterval=1.0)
    losses = []
    try:
        for step in range(recipe["steps"]):
            starts = torch.randint(0, len(stream) - width + 1, (recipe["batch"],), generator=order)
            batch = stream[starts.unsqueeze(1) + offsets].to(device)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, recipe)
            loss = next_byte_loss(model(batch[:, :-1]), batch[:, 1:])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe["grad_clip"])
            opt.step()
            losses.append(float(loss.detach()))
            if bar is not None:
                bar.update(1)
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{losses[-1]:.3f}")
    finally:
        if bar is not None:
            bar.close()
    train_time, train_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    model.eval()
    heldout = packed_windows(byte_stream("heldout"), width, recipe["eval_windows"], "tiny-gpt held-out")
    held_loss = mean_loss(model, heldout, device)
    uni = unigram_loss(stream, heldout[:, 1:])
    stats = {"train_time_s": round(train_time, 3), "train_cpu_s": round(train_cpu, 3), "device": str(device),
             "threads": torch.get_num_threads(),
             "final_train_loss": sum(losses[-20:]) / len(losses[-20:]),
             "heldout_loss": held_loss, "heldout_perplexity": math.exp(held_loss),
             "unigram_heldout_loss": uni, "unigram_heldout_perplexity": math.exp(uni),
             "heldout_bytes": int(heldout[:, 1:].numel()), "train_bytes": int(len(stream)),
             "trained_tokens": recipe["steps"] * recipe["batch"] * recipe["block_size"]}
    return model.cpu(), stats


# ---------------------------------------------------------------------- cache
def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_atomic_bytes(path: Path, write: Callable[[str], None]) -> None:
    import tempfile
    from ..atomic import follow_umask
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        follow_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cache_paths(key: str) -> tuple[Path, Path]:
    base = cache_dir() / f"tiny-gpt-{key[:16]}"
    return base.with_suffix(".safetensors"), base.with_suffix(".json")


def _load_cached(recipe: dict, key: str) -> tuple[TinyGPT, dict] | str:
    """The cached model and its record, or why the cache cannot be used."""
    from safetensors.torch import load_file

    weights, record_path = cache_paths(key)
    if not record_path.is_file() or not weights.is_file():
        return "no cached model"
    try:
        record = json.loads(record_path.read_text())
        if record.get("recipe_sha256") != key or record.get("recipe") != recipe:
            return "the cached record belongs to another recipe"
        if record.get("weights_sha256") != _sha256_file(weights):
            return "the cached weights do not match their recorded sha256"
        model = TinyGPT(config_of(recipe))
        model.load_state_dict(load_file(str(weights)), strict=True)
    except Exception as exc:  # unreadable JSON, truncated safetensors, wrong shapes: rebuild
        return f"the cache entry is unreadable ({type(exc).__name__})"
    return model.eval(), record


def build_model(recipe: str = "full", device=None, use_cache: bool = True, force: bool = False,
                progress: bool = True) -> tuple[TinyGPT, dict]:
    """The trained model (on the CPU) and its record (recipe, key, paths, training stats, ``cached``)."""
    spec_recipe = resolve_recipe(recipe)
    key = recipe_key(spec_recipe)
    weights, record_path = cache_paths(key)
    if use_cache and not force:
        found = _load_cached(spec_recipe, key)
        if not isinstance(found, str):
            model, record = found
            return model, {**record, "cached": True, "path": str(weights)}
        why = found
    else:
        why = "rebuild forced" if force else "cache disabled"
    if progress:
        print(f"tiny-gpt: {why} for recipe {recipe!r} ({key[:16]}); training it "
              f"({spec_recipe['steps']} steps), then caching it in {weights.parent}", file=sys.stderr, flush=True)
    model, stats = train(spec_recipe, device=device, progress=progress)
    record = {"format": "geoshare-tiny-gpt", "recipe": spec_recipe, "recipe_sha256": key,
              "data_sha256": snapshot_sha256(), "torch": torch.__version__, **stats}
    if use_cache:
        try:
            from safetensors.torch import save_file
            weights.parent.mkdir(parents=True, exist_ok=True)
            state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
            _write_atomic_bytes(weights, lambda tmp: save_file(state, tmp))
            record["weights_sha256"] = _sha256_file(weights)
            _write_atomic_bytes(record_path, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2) + "\n"))
        except OSError as exc:  # an unwritable cache only costs a retrain next time
            if progress:
                print(f"tiny-gpt: could not write the cache ({exc}); continuing", file=sys.stderr, flush=True)
    return model, {**record, "cached": False, "path": str(weights)}


# ---------------------------------------------------------------------- spec
def kl_distill_loss(student: torch.Tensor, teacher: torch.Tensor, batch=None) -> torch.Tensor:
    """KL(teacher || student) between next-byte distributions, mean per token (float32)."""
    s = F.log_softmax(student.float().reshape(-1, student.shape[-1]), dim=-1)
    t = F.log_softmax(teacher.float().reshape(-1, teacher.shape[-1]), dim=-1)
    return F.kl_div(s, t, log_target=True, reduction="sum") / s.shape[0]


def make(n_calib: int = 256, seq_len: int | None = None, batch_size: int = 32, heldout_seqs: int = 256,
         seed: int = 0, recipe: str = "full", device=None, use_cache: bool = True, quiet: bool = False) -> ModelSpec:
    """``n_calib`` calibration windows of ``seq_len`` bytes (default: the model's context) in batches of
    ``batch_size``, shuffled by ``seed``; metrics on ``heldout_seqs`` packed held-out windows. ``recipe``: ``full``
    (the model of the study), ``deep48`` (the same with 48 blocks) or ``test`` (a narrow 24-block model for
    tests)."""
    spec_recipe = resolve_recipe(recipe)
    context = spec_recipe["block_size"]
    seq_len = context if seq_len is None else check_positive("seq_len", seq_len, 2)
    if seq_len > context:
        raise InputError(f"seq_len {seq_len} exceeds tiny-gpt's context of {context} bytes")
    n_calib = check_positive("n_calib", n_calib)
    batch_size = check_positive("batch_size", batch_size)
    heldout_seqs = check_positive("heldout_seqs", heldout_seqs)
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise InputError(f"seed must be an integer, got {seed!r}") from None
    calib = packed_windows(shuffled_stream("calib", seed), seq_len + 1, n_calib, "tiny-gpt calibration")
    heldout = packed_windows(byte_stream("heldout"), seq_len + 1, heldout_seqs, "tiny-gpt held-out")

    model, record = build_model(recipe, device=device, use_cache=use_cache, progress=not quiet)
    model.to(device).eval()
    calib_batches = [calib[i:i + batch_size].to(device) for i in range(0, len(calib), batch_size)]
    heldout_batches = [heldout[i:i + batch_size].to(device) for i in range(0, len(heldout), batch_size)]

    def outputs(net, batch):
        return net(batch[:, :-1])

    def output_loss(logits, batch):
        return next_byte_loss(logits, batch[:, 1:])

    def loss(net, batch):
        return output_loss(outputs(net, batch), batch)

    @torch.no_grad()
    def metrics(net) -> dict[str, float]:
        with eval_mode(net):
            param = next(net.parameters())
            total = count = 0.0
            for batch in heldout_batches:
                batch = move_batch(batch, param.device)
                total += float(next_byte_loss(net(batch[:, :-1]).float(), batch[:, 1:], reduction="sum"))
                count += batch[:, 1:].numel()
        held = total / count
        return {"heldout_perplexity": math.exp(held), "heldout_loss": held}

    meta = {"model": "tiny-gpt (byte-level GPT, pre-LN, math attention)", "recipe": record["recipe"],
            "recipe_sha256": record["recipe_sha256"], "weights": record["path"], "cached": record["cached"],
            "train_time_s": record.get("train_time_s"),
            "trained_heldout_perplexity": record.get("heldout_perplexity"),
            "unigram_heldout_perplexity": record.get("unigram_heldout_perplexity"),
            "data": "stdlib prose snapshot (geoshare_opt/data/stdlib_prose.txt.gz)", "data_sha256": snapshot_sha256(),
            "split": "train + calibration = calib split; metrics = heldout split (never trained on)",
            "loss": "next-byte cross-entropy (nats per byte)", "seed": seed, "seq_len": seq_len, "n_calib": n_calib,
            "batch_size": batch_size, "heldout_seqs": heldout_seqs}
    return ModelSpec(name="tiny-gpt", model=model, batches=lambda: iter(calib_batches), loss=loss, metrics=metrics,
                     heldout=lambda: iter(heldout_batches), meta=meta, outputs=outputs, output_loss=output_loss,
                     distill_loss=kl_distill_loss, refine_score="distill")
