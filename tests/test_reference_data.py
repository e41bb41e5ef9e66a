"""The reference graphs the project carries (instances/reference) are the recorded files, and the published values
name only files that are there: a fresh clone runs every test with nothing beside it."""
from __future__ import annotations

import hashlib

from geoshare_opt.reference import references

from conftest import REFERENCE_DATA


def test_every_carried_file_has_its_recorded_sha256():
    lines = (REFERENCE_DATA / "SHA256SUMS").read_text().splitlines()
    listed = {}
    for line in lines:
        digest, name = line.split(maxsplit=1)
        listed[name] = digest
    carried = {str(p.relative_to(REFERENCE_DATA)) for p in REFERENCE_DATA.rglob("*")
               if p.is_file() and p.name not in ("SHA256SUMS", "README.md")}
    assert carried == set(listed)
    for name, digest in listed.items():
        assert hashlib.sha256((REFERENCE_DATA / name).read_bytes()).hexdigest() == digest, name


def test_the_published_values_name_carried_files():
    refs = references(REFERENCE_DATA)
    assert {r.instance for r in refs.values()} >= {"myciel3", "queen5_5", "huck", "G43", "G14"}
    for r in refs.values():
        assert r.path(REFERENCE_DATA).is_file(), r.file
    assert refs["G43"].best_cut == 6660 and refs["myciel3"].min_kpartition[3][0] == 1
