# Sourced by tie.sh and basis.sh: the repository root, one thread, and the tiny-gpt run both studies share (the same
# recovery budget for every colouring: 40 steps of 8 examples, lr 1e-3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PY=${PYTHON:-python}
export OMP_NUM_THREADS=1

tiny_gpt() {     # tiny_gpt MODE: tiny-gpt at 20/30/40/50 % -> benchmarks/compression/measured/tiny-gpt-MODE
    $PY benchmarks/compression/run.py --spec tiny-gpt --modes "$1" --solver auto --time-limit none \
        --recover 40 --recover-batch 8 --recover-lr 1e-3 --out "benchmarks/compression/measured/tiny-gpt-$1" --no-readme
}
