"""One rank of the data-parallel ``analyze`` test (tests/test_distributed_analyze.py), started by torchrun.

First the command line, which joins the process group from torchrun's environment; then the library, in the same
group, for the other estimators.
Arguments: the output directory, then ``estimator:mode:dtype`` for each library run."""
from __future__ import annotations

import sys

import torch.distributed as dist

from geoshare_opt.cli import main
from geoshare_opt.frontend import analyze

SAMPLES = 768            # 6 calibration batches of 128: 3 per rank
LANCZOS_STEPS = 4


def run_cli(outdir: str) -> None:
    try:
        main(["analyze", "digits-mlp", "--samples", str(SAMPLES), "-o", f"{outdir}/cli-diag.json"])
    except SystemExit as exc:
        if exc.code:
            raise


def run_library(outdir: str, runs: list[str]) -> None:
    assert dist.is_initialized()          # the group the command joined stays for later calls
    for run in runs:
        estimator, mode, dtype = run.split(":")
        inst = analyze("digits-mlp", estimator=estimator, mode=mode, dtype=dtype, samples=SAMPLES,
                       lanczos_steps=LANCZOS_STEPS, ratio=0.5 if mode == "basis" else None,
                       out=f"{outdir}/{estimator}-{mode}.json", distributed=True)
        assert inst.meta["curvature"]["file"] == f"{estimator}-{mode}.curvature.safetensors"   # on every rank


if __name__ == "__main__":
    run_cli(sys.argv[1])
    run_library(sys.argv[1], sys.argv[2:])
