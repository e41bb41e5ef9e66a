"""A GPT-2-small-sized network with random weights, as a user spec (``gpt2_spec.py:make``) for the cost benchmark.

Built from a config in plain torch (no download, no transformers needed): 12 blocks, width 768, 12 heads, MLP 3072,
vocabulary 50257, 1024 positions — 124M parameters, with nn.Linear layers named like Hugging Face's GPT-2
(``h.{i}.attn.c_attn``, ``h.{i}.attn.c_proj``, ``h.{i}.mlp.c_fc``, ``h.{i}.mlp.c_proj``). Attention is explicit
matmul + softmax, so it can be differentiated twice. The loss distils the final hidden states to the network's own
outputs (computed once), so it needs no labels and no vocabulary-sized head; random token ids as data.

Sizes from the environment (a user ``make()`` takes no arguments): GPT2_LAYERS (12), GPT2_WIDTH (768),
GPT2_SAMPLES (32 sequences), GPT2_SEQ (256 tokens), GPT2_BATCH (8), GPT2_DEVICE (cuda if available).
"""
from __future__ import annotations

import math
import os

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.Module()
        self.attn.c_attn = nn.Linear(width, 3 * width)
        self.attn.c_proj = nn.Linear(width, width)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Module()
        self.mlp.c_fc = nn.Linear(width, 4 * width)
        self.mlp.c_proj = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(c, dim=-1)
        shape = (b, t, self.heads, c // self.heads)
        q, k, v = (z.view(shape).transpose(1, 2) for z in (q, k, v))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(c // self.heads)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        att = scores.masked_fill(causal, float("-inf")).softmax(-1) @ v
        x = x + self.attn.c_proj(att.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp.c_proj(nn.functional.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, layers=12, width=768, heads=12, vocab=50257, positions=1024):
        super().__init__()
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(positions, width)
        self.h = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width)
        for name, p in self.named_parameters():   # GPT-2's initialisation
            if name.endswith("weight") and p.dim() == 2:
                nn.init.normal_(p, std=0.02 / (math.sqrt(2 * layers) if name.endswith("c_proj.weight") else 1))
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1], device=ids.device))
        for block in self.h:
            x = block(x)
        return self.ln_f(x)


def make():
    env = lambda k, d: int(os.environ.get(k, d))
    device = os.environ.get("GPT2_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    layers, width = env("GPT2_LAYERS", 12), env("GPT2_WIDTH", 768)
    samples, seq, bs = env("GPT2_SAMPLES", 32), env("GPT2_SEQ", 256), env("GPT2_BATCH", 8)
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPT2(layers=layers, width=width, heads=max(1, width // 64)).to(device).eval()
    ids = torch.randint(0, 50257, (samples, seq), generator=gen)
    batches = []
    with torch.no_grad():
        for lo in range(0, samples, bs):
            chunk = ids[lo:lo + bs].to(device)
            batches.append({"ids": chunk, "teacher": model(chunk)})

    def outputs(m, b):
        return m(b["ids"])

    def output_loss(z, b):
        return (z - b["teacher"]).pow(2).mean()

    return {"model": model, "batches": batches, "loss": lambda m, b: output_loss(outputs(m, b), b),
            "outputs": outputs, "output_loss": output_loss, "name": "gpt2-small-random",
            "meta": {"layers": layers, "width": width, "samples": samples, "seq_len": seq, "batch": bs}}
