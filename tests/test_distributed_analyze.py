"""Data-parallel ``analyze`` on torch.distributed: two CPU processes with gloo, started by torchrun, against the
single process on the same calibration (digits-mlp, 6 batches: 3 per rank).

Tolerances (docs/distributed.md): the ranks add the same per-batch numbers in another order, in float32. Pair
weights agree within ``PAIR_RTOL`` of the largest weight (measured: at most 3e-7 with lanczos, 1e-8 with diag/kfac,
0 in basis mode, whose input covariances are summed in float64 because whitening by their near-null directions
(digits' always-blank pixels) would amplify float32 summation order up to 10⁶-fold) and every sidecar tensor within
``SIDECAR_RTOL`` of its largest entry."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from geoshare_opt.errors import InputError  # noqa: E402
from geoshare_opt.frontend import analyze, load_curvature  # noqa: E402
from geoshare_opt.instance import Instance  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RANKS = Path(__file__).with_name("distributed_analyze_ranks.py")
PAIR_RTOL = 1e-5
SIDECAR_RTOL = 1e-5
LIBRARY_RUNS = ("kfac:tie", "lanczos:tie", "diag:basis")


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """One torchrun job of 2 gloo processes: the command (diag), then the library (the other estimators)."""
    out = tmp_path_factory.mktemp("ranks")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [str(REPO)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(RANKS), str(out), *(f"{run}:float32" for run in LIBRARY_RUNS)],
                          capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out, proc


def test_command_rank0_writes_once(two_ranks):
    out, proc = two_ranks
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout                          # rank 1 prints nothing
    summary = json.loads(lines[0])
    assert summary["distributed"]["world_size"] == 2 and summary["distributed"]["backend"] == "gloo"
    inst = Instance.load(out / "cli-diag.json")
    assert inst.meta["distributed"] == summary["distributed"]
    assert inst.meta["samples"] == 768 and inst.meta["batches"] == 6
    assert "2 gloo processes" in proc.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted([f"{name}{suffix}" for name in ["cli-diag", *(r.replace(":", "-") for r in LIBRARY_RUNS)]
                              for suffix in (".json", ".curvature.safetensors")])   # no temporary file left


@pytest.mark.parametrize("run", ["cli:diag:tie", *LIBRARY_RUNS])
def test_same_instance_as_one_process(two_ranks, tmp_path, run):
    out, _ = two_ranks
    estimator, mode = run.split(":")[-2:]
    stem = "cli-diag" if run.startswith("cli:") else f"{estimator}-{mode}"
    torch.set_num_threads(1)
    one = analyze("digits-mlp", estimator=estimator, mode=mode, samples=768, lanczos_steps=4,
                  ratio=0.5 if mode == "basis" else None, out=tmp_path / "one.json")
    two = Instance.load(out / f"{stem}.json")
    assert "distributed" not in one.meta
    for key in ("samples", "batches", "spread", "output_hessian", "first_order_layers", "basis_rank"):
        assert two.meta.get(key) == one.meta.get(key), key      # per-batch values gathered in batch order
    w1 = {(e.u, e.v): e.w for e in one.edges}
    w2 = {(e.u, e.v): e.w for e in two.edges}
    assert w1.keys() == w2.keys()
    top = max(abs(w) for w in w1.values())
    assert max(abs(w1[k] - w2[k]) for k in w1) <= PAIR_RTOL * top
    s1, s2 = load_curvature(tmp_path / "one.json"), load_curvature(out / f"{stem}.json")
    assert s1.keys() == s2.keys()
    for name, t in s1.items():
        assert float((s2[name] - t).abs().max()) <= SIDECAR_RTOL * float(t.abs().max()), name
    if estimator == "lanczos":
        assert two.meta["lanczos"]["eigenvalues"] == pytest.approx(one.meta["lanczos"]["eigenvalues"], rel=1e-5)


def test_distributed_without_a_launcher_is_one_line(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(InputError, match="launch it with torchrun"):
        analyze("digits-mlp", samples=128, distributed=True)
