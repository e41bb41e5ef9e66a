"""The offline prose corpus: extraction rules, the frozen snapshot and its deterministic split."""
import gzip
import hashlib

import pytest

from geoshare_opt.data import SNAPSHOT, load_paragraphs, snapshot_sha256, split_of
from geoshare_opt.data.build_prose import clean_paragraph, extract, paragraphs_of, write_snapshot
from geoshare_opt.errors import InputError

PROSE = ("Return the number of items in the container. The argument may be a sequence such as a string, bytes, "
         "tuple, list, or range, or a collection.")


def test_snapshot_has_enough_unique_prose():
    paragraphs = load_paragraphs("all")
    words = sum(len(p.split()) for p in paragraphs)
    assert len(paragraphs) >= 3000 and words >= 100_000, (len(paragraphs), words)
    assert len({" ".join(p.lower().split()) for p in paragraphs}) == len(paragraphs)  # deduplicated
    assert not any(">>>" in p or "\n" in p for p in paragraphs)
    assert all(len(p.split()) >= 12 and p.isascii() for p in paragraphs)


def test_split_is_disjoint_complete_and_about_80_20():
    calib, heldout, everything = load_paragraphs("calib"), load_paragraphs("heldout"), load_paragraphs("all")
    assert not set(calib) & set(heldout)
    assert sorted(calib + heldout) == sorted(everything)
    assert 0.75 < len(calib) / len(everything) < 0.85
    assert all(split_of(p) == "heldout" for p in heldout)


def test_split_depends_only_on_the_text():
    bucket = int.from_bytes(hashlib.sha256(PROSE.encode()).digest()[:8], "big") % 100
    assert split_of(PROSE) == ("calib" if bucket < 80 else "heldout")
    assert split_of(PROSE) == split_of(str(PROSE))


def test_loading_is_deterministic_and_returns_fresh_lists():
    first = load_paragraphs("calib")
    first.clear()
    assert load_paragraphs("calib") == load_paragraphs("calib") != []
    assert snapshot_sha256() == hashlib.sha256(SNAPSHOT.read_bytes()).hexdigest()


def test_bad_split_is_an_input_error():
    with pytest.raises(InputError, match="split"):
        load_paragraphs("train")


@pytest.mark.parametrize("lines", [
    [">>> len([1, 2, 3])", "3"],
    ["len(obj, /) -> int"],
    [":param obj: the container whose length is wanted, which may be any sized object at all here."],
    ["Too short to be prose."],
    ["Example::"],
    ["- a bullet item that goes on for long enough to pass the minimum number of words rule."],
    ["x = {'a': [1, 2], 'b': {3: 4}}; y = x['a'][0] | z[1] << 2 and w[3] >= q[4] == r_s_t[5]."],
    ["The first line of a paragraph that continues", "    into an indented block which is a code sample here."],
])
def test_code_signatures_and_fragments_are_dropped(lines):
    assert clean_paragraph(lines) is None


def test_prose_paragraphs_are_joined_and_kept():
    cut = PROSE.index(" ", 60)
    doc = f"""len(obj) -> int

    {PROSE[:cut]}
    {PROSE[cut + 1:]}

    >>> len('abc')
    3
    """
    assert paragraphs_of(doc) == [PROSE]


def test_extraction_is_deterministic_on_a_small_tree(tmp_path):
    (tmp_path / "alpha.py").write_text(f'"""{PROSE}"""\n\ndef f():\n    """{PROSE}"""\n')
    (tmp_path / "pkg").mkdir()
    second = PROSE.replace("container", "mapping")
    (tmp_path / "pkg" / "beta.py").write_text(f'class C:\n    """{second}"""\n')
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "skipped.py").write_text('"""A test module docstring that is never extracted at all."""')
    got = extract(tmp_path, topics=False)
    assert got == [PROSE, second]  # sorted paths, duplicates dropped, test folders skipped
    assert extract(tmp_path, topics=False) == got


def test_snapshot_bytes_depend_only_on_the_text(tmp_path):
    a, b = tmp_path / "a.txt.gz", tmp_path / "b.txt.gz"
    assert write_snapshot([PROSE, "Second."], a) == write_snapshot([PROSE, "Second."], b)
    assert a.read_bytes() == b.read_bytes()
    assert gzip.decompress(a.read_bytes()).decode().splitlines() == [PROSE, "Second."]
