"""Side check for the MiniLM recovery table: does the recovery objective decide the ranking of colourings?

The solved colouring and `sandwich` at 50 % (tie mode, same data sizes as the reduced run in ../README.md) are
recovered for 12 steps twice: with MSE on the last hidden states (``distill_loss`` unset: recover's fallback, the
minilm spec's objective before this check) and with the spec's ``distill_loss`` now, ``embedding_distill_loss``
(token-level 1 − cos plus 1 − cos of the mean-pooled window embeddings), which is closer to the table's metric
(cosine of normalised mean-pooled sentence embeddings).

    python benchmarks/compression/recovery/objective_check.py     # writes objective_check.json beside this file
"""
from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

import torch

from geoshare_opt import solve
from geoshare_opt.baselines import baseline
from geoshare_opt.frontend import analyze, load_curvature
from geoshare_opt.materialize import apply, recover
from geoshare_opt.pipeline import evaluate_model
from geoshare_opt.specs import load_spec
from geoshare_opt.specs.prose_distill import embedding_distill_loss

HERE = Path(__file__).resolve().parent


def main() -> None:
    t0 = time.perf_counter()
    spec = load_spec("minilm", n_calib=32, heldout_seqs=8, n_heldout=128, seq_len=64)
    with tempfile.TemporaryDirectory() as tmp:
        base = analyze(spec, estimator="diag", mode="tie", ratio=0.3, seed=0, samples=32, out=Path(tmp) / "t.json")
        curvature = load_curvature(Path(tmp) / "t.json")
    inst = base.with_budget(max_params=math.floor(0.5 * int(base.params.sum())))
    solved = solve(inst, "cpsat", time_limit=30, seed=0)
    colourings = {"solved": solved,
                  "sandwich": baseline(inst, "sandwich", classes=dict(solved.classes_per_type), seed=0)}
    rows = []
    for objective, loss in (("mse", None), ("cosine", embedding_distill_loss)):
        spec.distill_loss = loss
        for name, res in colourings.items():
            model, _ = apply(spec.model, inst, res, "tie", curvature)
            before = evaluate_model(spec, model)["embedding_cosine"]
            rep = recover(model, spec, steps=12, lr=3e-4, batch_size=4, seed=0)
            after = evaluate_model(spec, model)
            rows.append({"objective": objective, "colouring": name, "cosine_before": before,
                         "cosine_after": after["embedding_cosine"], "mrr_after": after["retrieval_mrr"],
                         "heldout_loss_after": after["heldout_loss"], "train_s": rep.train_s})
            print(rows[-1], flush=True)
    out = {"rows": rows, "wall_s": round(time.perf_counter() - t0, 1),
           "command": "python benchmarks/compression/recovery/objective_check.py"}
    (HERE / "objective_check.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
