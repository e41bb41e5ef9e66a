"""Make the 32- and 48-layer instances of the set-partitioning benchmark (needs torch).

    python benchmarks/solvers/colgen/make_instances.py

1. ``geoshare-opt analyze tiny-gpt --spec-option recipe=deep48 --estimator diag --mode tie --ratio 0.3 --samples 64
   -o benchmarks/solvers/colgen/generated/tiny-gpt-48-tie.json``: the package's own tiny-gpt recipe with 48 blocks
   instead of 24 (``geoshare_opt/specs/tinygpt.py``, recipe ``deep48``), trained on first use and cached (about 35
   minutes on one shared core), then the diagonal curvature front end on 64 calibration windows;
2. the instance is copied to ``instances/tiny-gpt-48-tie.json`` (the sidecar stays in ``generated/``, git-ignored);
3. ``instances/tiny-gpt-32-tie.json`` is the same instance cut to the first 32 layers of every type (the induced
   sub-graph: the pair weights of the 32 layers are unchanged).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from geoshare_opt import Instance

HERE = Path(__file__).resolve().parent


def first_layers(inst: Instance, n_layers: int) -> Instance:
    """The induced instance on the first ``n_layers`` layers of every type (by the nodes' ``layer``)."""
    keep = set()
    for t in inst.types:
        members = sorted(inst.type_members(t), key=lambda i: (inst.nodes[i].layer, i))
        keep.update(inst.nodes[i].id for i in members[:n_layers])
    nodes = [n for n in inst.nodes if n.id in keep]
    edges = [e for e in inst.edges if e.u in keep and e.v in keep]
    return Instance.build(nodes, edges, len(nodes), name=f"{inst.name}[:{n_layers}]", meta=dict(inst.meta))


def main() -> None:
    generated = HERE / "generated" / "tiny-gpt-48-tie.json"
    generated.parent.mkdir(exist_ok=True)
    if not generated.exists():
        cmd = [sys.executable, "-m", "geoshare_opt.cli", "analyze", "tiny-gpt", "--spec-option", "recipe=deep48",
               "--estimator", "diag", "--mode", "tie", "--ratio", "0.3", "--samples", "64", "-o", str(generated)]
        subprocess.run(cmd, check=True)
    (HERE / "instances").mkdir(exist_ok=True)
    shutil.copyfile(generated, HERE / "instances" / "tiny-gpt-48-tie.json")
    first_layers(Instance.load(generated), 32).save(HERE / "instances" / "tiny-gpt-32-tie.json")
    print("wrote instances/tiny-gpt-48-tie.json and instances/tiny-gpt-32-tie.json", file=sys.stderr)


if __name__ == "__main__":
    main()
