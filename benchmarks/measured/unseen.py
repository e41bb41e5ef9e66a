"""A smoke check that the measured refinement is not tuned to the built-in networks: the whole ``pipeline`` on a
Hugging Face BERT-style directory it has never seen (random initialisation, another width and depth, loaded through
transformers), and on digits-mlp, at the pipeline's defaults.

    python benchmarks/measured/unseen.py            # writes benchmarks/measured/unseen.json

The directory is built here: ``transformers.BertModel`` with 4 layers of width 256 (4 heads, FFN 1024), seed 0, and
MiniLM's tokenizer files (the only tokenizer on the machine). Nothing in ``geoshare_opt.measured`` knows its sizes.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = {"n_calib": 64, "heldout_seqs": 16, "n_heldout": 128, "seq_len": 64}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def random_bert(path: Path) -> Path:
    import torch
    import transformers
    from geoshare_opt.specs.bert import model_dir
    config = transformers.BertConfig(vocab_size=30522, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                                     intermediate_size=1024, max_position_embeddings=512)
    torch.manual_seed(0)
    transformers.BertModel(config, add_pooling_layer=False).save_pretrained(path)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (model_dir() / name).is_file():
            shutil.copy(model_dir() / name, path / name)
    return path


def summary(out: dict) -> dict:
    rows = {r["colouring"]: r["metrics"] for r in out["rows"] if r.get("metrics")}
    return {"ratio": out["ratio"], "mode": out["mode"], "recommended": out["recommended"],
            "refine": {k: out["refine"][k] for k in ("start", "stopped", "forward_passes", "search_loss")},
            "rows": rows, "times_s": out["times_s"]}


def main() -> int:
    import torch
    torch.set_num_threads(1)
    from geoshare_opt.pipeline import pipeline
    started = time.perf_counter()
    results = {"load_start": [round(x, 2) for x in os.getloadavg()]}
    progress = lambda info: info.get("message") and log(info["message"])
    with tempfile.TemporaryDirectory() as tmp:
        bert = random_bert(Path(tmp) / "random-bert")
        for mode in ("tie", "basis"):
            log(f"random BERT, {mode}")
            results[f"random-bert/{mode}"] = summary(pipeline(str(bert), 0.3, mode=mode, spec_options=SIZES,
                                                              progress=progress))
    for mode in ("tie", "basis"):
        log(f"digits-mlp, {mode}")
        results[f"digits-mlp/{mode}"] = summary(pipeline("digits-mlp", 0.5, mode=mode, progress=progress))
    results["command"] = "python benchmarks/measured/unseen.py"
    results["wall_s"] = round(time.perf_counter() - started, 1)
    results["load_end"] = [round(x, 2) for x in os.getloadavg()]
    (HERE / "unseen.json").write_text(json.dumps(results, indent=1) + "\n")
    for key, r in results.items():
        if isinstance(r, dict) and "recommended" in r:
            log(f"{key}: {r['recommended']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
