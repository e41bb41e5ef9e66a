"""What building an exact backend's model costs per term (column or non-zero): seconds and bytes, measured on
generated dense single-type instances, one backend and size per fresh process (peak RSS is per process).

    python benchmarks/build_budget/measure.py [--sizes 60,120,200] [--k 8]

Prints one JSON line per (backend, n): terms (geoshare_opt.solvers.budget.model_size), build seconds, peak RSS
growth, and the per-term ratios that geoshare_opt/solvers/budget.py's COSTS are set from."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r'''
import json, resource, sys, time
import numpy as np
from geoshare_opt.instance import Instance
from geoshare_opt.solvers.curves import Model, parts_of
from geoshare_opt.solvers.budget import model_size
backend, n, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
edges = [(f"n{i}", f"n{j}", float(rng.normal())) for i in range(n) for j in range(i + 1, n)]
inst = Instance.build([{"id": f"n{i}", "type": "t"} for i in range(n)], edges, k)
part = parts_of(inst)[0].with_cap(k)
model = Model((part,), k, None, True, False)         # no optional triangle rows: the rows every model needs
size = model_size(model)
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if backend == "cpsat":
    from geoshare_opt.solvers.cpsat import _Built
    built = _Built(model)
elif backend == "highs":
    from geoshare_opt.solvers.milp import build, to_highs
    from geoshare_opt.solvers.quiet import new_highs
    h = new_highs()
    to_highs(build(model), h)
else:
    import os, tempfile
    from geoshare_opt.solvers.milp import build
    from geoshare_opt.solvers.pulp_milp import to_pulp
    prob, cols = to_pulp(build(model))
    with tempfile.TemporaryDirectory() as tmp:
        prob.writeMPS(os.path.join(tmp, "m.mps"), rename=1)      # what PuLP does before CBC starts
seconds = time.perf_counter() - t0
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) * 1024
print(json.dumps({"backend": backend, "n": n, "k": k, "terms": size.terms, "build_s": round(seconds, 3),
                  "rss_grown_mb": round(grown / 2**20, 1), "us_per_term": round(1e6 * seconds / size.terms, 3),
                  "bytes_per_term": round(grown / size.terms, 1)}))
'''


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="60,120,200")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--backends", default="cpsat,highs,pulp")
    args = ap.parse_args()
    for backend in args.backends.split(","):
        for n in map(int, args.sizes.split(",")):
            out = subprocess.run([sys.executable, "-c", CHILD, backend, str(n), str(args.k)], capture_output=True,
                                 text=True)
            print(out.stdout.strip() or out.stderr.strip()[-500:], flush=True)


if __name__ == "__main__":
    main()
