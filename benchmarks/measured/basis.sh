#!/usr/bin/env bash
# Basis mode: the package's recommendation (row `measured`) against the solved colouring, every heuristic and
# per-layer low rank (row `none`) at the same ratio, held-out metric before and after the same recovery budget:
# tiny-gpt at 20/30/40/50 %, and MiniLM at 50 % without recovery. One thread; each run records the load average
# in its results. docs/measured.md.
#
#     bash benchmarks/measured/basis.sh > basis.log 2>&1
source "$(dirname "$0")/common.sh"
tiny_gpt basis
# MiniLM at 20/30/40/50 %, without recovery:
$PY benchmarks/compression/run.py --spec minilm --modes basis --ratios 0.2,0.3,0.4,0.5 --solver auto --time-limit none \
    --out benchmarks/compression/measured/minilm-basis --no-readme
