"""Regenerate the committed instances and ``MANIFEST.json`` (known optima / bounds keyed by each file's sha256).

    python instances/build_instances.py            # needs ../shared/data for the DIMACS subset

Hand-made tiny cases get their optimum by exhaustive enumeration (``geoshare_opt.solvers.bruteforce``); converted
DIMACS graphs get theirs from shared/data (chromatic numbers, certificates with one conflict at K = chi - 1), each
with the source of the number. ``tests/test_instances_manifest.py`` re-hashes every file against the manifest.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from geoshare_opt.convert import read_dimacs  # noqa: E402
from geoshare_opt.instance import Instance  # noqa: E402
from geoshare_opt.reference import references, shared_data_dir  # noqa: E402
from geoshare_opt.solvers.bruteforce import brute_force  # noqa: E402

MANIFEST = HERE / "MANIFEST.json"


def tiny_cases() -> list[tuple[str, Instance, str]]:
    """(file name, instance, what it exercises). Fixed seeds: the files never change unless this code does."""
    out = []
    rng = np.random.default_rng(20261127)

    def rand_w():
        return float(np.round(rng.uniform(-1, 1), 2))

    # signed weights, two types, global budget only
    nodes = [{"id": f"a{i}", "type": "A"} for i in range(5)] + [{"id": f"b{i}", "type": "B"} for i in range(4)]
    edges = [(f"a{i}", f"a{j}", rand_w()) for i in range(5) for j in range(i + 1, 5)]
    edges += [(f"b{i}", f"b{j}", rand_w()) for i in range(4) for j in range(i + 1, 4)]
    edges += [("a0", "b0", 5.0)]  # cross-type: never matters
    out.append(("tiny_signed_two_types.json",
                Instance.build(nodes, edges, 4, name="tiny_signed_two_types"), "signed weights, 2 types, K=4"))

    # hard edges + per-type caps
    nodes = [{"id": f"q{i}", "type": "Q"} for i in range(6)] + [{"id": f"k{i}", "type": "K"} for i in range(4)]
    edges = [("q0", "q1", "hard"), ("q1", "q2", "hard"), ("q2", "q0", "hard"), ("q3", "q4", "hard")]
    edges += [(f"q{i}", f"q{j}", rand_w()) for i in range(6) for j in range(i + 1, 6) if (i, j) not in
              {(0, 1), (1, 2), (0, 2), (3, 4)}]
    edges += [(f"k{i}", f"k{j}", abs(rand_w())) for i in range(4) for j in range(i + 1, 4)]
    out.append(("tiny_hard_caps.json",
                Instance.build(nodes, edges, 6, max_classes_per_type={"Q": 4, "K": 2}, name="tiny_hard_caps"),
                "hard triangle, per-type caps Q<=4 K<=2, K=6"))

    # non-uniform parameter counts under max_params
    nodes = [{"id": f"p{i}", "type": "P", "params": int(p)} for i, p in enumerate([10, 10, 20, 40, 40, 80, 10, 20])]
    edges = [(f"p{i}", f"p{j}", float(np.round(rng.uniform(0, 1), 2))) for i in range(8) for j in range(i + 1, 8)]
    out.append(("tiny_params_cap.json",
                Instance.build(nodes, edges, 4, max_params=150, name="tiny_params_cap"),
                "positive weights, params 10..80, max_params=150, K=4"))

    # everything at once: 3 types, signed, hard, all three caps
    nodes = ([{"id": f"x{i}", "type": "X", "params": 4} for i in range(4)]
             + [{"id": f"y{i}", "type": "Y", "params": 2 + i} for i in range(3)]
             + [{"id": f"z{i}", "type": "Z", "params": 1} for i in range(3)])
    edges = [("x0", "x1", "hard"), ("x2", "x3", -0.5), ("x0", "x2", 1.5), ("x1", "x3", 0.75), ("x0", "x3", 0.25),
             ("y0", "y1", 2.0), ("y1", "y2", -1.0), ("y0", "y2", 1.0), ("z0", "z1", "hard"), ("z1", "z2", 0.5),
             ("z0", "z2", -0.25)]
    out.append(("tiny_all_caps.json",
                Instance.build(nodes, edges, 6, max_classes_per_type={"X": 3}, max_params=20, name="tiny_all_caps"),
                "3 types, signed, hard, per-type cap, max_params=20, K=6"))

    # infeasible: a hard triangle with two classes
    nodes = [{"id": c, "type": "T"} for c in "abc"]
    out.append(("tiny_infeasible_triangle.json",
                Instance.build(nodes, [("a", "b", "hard"), ("b", "c", "hard"), ("a", "c", "hard")], 2,
                               name="tiny_infeasible_triangle"),
                "hard triangle, K=2: no feasible colouring"))
    return out


# (graph, K, hard edges?) -> known answer from shared/data
DIMACS_SUBSET = [("myciel3", 2, False), ("myciel3", 3, False), ("myciel3", 4, False), ("myciel3", 4, True),
                 ("myciel4", 4, False), ("myciel4", 5, True), ("queen5_5", 5, True), ("queen5_5", 4, False),
                 ("huck", 11, True), ("huck", 10, False), ("jean", 10, True), ("jean", 9, False)]


def dimacs_cases(data) -> list[tuple[str, Instance, dict]]:
    refs = references(data)
    out = []
    for g, k, hard in DIMACS_SUBSET:
        ref = refs[g]
        inst = read_dimacs(data / ref.file, k=k, hard=hard, name=f"{g}_K{k}_{'hard' if hard else 'soft'}")
        chi = ref.chi
        if k >= chi:
            rec = {"feasible": True, "optimum": 0.0, "source": f"chromatic number {chi} ({ref.file}, best_known_values.csv)"}
        elif hard:
            rec = {"feasible": False, "optimum": None, "source": f"chromatic number {chi} > K"}
        elif k in ref.min_kpartition and ref.min_kpartition[k][1].startswith("optimal"):
            val, kind = ref.min_kpartition[k]
            rec = {"feasible": True, "optimum": float(val), "source": f"best_known_values.csv: {kind}"}
        else:
            rec = {"feasible": True, "optimum": None, "lower_bound": 1.0,
                   "source": f"K < chromatic number {chi} so at least one edge is inside a class"}
        out.append((f"dimacs_{inst.name}.json", inst, rec))
    return out


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    entries = {}
    for fname, inst, what in tiny_cases():
        bf = brute_force(inst)
        rec = {"feasible": bf is not None, "optimum": None if bf is None else float(bf[0]),
               "source": "exhaustive enumeration (geoshare_opt.solvers.bruteforce)", "note": what}
        inst.save(HERE / fname)
        entries[fname] = (inst, rec)
    data = shared_data_dir()
    if data is None:
        print("shared/data not found: DIMACS subset skipped", file=sys.stderr)
    else:
        for fname, inst, rec in dimacs_cases(data):
            inst.save(HERE / fname)
            entries[fname] = (inst, rec)
    manifest = {"format": "geoshare-instances-manifest", "version": 1,
                "note": "keyed by the sha256 of each file's bytes; regenerate with python instances/build_instances.py",
                "instances": {}}
    for fname, (inst, rec) in sorted(entries.items()):
        manifest["instances"][file_sha256(HERE / fname)] = {
            "file": fname, "instance_sha256": inst.sha256, "nodes": len(inst.nodes), "edges": len(inst.edges),
            "max_classes": inst.budget.max_classes, **rec}
    MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n")
    print(f"wrote {len(entries)} instances and {MANIFEST.name}")


if __name__ == "__main__":
    main()
