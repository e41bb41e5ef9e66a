"""Specs from a Hugging Face model directory (``geoshare-opt analyze path/to/model``), when transformers is installed.

The model is loaded offline with ``AutoModel`` (the base model, no task head) and eager attention, because fused
attention kernels cannot be differentiated twice. Calibration, loss and metrics are those of ``prose_distill.py``:
distillation of the last hidden states to the original's on the stdlib prose snapshot.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .base import ModelSpec
from .prose_distill import TokenCodec, build_distill_spec


def _require_transformers():
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise InputError("a Hugging Face model directory needs the transformers package (pip install transformers)") \
            from None
    return transformers


def hf_codec(tokenizer) -> TokenCodec:
    """Ids without specials, and the tokenizer's own special-token wrapping (e.g. [CLS] .. [SEP] for BERT)."""
    n_special = tokenizer.num_special_tokens_to_add(pair=False)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)

    def ids(texts: list[str]) -> list[list[int]]:
        return tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    return TokenCodec(ids=ids, wrap=lambda body: tokenizer.build_inputs_with_special_tokens(list(body)),
                      n_special=n_special, pad_id=pad_id)


def forward(model, batch):
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state


def make_from_directory(path, n_calib: int = 256, seq_len: int = 128, batch_size: int = 32, n_heldout: int = 256,
                        heldout_seqs: int = 64, seed: int = 0, device=None) -> ModelSpec:
    """``local_files_only``: the directory is the model, the hub is never contacted."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise InputError(f"{path}: not a Hugging Face model directory (no config.json)")
    transformers = _require_transformers()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True,
                                                       attn_implementation="eager")
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise InputError(f"{path}: cannot load with transformers: {type(exc).__name__}: {first_line}") from None
    max_len = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None) \
        or tokenizer.model_max_length
    meta = {"model": str(path.resolve()), "library": f"transformers {transformers.__version__}",
            "architecture": type(model).__name__, "attention": "eager"}
    return build_distill_spec(path.name, model, forward, hf_codec(tokenizer), n_calib=n_calib, seq_len=seq_len,
                              batch_size=batch_size, n_heldout=n_heldout, heldout_seqs=heldout_seqs, seed=seed,
                              device=device, max_len=int(max_len), meta=meta)
