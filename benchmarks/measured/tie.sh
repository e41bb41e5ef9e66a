#!/usr/bin/env bash
# The package's recommendation (row `measured`) against the solved colouring and every heuristic at the same stored
# parameters, tie mode, 20/30/40/50 % fewer stored parameters, held-out metric before and after the same recovery
# budget for every colouring: tiny-gpt (perplexity, the quicker one, first) and MiniLM (embedding cosine). With
# recovery the recommendation is chosen after recovery: row `measured-rec` when it is not `measured`. One thread, as
# on the 2-core reference machine; each run records the load average in its results. docs/measured.md quotes these.
#
#     bash benchmarks/measured/tie.sh > tie.log 2>&1      # ~1 h on one loaded core
source "$(dirname "$0")/common.sh"
tiny_gpt tie
$PY benchmarks/compression/run.py --spec minilm --modes tie --solver auto --time-limit none \
    --recover 16 --recover-batch 4 --recover-lr 2e-4 --out benchmarks/compression/measured/minilm-tie --no-readme
