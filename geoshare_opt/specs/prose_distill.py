"""A label-free spec for any text encoder: distillation to its own outputs on the stdlib prose snapshot.

Calibration data: calibration-split paragraphs, shuffled by ``seed``, tokenised and packed end to end into full
windows of ``seq_len`` tokens (special tokens included), so every calibration token is real text and no compute goes
to padding; and, interleaved with them, short texts (halves of calibration paragraphs, padded, grouped by length),
the form the embedding metrics score: on windows alone the loss ranked near colourings against the held-out
embedding cosine (docs/measured.md). Each batch is ``{"input_ids", "attention_mask", "teacher"}`` where ``teacher``
holds the original model's last hidden states for that batch, computed once in ``make`` so the loss needs no second
model.

Loss (the choice, and why): what the metrics reward (the spec contract), the cosine distillation
``embedding_distill_loss``: 1 − cosine to the teacher's hidden state per real token plus 1 − cosine of the mean-pooled
window embeddings. The metrics compare normalised mean-pooled embeddings, which ignore scale; the mean squared error of
raw hidden states is dominated by a few large-magnitude dimensions that the cosine ignores, and optimising it harder
made the embedding cosine worse (docs/measured.md: over 26 colourings of MiniLM at 50 % the calibration cosine loss
ranks the held-out embedding cosine with Spearman −0.95). Recovery (``distill_loss``) trains on the same function.

Curvature (``outputs``/``output_loss``): the masked MSE of the last hidden states, whose Hessian in the outputs is the
constant ``2/(tokens*hidden)`` on real tokens, so the front end's Gauss-Newton curvature is ``diag(JᵀJ)``: how much
each weight moves the hidden states. It weights the tie merge and the pair weights. The Gauss-Newton curvature of the
cosine loss was measured as a merge weight too and made every merge worse (MiniLM, 50 %: sandwich 0.53 → 0.38
embedding cosine; docs/measured.md), so ``output_loss`` is the curvature metric and ``loss`` the objective; both are
zero, with a zero gradient, at the original weights.

Metrics on held-out prose, computed on a copy in one forward pass over cached inputs:
``embedding_cosine`` (mean cosine between the model's and the original's sentence embeddings of held-out
half-paragraphs; 1.0 = perfect fidelity), ``retrieval_top1`` / ``retrieval_mrr`` (each paragraph's first half must
retrieve its own second half among all held-out second halves, by cosine of the model's own embeddings) and
``heldout_loss`` (the spec's loss on packed held-out windows; lower is better).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..data import load_paragraphs, snapshot_sha256
from ..errors import InputError
from .base import ModelSpec, eval_mode, move_batch

MIN_RETRIEVAL_WORDS = 16
EMBED_BATCH = 64


@dataclass(frozen=True)
class TokenCodec:
    """How a tokenizer turns text into ids: ``ids`` (no special tokens) and ``wrap`` (adds them)."""
    ids: Callable[[list[str]], list[list[int]]]
    wrap: Callable[[list[int]], list[int]]
    n_special: int
    pad_id: int


def check_positive(name: str, value, minimum: int = 1) -> int:
    """An integer option (CLI options may arrive as strings) that is at least ``minimum``."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}") from None
    if number < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return number


def check_options(n_calib, seq_len, batch_size, n_heldout, heldout_seqs, seed, *, n_special: int,
                  max_len: int) -> tuple[int, int, int, int, int, int]:
    """The spec's options as integers, or a one-line InputError (checked before any expensive loading)."""
    seq_len = check_positive("seq_len", seq_len, n_special + 1)
    if seq_len > max_len:
        raise InputError(f"seq_len {seq_len} exceeds the model's maximum of {max_len} tokens")
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise InputError(f"seed must be an integer, got {seed!r}") from None
    return (check_positive("n_calib", n_calib), seq_len, check_positive("batch_size", batch_size),
            check_positive("n_heldout", n_heldout, 2), check_positive("heldout_seqs", heldout_seqs), seed)


