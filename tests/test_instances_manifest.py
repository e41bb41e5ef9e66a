"""The committed instances cannot drift from their recorded optima: every file is re-hashed against
instances/MANIFEST.json, and the recorded answers are re-checked (exhaustively on the tiny ones)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from geoshare_opt.api import solve
from geoshare_opt.instance import Instance
from geoshare_opt.solvers.bruteforce import MAX_NODES, brute_force

DIR = Path(__file__).resolve().parents[1] / "instances"
MANIFEST = json.loads((DIR / "MANIFEST.json").read_text())["instances"]
BY_FILE = {rec["file"]: (sha, rec) for sha, rec in MANIFEST.items()}


def test_every_instance_file_is_in_the_manifest_unchanged():
    files = sorted(p.name for p in DIR.glob("*.json") if p.name != "MANIFEST.json")
    assert files == sorted(BY_FILE), "instances/ and MANIFEST.json list different files"
    for name in files:
        sha = hashlib.sha256((DIR / name).read_bytes()).hexdigest()
        assert sha in MANIFEST and MANIFEST[sha]["file"] == name, f"{name} changed: rerun instances/build_instances.py"
        inst = Instance.load(DIR / name)
        assert inst.sha256 == MANIFEST[sha]["instance_sha256"]


@pytest.mark.parametrize("name", sorted(f for f in BY_FILE if BY_FILE[f][1]["nodes"] <= MAX_NODES))
def test_tiny_optima_by_enumeration(name):
    _, rec = BY_FILE[name]
    bf = brute_force(Instance.load(DIR / name))
    assert (bf is not None) == rec["feasible"]
    if bf is not None:
        assert bf[0] == pytest.approx(rec["optimum"], abs=1e-9)


@pytest.mark.parametrize("name", sorted(BY_FILE))
def test_anneal_meets_the_recorded_answer(name):
    _, rec = BY_FILE[name]
    inst = Instance.load(DIR / name)
    res = solve(inst, "anneal", time_limit=5, seed=0, native={"tabu_iters": 20000})
    if not rec["feasible"]:
        assert res.status == "none"
        return
    assert res.feasible
    if rec.get("optimum") is not None:
        assert res.objective == pytest.approx(rec["optimum"], abs=1e-9)
    if rec.get("lower_bound") is not None:
        assert res.objective >= rec["lower_bound"] - 1e-9
