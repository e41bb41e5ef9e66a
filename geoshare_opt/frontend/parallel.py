"""Data parallelism for the curvature passes on ``torch.distributed``.

Under ``torchrun`` (or any launcher that sets ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT``), each process
(rank) takes its share of the calibration batches — batch ``i`` goes to rank ``i mod world_size``, a split that
needs no length of the data in advance and gives every rank the same number of batches ±1 — and the per-tensor sums of
every pass (diagonal curvature, gradient, K-FAC factors and token counts, each Lanczos Hessian-vector product) are
added up across ranks by all-reduce before they are normalised. Every rank then holds the curvature of the whole
calibration set; rank 0 writes. Random probes are drawn from per-batch streams (``PassContext.stream``), so a batch
contributes the same numbers whichever rank takes it: a data-parallel run differs from the single process only by the
order of the floating-point sums.

gloo carries CPU tensors, NCCL CUDA tensors (one GPU per rank, ``cuda:LOCAL_RANK``). ``SERIAL`` (world size 1) makes
every collective a no-op, so the single-process path runs the same code without ``torch.distributed``.
"""
from __future__ import annotations

import atexit
import datetime
import os
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from ..errors import InputError

BUCKET_BYTES = 64 << 20        # tensors are all-reduced in flat buckets of at most this size (fewer, larger messages)
LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
SPLIT = "round-robin: calibration batch i on rank i mod world_size"


@dataclass(frozen=True)
class Shard:
    """This process's place in the job: which batches it takes and how its sums reach the others."""
    rank: int = 0
    world_size: int = 1
    backend: str | None = None

    def owns(self, batch_index: int) -> bool:
        return batch_index % self.world_size == self.rank

    @property
    def parallel(self) -> bool:
        return self.world_size > 1

    def sum_(self, tensors: Sequence[torch.Tensor]) -> None:
        """All-reduce (sum) each tensor in place, in flat buckets of one dtype and device."""
        if not self.parallel:
            return
        import torch.distributed as dist
        groups: dict[tuple, list[torch.Tensor]] = {}
        for t in tensors:
            groups.setdefault((t.dtype, t.device), []).append(t)
        for same in groups.values():
            for bucket in _buckets(same):
                flat = torch.cat([t.reshape(-1) for t in bucket])
                dist.all_reduce(flat)
                for t, part in zip(bucket, torch.split(flat, [t.numel() for t in bucket])):
                    t.copy_(part.view_as(t))

    def broadcast_(self, tensors: Sequence[torch.Tensor]) -> None:
        """Rank 0's values of each tensor, in place on every rank."""
        if not self.parallel:
            return
        import torch.distributed as dist
        for t in tensors:
            dist.broadcast(t, src=0)

    def sum_numbers(self, values: Sequence[float]) -> list[float]:
        """Element-wise sums of a list of numbers over ranks (in float64)."""
        if not self.parallel:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)
        self.sum_([t])
        return t.tolist()

    def sum_named(self, named: dict[str, torch.Tensor], shapes: dict[str, tuple[int, ...]],
                  dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
        """All-reduce a dict of accumulators that a rank may lack some of (a layer its batches never reached): every
        rank takes part with zeros for its missing names, and a name is in the answer when any rank had it."""
        if not self.parallel:
            return named
        names = list(shapes)
        present = self.sum_numbers([1.0 if n in named else 0.0 for n in names])
        full = {n: named[n] if n in named else torch.zeros(shapes[n], dtype=dtype, device=device) for n in names}
        self.sum_(list(full.values()))
        return {n: full[n] for n, seen in zip(names, present) if seen > 0}

    def in_batch_order(self, indexed: Sequence[tuple[int, float]]) -> list[float]:
        """Per-batch values of every rank, ordered by batch index (as the single process would list them)."""
        if not self.parallel:
            return [v for _, v in sorted(indexed)]
        return [v for _, v in sorted(pair for part in self.gather(list(indexed)) for pair in part)]

    def gather(self, obj) -> list:
        """Every rank's ``obj`` (picklable), in rank order."""
        if not self.parallel:
            return [obj]
        import torch.distributed as dist
        out: list = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    @property
    def local_processes(self) -> int:
        """Ranks on this node (they share its memory): the launcher's ``LOCAL_WORLD_SIZE``."""
        if not self.parallel:
            return 1
        return int(os.environ.get("LOCAL_WORLD_SIZE", self.world_size))

    @property
    def device(self) -> torch.device:
        """Where this backend's collectives run (NCCL needs this rank's GPU)."""
        if self.backend == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def describe(self) -> dict:
        """``meta.distributed`` of the instance."""
        return {"world_size": self.world_size, "backend": self.backend, "split": SPLIT}


SERIAL = Shard()


def _buckets(tensors: Sequence[torch.Tensor]) -> Iterator[list[torch.Tensor]]:
    bucket: list[torch.Tensor] = []
    size = 0
    for t in tensors:
        nbytes = t.numel() * t.element_size()
        if bucket and size + nbytes > BUCKET_BYTES:
            yield bucket
            bucket, size = [], 0
        bucket.append(t)
        size += nbytes
    if bucket:
        yield bucket


def launched() -> bool:
    """Whether a launcher (torchrun, or one that sets the same variables) started this process as one rank."""
    return all(v in os.environ for v in LAUNCH_VARIABLES)


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def rank_device(device: torch.device) -> torch.device:
    """One GPU per rank: a bare ``cuda`` becomes ``cuda:LOCAL_RANK``."""
    if device.type != "cuda" or device.index is not None:
        return device
    index = int(os.environ.get("LOCAL_RANK", "0"))
    if index >= torch.cuda.device_count():
        raise InputError(f"LOCAL_RANK {index} but only {torch.cuda.device_count()} CUDA device(s) on this node: "
                         "start at most one process per GPU (torchrun --nproc-per-node)")
    return torch.device("cuda", index)


def joined(device: torch.device, timeout_s: float = 1800.0) -> Shard:
    """This process's ``Shard`` in the default process group: the caller's group when one is initialised, else one
    joined now from the launcher's environment (``env://``; gloo for a CPU device, NCCL for CUDA). A group joined
    here stays for the next call (joining again after leaving is not reliable with gloo) and is left at exit."""
    import torch.distributed as dist
    if not dist.is_available():
        raise InputError("this torch build has no torch.distributed: run analyze as a single process")
    if not dist.is_initialized():
        missing = [v for v in LAUNCH_VARIABLES if v not in os.environ]
        if missing:
            raise InputError(f"a distributed analyze needs {', '.join(missing)} in the environment: launch it with "
                             "torchrun (see docs/distributed.md)")
        if device.type == "cuda":
            torch.cuda.set_device(device)
        try:
            dist.init_process_group(backend_for(device), init_method="env://",
                                    timeout=datetime.timedelta(seconds=timeout_s))
        except (RuntimeError, ValueError) as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"cannot join the process group at {os.environ['MASTER_ADDR']}:"
                             f"{os.environ['MASTER_PORT']}: {text}") from None
        atexit.register(_leave)
    backend = str(dist.get_backend())
    if backend == "nccl" and device.type != "cuda":
        raise InputError("the process group uses NCCL, which carries CUDA tensors only: analyze with --device cuda, "
                         "or start the group with gloo")
    return Shard(rank=dist.get_rank(), world_size=dist.get_world_size(), backend=backend)


def _leave() -> None:
    import torch.distributed as dist
    if dist.is_initialized():
        dist.destroy_process_group()