def pack_windows(paragraphs: list[str], codec: TokenCodec, seq_len: int, n_seqs: int, what: str) -> torch.Tensor:
    """``n_seqs`` windows of exactly ``seq_len`` tokens cut from the concatenated paragraphs."""
    body = seq_len - codec.n_special
    needed = body * n_seqs
    stream: list[int] = []
    chunk = 256
    for start in range(0, len(paragraphs), chunk):
        for ids in codec.ids(paragraphs[start:start + chunk]):
            stream.extend(ids)
        if len(stream) >= needed:
            break
    if len(stream) < needed:
        raise InputError(f"{what}: the prose snapshot has {len(stream)} tokens, too few for {n_seqs} sequences of "
                         f"{seq_len} tokens; lower the number of sequences or seq_len")
    return torch.tensor([codec.wrap(stream[i * body:(i + 1) * body]) for i in range(n_seqs)], dtype=torch.long)


def encode_padded(texts: list[str], codec: TokenCodec, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    seqs = [codec.wrap(ids[: max_len - codec.n_special]) for ids in codec.ids(texts)]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), codec.pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def embedding_batches(texts: list[str], codec: TokenCodec, max_len: int, device) -> tuple[list[dict], torch.Tensor]:
    """Texts in batches grouped by length (little padding) and the permutation that restores their order."""
    lengths = [len(ids) for ids in codec.ids(texts)]
    order = sorted(range(len(texts)), key=lambda i: (lengths[i], i))
    batches = []
    for start in range(0, len(order), EMBED_BATCH):
        ids, mask = encode_padded([texts[i] for i in order[start:start + EMBED_BATCH]], codec, max_len)
        batches.append({"input_ids": ids.to(device), "attention_mask": mask.to(device)})
    return batches, torch.tensor(order).argsort()


def on_device_of(net: torch.nn.Module, batches: list):
    """The batches on the network's device (a compressed copy may live elsewhere than the spec's data)."""
    param = next(net.parameters(), None)
    for batch in batches:
        yield batch if param is None else move_batch(batch, param.device)


def hidden_mse(hidden: torch.Tensor, batch: dict) -> torch.Tensor:
    """Masked mean squared error to the teacher's hidden states, per real token and hidden unit: the spec's
    ``output_loss``, whose Gauss-Newton curvature weights the merge (not its objective, see the module docstring)."""
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    diff = (hidden - batch["teacher"].to(hidden.dtype)) * mask
    return diff.pow(2).sum() / (mask.sum() * hidden.shape[-1])


def embedding_distill_loss(student: torch.Tensor, teacher: torch.Tensor, batch: dict) -> torch.Tensor:
    """The spec's loss and recovery objective (``ModelSpec.distill_loss``): 1 − cosine to the teacher per real token
    plus 1 − cosine of the mean-pooled window embeddings. The metrics compare normalised mean-pooled embeddings, which ignore scale;
    MSE spends a short recovery on hidden-state norms instead (benchmarks/compression/recovery/objective_check.py:
    at 50 % sharing, cosine after 12 steps 0.34 with MSE vs 0.56 with this loss)."""
    mask = batch["attention_mask"].to(student.dtype)
    teacher = teacher.to(student.dtype)
    per_token = ((1 - F.cosine_similarity(student, teacher, dim=-1)) * mask).sum() / mask.sum()
    pooled = lambda h: (h * mask.unsqueeze(-1)).sum(1)
    return per_token + (1 - F.cosine_similarity(pooled(student), pooled(teacher), dim=-1)).mean()


def distill_meta(meta: dict, **sizes) -> dict:
    """The spec's provenance: the caller's ``meta``, the objectives, the data and its sizes."""
    return {**meta,
            "loss": "1 - cosine per token + 1 - cosine of mean-pooled windows, to the original model's states",
            "curvature_loss": "masked MSE between last hidden states and the original model's (per token and unit)",
            "recovery_loss": "the loss",
            "data": "stdlib prose snapshot (geoshare_opt/data/stdlib_prose.txt.gz)", "data_sha256": snapshot_sha256(),
            "split": "calib = sha256(paragraph)[:8] mod 100 < 80, heldout otherwise", **sizes}


