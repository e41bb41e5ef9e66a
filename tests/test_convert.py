"""Graph readers: every quirk listed in shared/data/README.md, on synthetic files (no shared data needed)."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geoshare_opt.convert import GraphFormatError, detect_format, read_dimacs, read_graph, read_gset
from geoshare_opt.errors import InputError


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8", newline: str = "\n") -> Path:
    p = tmp_path / name
    p.write_bytes(text.replace("\n", newline).encode(encoding))
    return p


def pairs(inst):
    return sorted((int(e.u), int(e.v)) for e in inst.edges)


TRIANGLE = "c a triangle\np edge 3 3\ne 1 2\ne 2 3\ne 1 3\n"


def test_dimacs_basic_hard_and_soft(tmp_path):
    p = write(tmp_path, "tri.col", TRIANGLE)
    hard = read_dimacs(p, k=3)
    assert [n.id for n in hard.nodes] == ["1", "2", "3"]
    assert {n.type for n in hard.nodes} == {"v"} and all(n.params == 1 for n in hard.nodes)
    assert all(e.hard for e in hard.edges) and pairs(hard) == [(1, 2), (1, 3), (2, 3)]
    soft = read_dimacs(p, k=2, hard=False)
    assert all(not e.hard and e.w == 1.0 for e in soft.edges)
    assert soft.budget.max_classes == 2
    assert soft.meta["source_file"] == "tri.col" and len(soft.meta["source_sha256"]) == 64
    assert soft.name == "tri"


def test_dimacs_edges_listed_twice_and_lying_header(tmp_path):
    # SGB style: every edge in both directions, and a header counting both (6 for 3 unique edges)
    text = "p edge 3 6\ne 1 2\ne 2 1\ne 2 3\ne 3 2\ne 1 3\ne 3 1\n"
    inst = read_dimacs(write(tmp_path, "twice.col", text))
    assert pairs(inst) == [(1, 2), (1, 3), (2, 3)]
    assert inst.meta["m_header"] == 6 and inst.meta["duplicates_dropped"] == 3


def test_dimacs_header_claims_twice_the_lines(tmp_path):
    # DSJC style: m in the header is twice the number of edge lines
    inst = read_dimacs(write(tmp_path, "dsjc.col", "p edge 4 4\ne 1 2\ne 3 4\n"))
    assert pairs(inst) == [(1, 2), (3, 4)]


def test_dimacs_self_loops_dropped(tmp_path):
    inst = read_dimacs(write(tmp_path, "loop.col", "p edge 3 3\ne 1 1\ne 1 2\ne 3 3\n"))
    assert pairs(inst) == [(1, 2)] and inst.meta["self_loops_dropped"] == 2


def test_dimacs_chi_on_p_line_and_s_line(tmp_path):
    a = read_dimacs(write(tmp_path, "a.col", "p edge 3 3 3\ne 1 2\ne 2 3\ne 1 3\n"))
    assert a.budget.max_classes == 3 and a.meta["chi_header"] == 3
    b = read_dimacs(write(tmp_path, "b.col", "c x\np edge 3 3\ns 3\ne 1 2\ne 2 3\ne 1 3\n"))
    assert b.budget.max_classes == 3
    c = read_dimacs(write(tmp_path, "c.col", TRIANGLE))
    assert c.budget.max_classes == 3  # no chi stated: k defaults to n


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig"])
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_encodings_and_line_ends(tmp_path, encoding, newline):
    p = write(tmp_path, "enc.col", TRIANGLE, encoding=encoding, newline=newline)
    assert pairs(read_dimacs(p)) == [(1, 2), (1, 3), (2, 3)]
    g = write(tmp_path, "enc.txt", "3 2\n1 2 1\n2 3 -1\n", encoding=encoding, newline=newline)
    inst = read_gset(g)
    assert sorted((int(e.u), int(e.v), e.w) for e in inst.edges) == [(1, 2, 1.0), (2, 3, -1.0)]


def test_gset_signed_weights_and_merging(tmp_path):
    text = "4 5\n1 2 1\n2 3 -1\n3 4 1\n2 1 1\n4 4 1\n"
    inst = read_gset(write(tmp_path, "g.txt", text))
    assert inst.budget.max_classes == 2
    w = {(int(e.u), int(e.v)): e.w for e in inst.edges}
    assert w == {(1, 2): 2.0, (2, 3): -1.0, (3, 4): 1.0}  # parallel edges add up; the self-loop never crosses a cut
    assert inst.meta["parallel_edges_merged"] == 1 and inst.meta["self_loops_dropped"] == 1
    assert inst.meta["total_weight"] == 2.0


def test_read_graph_detects_the_format(tmp_path):
    d = write(tmp_path, "x.dat", TRIANGLE)
    g = write(tmp_path, "y.dat", "3 1\n1 3 -1\n")
    assert detect_format(d.read_text()) == "dimacs" and detect_format(g.read_text()) == "gset"
    di = read_graph(d)
    assert all(e.hard for e in di.edges) and di.meta["format"] == "dimacs"
    gi = read_graph(g, k=3)
    assert gi.meta["format"] == "gset" and gi.budget.max_classes == 3 and gi.edges[0].w == -1.0
    with pytest.raises(GraphFormatError, match="neither"):
        read_graph(write(tmp_path, "z.dat", "hello world\n"))


@pytest.mark.parametrize("text,match", [
    ("p edge 3 1\ne 1 x\n", "line 2: edge end must be an integer"),
    ("p edge 3 1\ne 1 4\n", "line 2: vertex 4 outside 1..3"),
    ("e 1 2\n", "line 1: edge before the 'p edge' line"),
    ("p edge 3 1\nq 1 2\n", "line 2: unknown line type 'q'"),
    ("p edge 3 1\ne 1\n", "line 2: expected 'e <u> <v>'"),
    ("p edge 3\n", "line 1: expected 'p edge"),
    ("c only comments\n", "no 'p edge"),
    ("p edge 2 1\np edge 2 1\n", "second 'p' line"),
])
def test_dimacs_malformed_lines_name_the_line(tmp_path, text, match):
    with pytest.raises(GraphFormatError, match=match) as exc:
        read_dimacs(write(tmp_path, "bad.col", text))
    assert isinstance(exc.value, InputError) and "\n" not in str(exc.value)


@pytest.mark.parametrize("text,match", [
    ("3\n", "line 1: expected '<nodes> <edges>'"),
    ("3 1\n1 2 w\n", "line 2: weight must be a number"),
    ("3 1\n1 2 nan\n", "line 2: weight 'nan' is not finite"),
    ("3 1\n1 5 1\n", "line 2: vertex 5 outside 1..3"),
    ("3 1\n1 2 3 4\n", "line 2: expected '<i> <j> <w>'"),
    ("", "empty file"),
])
def test_gset_malformed_lines(tmp_path, text, match):
    with pytest.raises(GraphFormatError, match=match):
        read_gset(write(tmp_path, "bad.txt", text))


def test_missing_file_and_bad_k(tmp_path):
    with pytest.raises(GraphFormatError, match="not found"):
        read_dimacs(tmp_path / "nope.col")
    with pytest.raises(GraphFormatError, match="directory"):
        read_gset(tmp_path)
    with pytest.raises(InputError, match="k must be a positive integer"):
        read_dimacs(write(tmp_path, "t.col", TRIANGLE), k=0)


edge_lists = st.integers(2, 12).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(1, n), st.integers(1, n)), max_size=40)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=edge_lists, twice=st.booleans(), lie=st.integers(0, 100), enc=st.sampled_from(["utf-8", "utf-16"]))
def test_dimacs_fuzz_round_trip(tmp_path, data, twice, lie, enc):
    """Any messy edge list (duplicates, both directions, loops, a header count that lies) reads as its set of
    unique non-loop edges."""
    n, edges = data
    lines = [f"e {u} {v}" for u, v in edges] + ([f"e {v} {u}" for u, v in edges] if twice else [])
    p = write(tmp_path, "f.col", f"c fuzz\np edge {n} {lie}\n" + "\n".join(lines) + "\n", encoding=enc)
    inst = read_dimacs(p, k=n, hard=False)
    want = sorted({(min(u, v), max(u, v)) for u, v in edges if u != v})
    assert pairs(inst) == want and len(inst.nodes) == n


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.text(max_size=60))
def test_parsers_never_crash_on_junk(tmp_path, junk):
    p = tmp_path / "junk.txt"
    p.write_text(junk, encoding="utf-8")
    for reader in (read_dimacs, read_gset, read_graph):
        try:
            reader(p)
        except InputError:
            pass
