"""Tiny randomly initialised Hugging Face model directories built from configs with the real transformers library
(no hub): 2 layers, hidden size 32, each with the tokenizer class its architecture ships with. What a user's saved
model directory looks like, at a size a test can afford."""
from __future__ import annotations

import json
import string
from pathlib import Path

HIDDEN, LAYERS, HEADS, FFN, POSITIONS = 32, 2, 2, 64, 128

#: architecture -> (config class, its keyword arguments, tokenizer kind)
ARCHITECTURES = {
    "bert": ("BertConfig", dict(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                                intermediate_size=FFN, max_position_embeddings=POSITIONS), "wordpiece-bert"),
    "mpnet": ("MPNetConfig", dict(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                                  intermediate_size=FFN, max_position_embeddings=POSITIONS + 2), "wordpiece-mpnet"),
    "gpt2": ("GPT2Config", dict(n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS, n_positions=POSITIONS), "bytes"),
    "llama": ("LlamaConfig", dict(hidden_size=HIDDEN, intermediate_size=FFN, num_hidden_layers=LAYERS,
                                  num_attention_heads=HEADS, num_key_value_heads=HEADS,
                                  max_position_embeddings=POSITIONS), "bytes"),
}


def _wordpiece_vocab(specials: list[str]) -> list[str]:
    """Every lower-case letter, digit and punctuation mark as a word start and as a continuation: any ASCII text
    tokenises, one piece per character."""
    chars = string.ascii_lowercase + string.digits + string.punctuation
    return specials + list(chars) + [f"##{c}" for c in chars]


def _byte_vocab() -> dict[str, int]:
    """GPT-2's byte-to-unicode alphabet (256 symbols, no merges) plus its end-of-text token."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    extra = 0
    symbols = {}
    for b in range(256):
        if b in keep:
            symbols[b] = chr(b)
        else:
            symbols[b] = chr(256 + extra)
            extra += 1
    vocab = {symbols[b]: b for b in range(256)}
    vocab["<|endoftext|>"] = 256
    return vocab


def _tokenizer(kind: str, directory: Path):
    import transformers
    if kind == "bytes":
        (directory / "vocab.json").write_text(json.dumps(_byte_vocab()))
        (directory / "merges.txt").write_text("#version: 0.2\n")
        return transformers.GPT2Tokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"))
    if kind == "wordpiece-bert":
        words, cls = _wordpiece_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]), transformers.BertTokenizer
    else:
        words, cls = _wordpiece_vocab(["<s>", "<pad>", "</s>", "[UNK]", "<mask>"]), transformers.MPNetTokenizer
    (directory / "vocab.txt").write_text("\n".join(words) + "\n")
    return cls(str(directory / "vocab.txt"))


def make_model_dir(arch: str, directory: Path, seed: int = 0) -> Path:
    """Save a random ``arch`` model (see ``ARCHITECTURES``) and its tokenizer in ``directory``."""
    import torch
    import transformers
    config_name, kwargs, kind = ARCHITECTURES[arch]
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(kind, directory)
    ids = ({"bos_token_id": tokenizer.eos_token_id, "eos_token_id": tokenizer.eos_token_id} if kind == "bytes"
           else {"pad_token_id": tokenizer.pad_token_id})
    config = getattr(transformers, config_name)(vocab_size=len(tokenizer), **kwargs, **ids)
    torch.manual_seed(seed)
    model = transformers.AutoModel.from_config(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
