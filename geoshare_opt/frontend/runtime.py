"""What every curvature pass shares: the working copy of the model, evaluation mode, streamed batches, calls into
the user's code, and the translation of known failures (out of memory, fused attention, non-finite loss) into one-line
``InputError``s."""
from __future__ import annotations

import contextlib
import copy
import hashlib
import operator
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch

from ..errors import InputError
from ..specs.base import ModelSpec, move_batch
from .parallel import SERIAL, Shard


class FusedAttentionError(InputError):
    """A fused attention kernel was hit during a pass that differentiates twice."""


def resolve_device(device: str | torch.device | None, model: torch.nn.Module) -> torch.device:
    if device is None:
        p = next(model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"device {device!r} is not a valid torch device (use cpu or cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but no CUDA GPU is available (use --device cpu)")
    return dev


DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float64": torch.float64, "fp64": torch.float64,
          "bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}


def resolve_dtype(dtype: str | torch.dtype | None, model: torch.nn.Module) -> torch.dtype:
    if dtype is None:
        p = next(model.parameters(), None)
        return p.dtype if p is not None else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise InputError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def working_model(model: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """The model itself when it already lives on ``device`` in ``dtype`` (nothing is modified), else a copy there:
    the caller's network is never moved or cast."""
    same = all(p.device == device and (not p.is_floating_point() or p.dtype == dtype) for p in model.parameters())
    if same:
        return model
    return copy.deepcopy(model).to(device=device, dtype=dtype)


@contextlib.contextmanager
def evaluation(model: torch.nn.Module):
    """Eval mode for the pass (dropout and batch-norm statistics off), each module's own mode restored after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode


@contextlib.contextmanager
def math_attention():
    """Scaled-dot-product attention through the math kernel: the fused kernels cannot be differentiated twice."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # older torch: nothing to select
        yield
        return
    with sdpa_kernel(SDPBackend.MATH):
        yield


def batch_size_of(batch: Any) -> int:
    """The leading dimension of the first tensor in the batch (1 when there is none)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() > 0 else 1
    if isinstance(batch, dict):
        for v in batch.values():
            n = batch_size_of(v)
            if n:
                return n
        return 1
    if isinstance(batch, (list, tuple)):
        for v in batch:
            n = batch_size_of(v)
            if n:
                return n
        return 1
    return 1


def truncate_batch(batch: Any, n: int, full: int) -> Any:
    """The first ``n`` examples of a batch of ``full`` (tensors whose leading dimension is ``full`` are sliced)."""
    if isinstance(batch, torch.Tensor):
        return batch[:n] if batch.dim() > 0 and batch.shape[0] == full else batch
    if isinstance(batch, dict):
        return {k: truncate_batch(v, n, full) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(truncate_batch(v, n, full) for v in batch)
    return batch


@dataclass
class Calibration:
    """Streams the spec's calibration batches onto the device, limited to ``samples`` examples; in a data-parallel
    run only the batches of this rank's ``shard`` (every rank reads the whole source, so that ``samples`` cuts it at
    the same place everywhere, and moves only its own batches)."""
    spec: ModelSpec
    device: torch.device
    dtype: torch.dtype
    samples: int | None = None
    n_batches: int | None = None     # over all ranks; known after the first full pass (or from a length hint)
    n_examples: int | None = None
    shard: Shard = SERIAL

    def __iter__(self) -> Iterator[tuple[int, Any, int]]:
        """Yields ``(index, batch on device, number of examples)``; ``index`` counts the batches of every rank."""
        seen = 0
        count = 0
        try:
            source = iter(self.spec.batches())
        except Exception as exc:
            raise InputError(f"spec batches could not be iterated: {type(exc).__name__}: {exc}") from None
        if self.n_batches is None:  # an upper bound when samples cuts the data short
            self.n_batches = operator.length_hint(source, 0) or None
        while True:
            if self.samples is not None and seen >= self.samples:
                break
            try:
                batch = next(source)
            except StopIteration:
                break
            except Exception as exc:
                raise InputError(f"spec batches failed at batch {count}: {type(exc).__name__}: {exc}") from None
            n = batch_size_of(batch)
            if self.samples is not None and seen + n > self.samples:
                batch = truncate_batch(batch, self.samples - seen, n)
                n = self.samples - seen
            if self.shard.owns(count):
                yield count, move_batch(batch, self.device, self.dtype), n
            seen += n
            count += 1
        if count == 0:
            raise InputError("the spec yielded no calibration batches")
        self.n_batches, self.n_examples = count, seen


def call_user(fn: Callable, *args, what: str):
    """Call the spec's code; its failures are the user's input errors, named."""
    try:
        return fn(*args)
    except (InputError, torch.OutOfMemoryError):
        raise
    except RuntimeError as exc:
        if is_fused_attention_error(exc) or is_oom(exc):
            raise
        raise InputError(f"spec {what} failed: {type(exc).__name__}: {_first_line(exc)}") from None
    except Exception as exc:
        raise InputError(f"spec {what} failed: {type(exc).__name__}: {_first_line(exc)}") from None


def checked_loss(value: Any, index: int) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise InputError(f"spec loss must return a scalar tensor, got {type(value).__name__}"
                         + (f" of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else ""))
    if not value.requires_grad:
        raise InputError("spec loss does not depend on the model's parameters (no gradient); did it run under "
                         "torch.no_grad() or detach the output?")
    if not bool(torch.isfinite(value.detach())):
        raise InputError(f"the loss is not finite ({float(value.detach())}) on calibration batch {index}")
    return value.reshape(())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and ("out of memory" in str(exc) or "can't allocate memory" in str(exc)))


def is_fused_attention_error(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        ("derivative for" in text and "attention" in text) or "_scaled_dot_product" in text
        or "flash_attention" in text or "efficient_attention" in text)


@contextlib.contextmanager
def translated_errors(step: str, device: torch.device, lower: str = "--samples or the batch size / --seq-len"):
    """Known failures of a pass as one-line input errors that say what to change."""
    try:
        yield
    except InputError:
        raise
    except RuntimeError as exc:  # OutOfMemoryError is a RuntimeError
        if is_oom(exc):
            if device.type == "cuda":
                torch.cuda.empty_cache()
            raise InputError(f"out of memory on {device} during {step}: lower {lower}, or use --dtype bfloat16") \
                from None
        if is_fused_attention_error(exc):
            raise FusedAttentionError(
                f"{step}: a fused attention kernel cannot be differentiated twice ({_first_line(exc)[:120]}); run "
                "attention through the math path (e.g. attn_implementation='eager' for Hugging Face models, or "
                "F.scaled_dot_product_attention without a forced fused backend), or use --estimator diag/kfac") \
                from None
        raise


def rademacher(shape, generator: torch.Generator, device, dtype) -> torch.Tensor:
    return (torch.randint(0, 2, shape, generator=generator, device=device).to(dtype) * 2 - 1)


def make_generator(device: torch.device, seed: int, *key) -> torch.Generator:
    """A generator on ``device`` seeded by ``seed`` alone, or by ``seed`` and a ``key`` (``("noise", batch_index)``):
    each key is its own stream, so what a batch draws does not depend on which batches came before it."""
    if not key:
        return torch.Generator(device=device).manual_seed(int(seed))
    digest = hashlib.blake2b(repr((int(seed),) + tuple(key)).encode(), digest_size=8).digest()
    return torch.Generator(device=device).manual_seed(int.from_bytes(digest, "little"))


def relative_spread(values: list[float]) -> float:
    """Relative standard deviation of per-batch estimates (0 for fewer than two)."""
    if len(values) < 2:
        return 0.0
    t = torch.tensor(values, dtype=torch.float64)
    mean = t.mean().abs()
    return float(t.std() / mean) if mean > 0 else 0.0
