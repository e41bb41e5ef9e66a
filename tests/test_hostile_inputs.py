"""Hostile and malformed inputs to the torch-free commands (issue 14, part A): lying graph headers, numbers at and
beyond every limit, zero-node instances, outputs that name an input, file modes, and inputs that never end.
Each case ends in a correct answer or one line on stderr with exit 2, never a traceback or a half-written file."""
from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from geoshare_opt import InputError, Instance, InstanceError, evaluate, solve
from geoshare_opt.checker import labels_from_assignment
from geoshare_opt.instance import MAX_INT
from geoshare_opt.solvers import default_registry

from test_cli import assert_one_line_error, run

REPO = Path(__file__).resolve().parents[1]
SOLVERS = default_registry.names()


def instance_text(nodes=None, edges=None, budget=None, **extra) -> str:
    d = {"format": "geoshare-instance", "version": 1, "name": "h",
         "nodes": nodes if nodes is not None else [{"id": "a", "type": "t"}, {"id": "b", "type": "t"}],
         "edges": edges if edges is not None else [{"u": "a", "v": "b", "w": 1.0}],
         "budget": budget or {"max_classes": 2}, **extra}
    return json.dumps(d)


def write(tmp_path, name, text) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def run_limited(args, mem_gb: float = 1.5, timeout: float = 60.0, **kw) -> subprocess.CompletedProcess:
    """The CLI in a child process with an address-space cap, so a defect that allocates without bound fails the
    test (MemoryError or a kill) instead of exhausting the machine."""
    limit = int(mem_gb * 2**30)

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **kw.pop("env", {}))
    return subprocess.run([sys.executable, "-m", "geoshare_opt.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, preexec_fn=cap, env=env, **kw)


def assert_clean_exit_2(proc, needle=None):
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    if needle:
        assert needle in lines[0], lines[0]


# ---------------------------------------------------------------------- 1. lying graph headers
@pytest.mark.parametrize("text", ["p edge 1000000000 1\ne 1 2\n", "1000000000 1\n1 2 1\n"],
                         ids=["dimacs", "gset"])
def test_a_header_with_a_billion_nodes_is_refused_without_allocating(tmp_path, text):
    src = write(tmp_path, "n.col", text)
    assert_clean_exit_2(run_limited(["convert", src, "-o", tmp_path / "n.json"]), "node count")
    assert not (tmp_path / "n.json").exists()


@pytest.mark.parametrize("text", ["p edge 2000000 1\ne 1 2\n", "2000000 1\n1 2 1\n"], ids=["dimacs", "gset"])
def test_a_header_declaring_millions_of_isolated_nodes_is_refused(tmp_path, text):
    src = write(tmp_path, "n.col", text)
    assert_one_line_error(run("convert", src, "-o", tmp_path / "n.json"), needle="name only 2")
    assert not (tmp_path / "n.json").exists()


def test_a_graph_may_keep_a_few_isolated_vertices(tmp_path):
    """Real DIMACS files (fpsol2, inithx, zeroin) name only part of 1..n in their edges: that stays accepted."""
    src = write(tmp_path, "g.col", "p edge 40 2\ne 1 2\ne 2 3\n")
    res = run("convert", src)
    assert res.exit_code == 0, res.stderr
    assert len(json.loads(res.stdout)["nodes"]) == 40


@pytest.mark.parametrize("text, needle", [
    ("p edge 3 1\ne 1 " + "9" * 5000 + "\n", "edge end"),
    ("p edge " + "9" * 5000 + " 1\ne 1 2\n", "node count"),
    ("3 1\n1 2 " + "9" * 5000 + "\n", None),
    ("3 2\n1 2 1e308\n2 1 1e308\n", "not finite"),            # parallel edges merged: their sum overflows
    ("3 2\n1 2 1e308\n2 3 1e308\n", "overflow"),              # distinct edges: their total overflows
])
def test_graph_numbers_beyond_every_range_are_one_line(tmp_path, text, needle):
    src = write(tmp_path, "g.txt", text)
    res = run("convert", src)
    if needle is None:    # a weight with 5000 digits is a float like any other: too large means refused or inf
        assert res.exit_code in (0, 2) and "Traceback" not in res.stderr
        if res.exit_code == 2:
            assert_one_line_error(res)
        return
    assert_one_line_error(res, needle=needle)
    assert len(res.stderr) < 400      # the 5000 digits are not echoed back


def test_convert_k_beyond_the_format_is_refused(tmp_path):
    src = write(tmp_path, "g.col", "p edge 3 1\ne 1 2\n")
    out = tmp_path / "g.json"
    assert_one_line_error(run("convert", src, "--k", str(10**30), "-o", out), needle="max_classes")
    assert not out.exists()


# ---------------------------------------------------------------------- 8. numbers
@pytest.mark.parametrize("limit", ["inf", "1e10", "1e300"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_a_huge_or_infinite_time_limit_means_no_limit(tmp_path, solver, limit):
    inst = write(tmp_path, "i.json", instance_text())
    res = run("solve", inst, "--solver", solver, "--time-limit", limit, "-q")
    assert res.exit_code == 0, res.stderr
    assert res.stderr == ""
    payload = json.loads(res.stdout)
    assert payload["status"] == "feasible" and payload["options"]["time_limit"] is None


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("seed", [2**70, 2**31, -1])
def test_a_seed_out_of_range_is_refused_the_same_way_by_every_backend(tmp_path, solver, seed):
    inst = write(tmp_path, "i.json", instance_text())
    assert_one_line_error(run("solve", inst, "--solver", solver, "--seed", str(seed), "-q"), needle="seed")


def test_the_largest_seed_works_on_every_backend(tmp_path):
    inst = write(tmp_path, "i.json", instance_text())
    for solver in SOLVERS:
        res = run("solve", inst, "--solver", solver, "--seed", str(2**31 - 1), "-q", "--time-limit", "5")
        assert res.exit_code == 0, (solver, res.stderr)


@pytest.mark.parametrize("args", [["baseline", "{i}", "--kind", "random", "--seed", "-1"],
                                  ["baseline", "{i}", "--kind", "random", "--seed", str(2**70)],
                                  ["compare", "{i}", "--solvers", "dsatur", "--seed", str(2**31 - 1),
                                   "--repeats", "2"],
                                  ["sweep", "{i}", "--seed", str(2**70)],
                                  ["sweep", "{i}", "--random-seeds", str(2**31 + 1), "--heuristics", "random"]])
def test_seeds_out_of_range_in_the_other_commands(tmp_path, args):
    inst = write(tmp_path, "i.json", instance_text())
    assert_one_line_error(run(*[a.format(i=inst) for a in args]), needle="seed")


@pytest.mark.parametrize("solver, native", [
    ("anneal", "sweeps=1e400"), ("anneal", "sweeps=-5"), ("anneal", "rounds=x"), ("anneal", "t_start=1e400"),
    ("anneal", "kick=NaN"), ("anneal", "tabu_iters=1e30"),
    ("dsatur", "seed_order=x"), ("dsatur", "seed_order=1e400"), ("auto", "anneal=3"), ("auto", "cpsat=x"),
    ("cpsat", "decompose=x"), ("pulp", "triangles=1e400"), ("highs", "hint=zz"),
])
def test_native_values_that_are_no_usable_number_are_bad_input(tmp_path, solver, native):
    """A native value JSON cannot hold (1e400, NaN) stays a string, so the backend names it: exit 2 before the
    run, never an error termination halfway or a result the JSON writer refuses."""
    inst = write(tmp_path, "i.json", instance_text())
    res = run("solve", inst, "--solver", solver, "--native", native, "-q", "--time-limit", "5")
    assert_one_line_error(res, needle=native.partition("=")[0])


def test_native_options_with_non_finite_numbers_are_refused_by_the_api():
    inst = Instance.build([{"id": "a", "type": "t"}], [], 1)
    with pytest.raises(InputError, match="non-finite"):
        solve(inst, "dsatur", native={"x": [float("inf")]})


@pytest.mark.parametrize("where", ["params", "max_classes", "meta", "weight", "layer"])
@pytest.mark.parametrize("command", ["solve", "validate"])
def test_json_integers_with_thousands_of_digits(tmp_path, where, command):
    huge = "9" * 5000
    text = instance_text()
    text = {"params": text.replace('"type": "t"}', '"type": "t", "params": HUGE}', 1),
            "max_classes": text.replace('"max_classes": 2', '"max_classes": HUGE'),
            "meta": text[:-1] + ', "meta": {"x": HUGE}}',
            "weight": text.replace('"w": 1.0', '"w": HUGE'),
            "layer": text.replace('"type": "t"}', '"type": "t", "layer": HUGE}', 1)}[where].replace("HUGE", huge)
    inst = write(tmp_path, "i.json", text)
    res = run(command, inst, *(["--solver", "dsatur"] if command == "solve" else []))
    assert_one_line_error(res, needle="digits")
    assert len(res.stderr) < 400


def test_a_result_with_a_huge_integer_is_one_line(tmp_path):
    inst = write(tmp_path, "i.json", instance_text())
    res = json.loads(run("solve", inst, "--solver", "dsatur", "-q").stdout)
    res["assignment"]["a"] = "HUGE"
    out = write(tmp_path, "r.json", json.dumps(res).replace('"HUGE"', "9" * 5000))
    assert_one_line_error(run("validate", out), needle="digits")


@pytest.mark.parametrize("edges, needle", [
    ([{"u": "a", "v": "b", "w": 1e308}, {"u": "b", "v": "c", "w": 1e308}], "overflow"),
    ([{"u": "a", "v": "b", "w": -1e308}, {"u": "b", "v": "c", "w": -1e308}], "overflow"),
    ([{"u": "a", "v": "b", "w": 1e308}, {"u": "b", "v": "c", "w": -1e308}], "overflow"),
])
@pytest.mark.parametrize("command", ["solve", "validate"])
def test_weights_whose_sum_overflows(tmp_path, edges, needle, command):
    nodes = [{"id": x, "type": "t"} for x in "abc"]
    inst = write(tmp_path, "i.json", instance_text(nodes, edges, {"max_classes": 1}))
    assert_one_line_error(run(command, inst, *(["--solver", "dsatur"] if command == "solve" else [])),
                          needle=needle)


def test_a_stored_parameter_total_beyond_the_exact_range_is_refused(tmp_path):
    """1100 nodes of 2**53-1 parameters sum to 9.9e18 > 2**63: int64 sums wrapped and a colouring storing them
    all was called valid under a 9e15 cap. The total is now limited to 2**53-1 (exact in int64 and float64)."""
    nodes = [{"id": f"n{i}", "type": f"t{i}", "params": MAX_INT} for i in range(1100)]
    inst = write(tmp_path, "i.json", instance_text(nodes, [], {"max_classes": 1100, "max_params": 9 * 10**15}))
    for command in ("validate", "solve"):
        assert_one_line_error(run(command, inst), needle="2**53-1")
    with pytest.raises(InstanceError, match="sum"):
        Instance.build(nodes, [], 1100)


def test_the_checker_sums_stored_parameters_exactly():
    """Largest accepted total: the checker's count is exact to the last parameter."""
    nodes = [{"id": "a", "type": "t", "params": MAX_INT - 1}, {"id": "b", "type": "u", "params": 1}]
    inst = Instance.build(nodes, [], 2, max_params=MAX_INT)
    ev = evaluate(inst, labels_from_assignment(inst, {"a": 0, "b": 1}))
    assert ev.feasible and ev.stored_params == MAX_INT


@pytest.mark.parametrize("d, needle", [
    ({"max_classes": 10**30}, "max_classes"),
    ({"max_classes": 2, "max_params": 10**30}, "max_params"),
    ({"max_classes": 2, "max_classes_per_type": {"t": 10**30}}, "max_classes_per_type"),
])
def test_budgets_beyond_the_format_are_refused_by_every_constructor(d, needle):
    from geoshare_opt.instance import Budget, Node
    nodes = [Node("a", "t"), Node("b", "t")]
    with pytest.raises(InstanceError, match=needle):
        Instance("x", nodes, [], Budget(d["max_classes"], d.get("max_classes_per_type", {}), d.get("max_params")))


def test_an_edge_object_with_an_infinite_weight_is_refused_by_the_constructor():
    from geoshare_opt.instance import Budget, Edge, Node
    with pytest.raises(InstanceError, match="finite"):
        Instance("x", [Node("a", "t"), Node("b", "t")], [Edge("a", "b", float("inf"))], Budget(1))


# ---------------------------------------------------------------------- 9. zero-node instances
EMPTY = instance_text([], [], {"max_classes": 1})


@pytest.mark.parametrize("solver", SOLVERS)
def test_zero_nodes_every_backend_returns_the_empty_colouring(tmp_path, solver):
    inst = write(tmp_path, "z.json", EMPTY)
    res = run("solve", inst, "--solver", solver, "-q")
    assert res.exit_code == 0, res.stderr
    payload = json.loads(res.stdout)
    assert payload["status"] == "feasible" and payload["assignment"] == {} and payload["objective"] == 0


@pytest.mark.parametrize("extra", [[], ["--ratio", "0.5"], ["--classes", "2"]])
@pytest.mark.parametrize("kind", ["all", "sequence", "cycle", "cycle-rev", "adjacent", "sandwich", "random", "none"])
def test_zero_nodes_every_baseline(tmp_path, kind, extra):
    inst = write(tmp_path, "z.json", EMPTY)
    res = run("baseline", inst, "--kind", kind, "-q", *extra)
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["assignment"] == {}


def test_zero_nodes_sweep_says_there_is_nothing_to_sweep(tmp_path):
    inst = write(tmp_path, "z.json", EMPTY)
    assert_one_line_error(run("sweep", inst, "-q"), needle="no nodes")


# ---------------------------------------------------------------------- 4. an output that is an input
def _solved(tmp_path):
    inst = write(tmp_path, "i.json", instance_text())
    result = tmp_path / "r.json"
    assert run("solve", inst, "--solver", "dsatur", "-q", "-o", result).exit_code == 0
    return inst, result


@pytest.mark.parametrize("args", [
    ["solve", "{i}", "--solver", "dsatur", "-o", "{i}"],
    ["solve", "{i}", "--solver", "dsatur", "--init", "{r}", "-o", "{r}"],
    ["solve", "{i}", "--solver", "dsatur", "-o", "{link}"],
    ["convert", "{g}", "-o", "{g}"],
    ["baseline", "{i}", "--kind", "all", "-o", "{i}"],
    ["export", "{i}", "--format", "lp", "-o", "{i}"],
    ["compare", "{i}", "--solvers", "dsatur", "--json", "{i}"],
    ["compare", "{i}", "--solvers", "dsatur", "--csv", "{i}"],
    ["sweep", "{i}", "--csv", "{i}"],
])
def test_an_output_equal_to_an_input_is_refused_before_any_work(tmp_path, args):
    inst, result = _solved(tmp_path)
    graph = write(tmp_path, "g.col", "p edge 2 1\ne 1 2\n")
    link = tmp_path / "link.json"
    link.symlink_to(inst)
    before = {p: p.read_bytes() for p in (inst, result, graph)}
    res = run(*[a.format(i=inst, r=result, g=graph, link=link) for a in args])
    assert_one_line_error(res, needle="input")
    assert {p: p.read_bytes() for p in before} == before


# ---------------------------------------------------------------------- 12. file modes follow the umask
@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_every_writer_follows_the_umask(tmp_path, umask_022):
    inst, result = _solved(tmp_path)
    graph = write(tmp_path, "g.col", "p edge 2 1\ne 1 2\n")
    outs = {
        "solve": (["solve", inst, "--solver", "dsatur", "-q", "-o", tmp_path / "s.json"], "s.json"),
        "convert": (["convert", graph, "-o", tmp_path / "c.json"], "c.json"),
        "baseline": (["baseline", inst, "--kind", "all", "-q", "-o", tmp_path / "b.json"], "b.json"),
        "export": (["export", inst, "-o", tmp_path / "m.lp"], "m.lp"),
        "compare": (["compare", inst, "--solvers", "dsatur", "-q", "--json", tmp_path / "cmp.json",
                     "--csv", tmp_path / "cmp.csv"], "cmp.json"),
        "sweep": (["sweep", inst, "-q", "--csv", tmp_path / "sw.csv"], "sw.csv"),
    }
    for name, (args, file) in outs.items():
        assert run(*args).exit_code == 0, name
        assert _mode(tmp_path / file) == 0o644, (name, oct(_mode(tmp_path / file)))
    assert _mode(tmp_path / "cmp.csv") == 0o644
    assert _mode(result) == 0o644


def test_atomic_writes_follow_a_strict_umask_too(tmp_path):
    from geoshare_opt.atomic import write_text_atomic
    old = os.umask(0o077)
    try:
        write_text_atomic(tmp_path / "x.txt", "x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "x.txt") == 0o600


# ---------------------------------------------------------------------- 13. validate: fast, and reads a capped amount
def test_validate_does_not_read_an_endless_file():
    proc = run_limited(["validate", "/dev/zero"], mem_gb=1.5, timeout=60)
    assert_clean_exit_2(proc, "/dev/zero")


@pytest.mark.parametrize("command", [["validate"], ["solve", "--solver", "dsatur"], ["convert"]])
def test_inputs_larger_than_the_documented_cap_are_refused(tmp_path, command):
    inst = write(tmp_path, "i.json", instance_text() + " " * 5000)
    proc = run_limited([command[0], inst, *command[1:]], env={"GEOSHARE_MAX_INPUT_BYTES": "4096"})
    assert_clean_exit_2(proc, "4096")


def test_validate_uses_the_parser_not_the_json_schema(tmp_path, monkeypatch):
    """validate once ran JSON Schema over every edge (10 s per 100k edges); it now runs the parser solve uses."""
    import jsonschema
    calls = []
    monkeypatch.setattr(jsonschema, "Draft202012Validator", lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(
        AssertionError("jsonschema called")))
    inst = write(tmp_path, "i.json", instance_text())
    res = run("validate", inst)
    assert res.exit_code == 0, res.stderr
    assert calls == [] and json.loads(res.stdout)["valid"] is True


# ---------------------------------------------------------------------- fuzzing around the same classes of defect
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

NUMBERS = st.one_of(st.integers(-3, 12), st.integers(-10**30, 10**30), st.sampled_from(
    ["0", "-1", "1e308", "-1e308", "1e400", "nan", "inf", "9" * 40, "1.5", "0x10", "", "1" * 19]))
GRAPH_LINES = st.lists(st.one_of(
    st.tuples(st.just("p edge"), NUMBERS, NUMBERS), st.tuples(st.just("e"), NUMBERS, NUMBERS),
    st.tuples(NUMBERS, NUMBERS), st.tuples(NUMBERS, NUMBERS, NUMBERS), st.just(("c", "comment"))), max_size=12)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])


@FUZZ
@given(GRAPH_LINES, st.sampled_from(["auto", "dimacs", "gset"]), st.one_of(st.none(), NUMBERS))
def test_graph_readers_answer_or_refuse_in_one_line(tmp_path, lines, fmt, k):
    """Any mix of header, edge and weight lines with numbers at every edge of their range: an instance whose
    size follows what was read, or a GraphFormatError/InputError, never another exception."""
    from geoshare_opt import convert
    path = tmp_path / "g.txt"
    path.write_text("\n".join(" ".join(map(str, line)) for line in lines) + "\n")
    read = {"auto": convert.read_graph, "dimacs": convert.read_dimacs, "gset": convert.read_gset}[fmt]
    kwargs = {} if k is None or not isinstance(k, int) else {"k": k}
    try:
        inst = read(path, **kwargs)
    except InputError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
        return
    assert len(inst.nodes) <= max(convert.ISOLATED_SLACK, 2 * len(lines)) + 2 * len(lines)
    inst.dumps()                              # every accepted instance can be written


@FUZZ
@given(st.sampled_from(["params", "layer", "max_classes", "max_params", "w", "meta"]),
       st.one_of(NUMBERS, st.floats(allow_nan=True, allow_infinity=True)))
def test_instance_numbers_answer_or_refuse_in_one_line(where, value):
    text = instance_text()
    literal = str(value) if not isinstance(value, float) else repr(value).replace("inf", "Infinity").replace(
        "nan", "NaN")
    if literal == "":
        literal = '""'
    text = {"params": text.replace('"type": "t"}', f'"type": "t", "params": {literal}}}', 1),
            "layer": text.replace('"type": "t"}', f'"type": "t", "layer": {literal}}}', 1),
            "max_classes": text.replace('"max_classes": 2', f'"max_classes": {literal}'),
            "max_params": text.replace('"max_classes": 2', f'"max_classes": 2, "max_params": {literal}'),
            "w": text.replace('"w": 1.0', f'"w": {literal}'),
            "meta": text[:-1] + f', "meta": {{"x": {literal}}}}}'}[where]
    try:
        inst = Instance.loads(text)
    except InstanceError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
        return
    assert Instance.loads(inst.dumps()).sha256 == inst.sha256