def split_halves(paragraph: str) -> tuple[str, str]:
    words = paragraph.split()
    mid = len(words) // 2
    return " ".join(words[:mid]), " ".join(words[mid:])


def retrieval_scores(queries: torch.Tensor, docs: torch.Tensor) -> tuple[float, float]:
    """Top-1 accuracy and mean reciprocal rank of query i retrieving doc i (ties count against)."""
    sims = queries @ docs.T
    rank = (sims >= sims.diagonal().unsqueeze(1)).sum(1)  # the true doc itself counts once
    return float((rank == 1).double().mean()), float((1.0 / rank.double()).mean())


def _prose_data(name: str, codec: TokenCodec, seq_len: int, n_calib: int, heldout_seqs: int, n_heldout: int,
                seed: int, calib_texts: int):
    """(calibration windows, calibration texts, held-out windows, the (query, document) halves of the retrieval
    paragraphs). The calibration texts are halves of calibration paragraphs, the form the metrics embed."""
    calib_paragraphs = load_paragraphs("calib")
    random.Random(seed).shuffle(calib_paragraphs)
    calib_ids = pack_windows(calib_paragraphs, codec, seq_len, n_calib, name)
    long_enough = [p for p in calib_paragraphs if len(p.split()) >= MIN_RETRIEVAL_WORDS]
    random.Random(seed + 2).shuffle(long_enough)
    texts = [h for p in long_enough[:(calib_texts + 1) // 2] for h in split_halves(p)][:calib_texts]
    heldout_paragraphs = load_paragraphs("heldout")
    heldout_ids = pack_windows(heldout_paragraphs, codec, seq_len, heldout_seqs, f"{name} held-out")
    candidates = [p for p in heldout_paragraphs if len(p.split()) >= MIN_RETRIEVAL_WORDS]
    if len(candidates) < n_heldout:
        raise InputError(f"n_heldout {n_heldout}: only {len(candidates)} held-out paragraphs are long enough")
    retrieval = random.Random(seed + 1).sample(candidates, n_heldout)
    return calib_ids, texts, heldout_ids, [split_halves(p) for p in retrieval]


@torch.no_grad()
def _texts_with_teacher(model: torch.nn.Module, forward: Callable, texts: list[str], codec: TokenCodec, seq_len: int,
                        device) -> list[dict]:
    """Padded batches of short texts (grouped by length) with the original model's last hidden states."""
    batches, _ = embedding_batches(texts, codec, seq_len, device) if texts else ([], None)
    for batch in batches:
        batch["teacher"] = forward(model, batch).detach()
    return batches


def interleave(first: list, second: list) -> list:
    """The two lists merged in proportion (``w t t w t t`` for 2 and 4 items), so that any evenly spread subset of
    the calibration batches holds both kinds."""
    n = len(first) + len(second)
    out, i, j = [], 0, 0
    for k in range(n):
        if j >= len(second) or (i < len(first) and i * n <= k * len(first)):
            out.append(first[i])
            i += 1
        else:
            out.append(second[j])
            j += 1
    return out


@torch.no_grad()
def _with_teacher(model: torch.nn.Module, forward: Callable, ids: torch.Tensor, batch_size: int, device) -> list[dict]:
    """Batches of ``ids`` with the original model's last hidden states under ``"teacher"``."""
    out = []
    for start in range(0, ids.shape[0], batch_size):
        chunk = ids[start:start + batch_size].to(device)
        batch = {"input_ids": chunk, "attention_mask": torch.ones_like(chunk)}
        batch["teacher"] = forward(model, batch).detach()
        out.append(batch)
    return out


def build_distill_spec(name: str, model: torch.nn.Module, forward: Callable, codec: TokenCodec, *, n_calib: int,
                       seq_len: int, batch_size: int, n_heldout: int, heldout_seqs: int, seed: int, device,
                       max_len: int, meta: dict, fast_forward: Callable | None = None,
                       calib_texts: int | None = None) -> ModelSpec:
    """``forward(model, batch) -> last hidden states``; ``fast_forward`` (same result, e.g. fused attention) is used
    for evaluation-only passes in ``metrics``. The calibration batches are ``n_calib`` packed windows and
    ``calib_texts`` short texts (default ``min(256, 2 * n_calib)``), interleaved."""
    n_calib, seq_len, batch_size, n_heldout, heldout_seqs, seed = check_options(
        n_calib, seq_len, batch_size, n_heldout, heldout_seqs, seed, n_special=codec.n_special, max_len=max_len)
    calib_texts = min(256, 2 * n_calib) if calib_texts is None else check_positive("calib_texts", calib_texts, 0)
    fast_forward = fast_forward or forward

    calib_ids, texts, heldout_ids, halves = _prose_data(name, codec, seq_len, n_calib, heldout_seqs, n_heldout, seed,
                                                        calib_texts)
    model.to(device).eval()
    calib_batches = interleave(_with_teacher(model, forward, calib_ids, batch_size, device),
                               _texts_with_teacher(model, forward, texts, codec, seq_len, device))
    heldout_batches = _with_teacher(model, forward, heldout_ids, batch_size, device)
    query_batches, query_order = embedding_batches([q for q, _ in halves], codec, seq_len, device)
    doc_batches, doc_order = embedding_batches([d for _, d in halves], codec, seq_len, device)

    @torch.no_grad()
    def embed(net, batches, order):
        from .bert import sentence_embedding
        parts = [sentence_embedding(fast_forward(net, b).float(), b["attention_mask"])
                 for b in on_device_of(net, batches)]
        return torch.cat(parts)[order.to(parts[0].device)]

    teacher_q, teacher_d = embed(model, query_batches, query_order), embed(model, doc_batches, doc_order)
    teacher_top1, teacher_mrr = retrieval_scores(teacher_q, teacher_d)

    def outputs(net, batch):
        return forward(net, batch)

    def loss(net, batch):
        # without gradients (measuring colourings) the fused attention kernel gives the same states faster
        hidden = forward(net, batch) if torch.is_grad_enabled() else fast_forward(net, batch)
        return embedding_distill_loss(hidden, batch["teacher"], batch)

    @torch.no_grad()
    def metrics(net) -> dict[str, float]:
        with eval_mode(net):
            q, d = embed(net, query_batches, query_order), embed(net, doc_batches, doc_order)
            windows = total = 0.0
            for b in on_device_of(net, heldout_batches):
                n = float(b["attention_mask"].shape[0])
                total += float(embedding_distill_loss(fast_forward(net, b).float(), b["teacher"], b)) * n
                windows += n
        top1, mrr = retrieval_scores(q, d)
        cosine = 0.5 * float((q * teacher_q.to(q.device)).sum(-1).mean() + (d * teacher_d.to(d.device)).sum(-1).mean())
        return {"embedding_cosine": cosine, "retrieval_top1": top1, "retrieval_mrr": mrr,
                "heldout_loss": total / windows}

    meta = distill_meta(meta, seed=seed, seq_len=seq_len, n_calib=n_calib, calib_texts=len(texts),
                        batch_size=batch_size, calib_tokens=int(calib_ids.numel()), heldout_seqs=heldout_seqs,
                        n_heldout=n_heldout,
                        original_retrieval_top1=teacher_top1, original_retrieval_mrr=teacher_mrr)
    return ModelSpec(name=name, model=model, batches=lambda: iter(calib_batches), loss=loss, metrics=metrics,
                     heldout=lambda: iter(heldout_batches), meta=meta, outputs=outputs, output_loss=hidden_mse,
                     distill_loss=embedding_distill_loss)
