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


def special_wrapping(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after one sequence (BERT: [CLS] / [SEP]; MPNet: <s> / </s>;
    GPT-2: none), read off a probe text encoded with and without them. This asks only for the calling interface
    every transformers version has (4.x and 5.x alike; 5.x dropped ``build_inputs_with_special_tokens``)."""
    probe = "geoshare probe text"
    bare = list(tokenizer(probe, add_special_tokens=False)["input_ids"])
    full = list(tokenizer(probe, add_special_tokens=True)["input_ids"])
    for start in range(len(full) - len(bare) + 1):
        if full[start:start + len(bare)] == bare:
            return full[:start], full[start + len(bare):]
    raise InputError(f"{type(tokenizer).__name__}: cannot tell its special tokens apart from the text (the encoding "
                     "with special tokens does not contain the one without)")


def hf_codec(tokenizer) -> TokenCodec:
    """Ids without specials, and the tokenizer's own special-token wrapping (e.g. [CLS] .. [SEP] for BERT)."""
    before, after = special_wrapping(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)

    def ids(texts: list[str]) -> list[list[int]]:
        return [list(x) for x in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    return TokenCodec(ids=ids, wrap=lambda body: before + list(body) + after, n_special=len(before) + len(after),
                      pad_id=pad_id)


def max_tokens(model, tokenizer) -> int:
    """The longest sequence the model takes: its position table, less the offset of models that number positions
    after the padding index (RoBERTa, MPNet), and no more than the tokenizer's own maximum."""
    config = model.config
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if positions is None:
        return int(tokenizer.model_max_length)
    padding_idx = getattr(getattr(model, "embeddings", None), "padding_idx", None)
    if padding_idx is not None:
        positions -= padding_idx + 1
    return int(min(positions, tokenizer.model_max_length))


def forward(model, batch):
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state


def load_directory(path: Path):
    """``(tokenizer, base model)`` from a model directory, offline, with eager attention and without transformers'
    own progress bars (the command line shows its own progress)."""
    transformers = _require_transformers()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()
    what = "its tokenizer (text models only: the calibration data is text)"
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        what = "the model"
        model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True,
                                                       attn_implementation="eager")
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise InputError(f"{path}: cannot load {what} with transformers: {type(exc).__name__}: "
                         f"{first_line}") from None
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()
    if getattr(model.config, "is_encoder_decoder", False):   # its forward needs decoder inputs too
        raise InputError(f"{path}: {type(model).__name__} is an encoder-decoder model; Hugging Face directories "
                         "are supported for encoders (BERT, MPNet, ...) and decoders (GPT-2, LLaMA, ...)")
    return tokenizer, model


# The sizes of a Hugging Face directory's spec scale with the model so that analyze and the pipeline cost about
# what minilm costs at its pipeline sizes (22.7M parameters, 128 calibration windows of 128 tokens, batches of 32,
# 32 held-out windows; ``pipeline minilm`` runs in 2-3 minutes on 2 cores): compute and activation memory grow with
# parameters x tokens, so a model k times larger gets about 1/k of the windows and of the batch, within the bounds.
REFERENCE_PARAMS = 22_700_000
REFERENCE_SIZES = {"n_calib": 128, "batch_size": 32, "n_heldout": 256, "heldout_seqs": 32}
SIZE_BOUNDS = {"n_calib": (32, 256), "batch_size": (4, 32), "n_heldout": (64, 256), "heldout_seqs": (8, 64)}


def default_sizes(n_params: int) -> dict[str, int]:
    """Calibration and held-out sizes for a model of ``n_params`` parameters (see ``REFERENCE_SIZES``)."""
    scale = REFERENCE_PARAMS / max(int(n_params), 1)
    out = {}
    for key, value in REFERENCE_SIZES.items():
        lo, hi = SIZE_BOUNDS[key]
        out[key] = int(min(hi, max(lo, round(value * scale))))
    return out


def make_from_directory(path, n_calib: int | None = None, seq_len: int = 128, batch_size: int | None = None,
                        n_heldout: int | None = None, heldout_seqs: int | None = None, seed: int = 0,
                        device=None, calib_texts: int | None = None) -> ModelSpec:
    """``local_files_only``: the directory is the model, the hub is never contacted. Sizes left at None come from
    ``default_sizes`` (recorded in ``spec.meta["sizes"]``)."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise InputError(f"{path}: not a Hugging Face model directory (no config.json)")
    tokenizer, model = load_directory(path)
    given = {"n_calib": n_calib, "batch_size": batch_size, "n_heldout": n_heldout, "heldout_seqs": heldout_seqs}
    sizes = {k: v if given[k] is None else given[k]
             for k, v in default_sizes(sum(p.numel() for p in model.parameters())).items()}
    meta = {"model": str(path.resolve()), "library": f"transformers {_require_transformers().__version__}",
            "architecture": type(model).__name__, "attention": "eager", "sizes": sizes}
    return build_distill_spec(path.name, model.eval(), forward, hf_codec(tokenizer), seq_len=seq_len, seed=seed,
                              device=device, max_len=max_tokens(model, tokenizer), meta=meta,
                              calib_texts=calib_texts, **sizes)
