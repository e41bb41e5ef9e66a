"""The command line: exit codes, one-line messages for bad input, clean stdout, atomic outputs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from geoshare_opt import Instance
from geoshare_opt.cli import cli
from geoshare_opt.solvers import default_registry
from geoshare_opt.solvers.base import Backend, Outcome


# a backend every checkout has (the greedy is fast and deterministic)
SOLVER = "dsatur"


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def assert_one_line_error(res, code=2, needle=None):
    assert res.exit_code == code, (res.exit_code, res.stdout, res.stderr)
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in res.stderr
    if needle:
        assert needle in lines[0], lines[0]


def write(tmp_path, name, payload) -> Path:
    p = tmp_path / name
    p.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return p


def base():
    return {"format": "geoshare-instance", "version": 1, "name": "b",
            "nodes": [{"id": "a", "type": "A"}, {"id": "b", "type": "A"}, {"id": "c", "type": "B"}],
            "edges": [{"u": "a", "v": "b", "w": 1.0}], "budget": {"max_classes": 2}}


def mutated(fn):
    d = base()
    fn(d)
    return d


BAD_INSTANCES = {
    "malformed": ('{"format": "geoshare-instance", "nodes": [', "malformed JSON"),
    "unknown_format": (mutated(lambda d: d.update(format="graphml")), "'graphml'"),
    "unknown_version": (mutated(lambda d: d.update(version=9)), "unsupported version 9"),
    "duplicate_id": (mutated(lambda d: d["nodes"].append({"id": "a", "type": "A"})), "duplicate node id 'a'"),
    "unknown_node": (mutated(lambda d: d["edges"].append({"u": "a", "v": "q", "w": 1})), "unknown node 'q'"),
    "self_loop": (mutated(lambda d: d["edges"].append({"u": "a", "v": "a", "w": 1})), "self-loop"),
    "nan_weight": (json.dumps(base()).replace('"w": 1.0', '"w": NaN'), "non-finite"),
    "inf_weight": (json.dumps(base()).replace('"w": 1.0', '"w": Infinity'), "non-finite"),
    "huge_weight": (json.dumps(base()).replace('"w": 1.0', '"w": 1e999'), "non-finite"),
    "negative_params": (mutated(lambda d: d["nodes"][0].update(params=-3)), "params=-3"),
    "fractional_params": (mutated(lambda d: d["nodes"][0].update(params=2.5)), "params=2.5"),
    "budget_below_types": (mutated(lambda d: d.update(budget={"max_classes": 1})), "below the number of non-empty types"),
    "not_utf8": ("\udcff", None),
}


@pytest.mark.parametrize("name", list(BAD_INSTANCES))
@pytest.mark.parametrize("command", ["solve", "validate"])
def test_bad_instance_exit_2_one_line(tmp_path, name, command):
    payload, needle = BAD_INSTANCES[name]
    if name == "not_utf8":
        p = tmp_path / "bad.json"
        p.write_bytes(b'{"format": "\xff\xfe"}')
        needle = "UTF-8"
    else:
        p = write(tmp_path, "bad.json", payload)
    args = [command, p] + (["--solver", SOLVER] if command == "solve" else [])
    assert_one_line_error(run(*args), needle=needle)


@pytest.mark.parametrize("args, needle", [
    (["solve", "{inst}", "--solver", "nosuch"], "unknown solver 'nosuch'"),
    (["solve", "{missing}"], "not found"),
    (["solve", "{dir}"], "directory"),
    (["solve", "{inst}", "--native", "novalue"], "KEY=VALUE"),
    (["solve", "{inst}", "--solver", SOLVER, "--init", "{missing}"], "not found"),
    (["solve", "{inst}", "--solver", SOLVER, "--time-limit", "-1"], "time limit"),
    (["solve", "{inst}", "--solver", SOLVER, "-o", "{missing}/deeper/out.json"], "cannot write"),
    (["solve", "{inst}", "--solver", SOLVER, "-o", "{dir}"], "is a directory"),
    (["compare", "{inst}", "--solvers", SOLVER, "--csv", "{missing}/x.csv"], "cannot write"),
    (["compare", "{inst}", "--solvers", "nosuch"], "unknown solver"),
    (["compare", "{inst}", "--solvers", SOLVER, "--repeats", "0"], "repeats"),
    (["validate", "{dir}"], "directory"),
    (["export", "{inst}", "-o", "{dir}/model.txt"], "--format"),
])
def test_bad_arguments_exit_2(tmp_path, instance_file, args, needle):
    missing = tmp_path / "missing.json"
    args = [a.format(inst=instance_file, missing=missing, dir=tmp_path) for a in args]
    assert_one_line_error(run(*args), needle=needle)


def test_unreadable_file(tmp_path, instance_file):
    # a path through a regular file fails with an OS error for every user (root included)
    assert_one_line_error(run("solve", f"{instance_file}/x.json"), needle="cannot read")
    assert_one_line_error(run("validate", f"{instance_file}/x.json"), needle="cannot read")
    if os.geteuid() != 0:  # root reads every file whatever its mode
        os.chmod(instance_file, 0)
        assert_one_line_error(run("solve", instance_file), needle="cannot read")


# ---------------------------------------------------------------------- solve
def test_solve_stdout_is_the_result(instance_file, tiny_instance):
    res = run("solve", instance_file, "--solver", SOLVER, "--seed", "4", "--time-limit", "5")
    assert res.exit_code == 0, res.stderr
    payload = json.loads(res.stdout)
    assert payload["format"] == "geoshare-result" and payload["status"] == "feasible"
    assert payload["instance_sha256"] == tiny_instance.sha256
    assert payload["options"]["seed"] == 4 and payload["options"]["time_limit"] == 5
    summary = res.stderr.strip().splitlines()[-1]
    assert summary.startswith(f"{SOLVER}: ") and "objective" in summary and "gap" in summary


def test_solve_quiet_and_output_file(tmp_path, instance_file):
    out = tmp_path / "r.json"
    res = run("solve", instance_file, "--solver", SOLVER, "-o", out, "--quiet")
    assert res.exit_code == 0 and res.stdout == "" and res.stderr == ""
    assert json.loads(out.read_text())["status"] == "feasible"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "tiny.json"]  # no temp file left
    res = run("solve", instance_file, "--solver", SOLVER, "-o", "-", "-q")
    assert json.loads(res.stdout)["status"] == "feasible"


def test_solve_native_values_parsed_as_json(monkeypatch, instance_file):
    seen = {}

    class Spy(Backend):
        name, summary, exact, gives_bound, determinism = "spy", "test", False, False, "deterministic"

        def run(self, instance, options, ctx):
            seen.update(options.native)
            return Outcome("completed", np.array([0, 1, 1, 2, 2]))

    monkeypatch.setitem(default_registry._entries, "spy", Spy)
    res = run("solve", instance_file, "--solver", "spy", "--native", "workers=1", "--native", "flag=true",
              "--native", "mode=fast", "--native", "list=[1, 2]", "--native", "ratio=0.5", "--native", "eq=a=b")
    assert res.exit_code == 0, res.stderr
    assert seen == {"workers": 1, "flag": True, "mode": "fast", "list": [1, 2], "ratio": 0.5, "eq": "a=b"}
    assert json.loads(res.stdout)["options"]["native"] == seen


@pytest.mark.parametrize("behaviour, code, termination", [
    ("kbd_nothing", 130, "interrupted"),
    ("kbd_incumbent", 0, "interrupted"),
    ("crash_nothing", 1, "error"),
    ("none_found", 3, "completed"),
])
def test_exit_codes_by_outcome(monkeypatch, instance_file, behaviour, code, termination):
    class Scripted(Backend):
        name, summary, exact, gives_bound, determinism = "scripted", "test", False, False, "deterministic"

        def run(self, instance, options, ctx):
            if behaviour == "kbd_incumbent":
                ctx.offer(np.array([0, 1, 1, 2, 2]))
            if behaviour.startswith("kbd"):
                raise KeyboardInterrupt
            if behaviour == "crash_nothing":
                raise RuntimeError("backend bug")
            return Outcome("completed", None)

    monkeypatch.setitem(default_registry._entries, "scripted", Scripted)
    res = run("solve", instance_file, "--solver", "scripted")
    assert res.exit_code == code, res.stderr
    if code == 130:      # stopped with nothing found: no result at all (docs/cli.md, exit codes)
        assert res.stdout == ""
    else:
        assert json.loads(res.stdout)["termination"] == termination  # a result is written in every other case


def test_infeasible_budget_exit_3(tmp_path):
    inst = Instance.build([{"id": i, "type": "t"} for i in "abc"],
                          [("a", "b", "hard"), ("b", "c", "hard"), ("a", "c", "hard")], 2)
    p = tmp_path / "inf.json"
    inst.save(p)
    for solver in ("cpsat", SOLVER):
        res = run("solve", p, "--solver", solver, "--time-limit", "2")
        assert res.exit_code == 3, (solver, res.stderr)
        assert json.loads(res.stdout)["status"] == "none"


def test_native_example_from_the_docs(instance_file):
    res = run("solve", instance_file, "--solver", "cpsat", "--native", "num_search_workers=1", "-q")
    payload = json.loads(res.stdout)
    assert res.exit_code == 0 and payload["termination"] == "optimal", payload["message"]
    assert payload["options"]["native"] == {"num_search_workers": 1}


def test_init_warm_start(tmp_path, instance_file):
    first = tmp_path / "first.json"
    assert run("solve", instance_file, "--solver", SOLVER, "-o", first, "-q").exit_code == 0
    res = run("solve", instance_file, "--solver", "cpsat", "--init", first, "--native", "num_workers=1")
    assert res.exit_code == 0, res.stderr
    payload = json.loads(res.stdout)
    assert payload["options"]["warm_start"] is True and payload["termination"] == "optimal"
    assert payload["objective"] == pytest.approx(2.0)


# ---------------------------------------------------------------------- subprocess: the real entry point
def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "geoshare_opt.cli"] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=120, **kw)


@pytest.mark.parametrize("solver", ["highs", "pulp", "cpsat"])
def test_subprocess_stdout_is_pure_json(instance_file, solver):
    out = _cli("solve", instance_file, "--solver", solver, "--time-limit", "10")
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)  # a banner or log line on stdout would break this
    assert payload["solver"] == solver and payload["termination"] == "optimal"
    assert payload["objective"] == pytest.approx(2.0)


def test_ctrl_c_keeps_the_incumbent(tmp_path):
    """SIGINT mid-run: the incumbent is written with termination "interrupted" and exit 0 (or, if the run had
    already ended, its normal result); never a traceback, never an empty stdout with exit 0."""
    rng = np.random.default_rng(0)
    n = 300
    edges = [(f"n{i}", f"n{j}", float(rng.normal())) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.1]
    p = tmp_path / "big.json"
    Instance.build([{"id": f"n{i}", "type": "t"} for i in range(n)], edges, 6).save(p)
    # a fresh session with SIGINT at its default: a test run in the background (SIGINT ignored) still delivers it
    proc = subprocess.Popen([sys.executable, "-m", "geoshare_opt.cli", "solve", str(p), "--solver",
                             "anneal", "--time-limit", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    t0 = time.monotonic()      # the stop lands while the solve runs: after its first incumbent, whatever the load
    while not any("incumbent" in line for line in lines) and proc.poll() is None and time.monotonic() - t0 < 120:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out = proc.stdout.read()
    proc.wait(timeout=60)
    reader.join(timeout=60)
    errs = "".join(lines)
    assert "Traceback" not in errs
    if proc.returncode == 130:       # stopped before any assignment: nothing written
        assert out == ""
        return
    payload = json.loads(out)
    assert proc.returncode == 0 and payload["status"] == "feasible"
    assert payload["termination"] in ("interrupted", "completed") and payload["wall_time_s"] < 30


# ---------------------------------------------------------------------- compare
def test_compare_rows_and_files(tmp_path, instance_file):
    csv_path, json_path = tmp_path / "rows.csv", tmp_path / "rows.json"
    res = run("compare", instance_file, instance_file, "--solvers", f"{SOLVER},cpsat", "--repeats", "2",
              "--time-limit", "5", "--csv", csv_path, "--json", json_path)
    assert res.exit_code == 0, res.stderr
    assert res.stdout == ""  # both outputs went to files
    rows = json.loads(json_path.read_text())
    assert len(rows) == 2 * 2 * 2
    assert {r["seed"] for r in rows} == {0, 1}
    cp = [r for r in rows if r["solver"] == "cpsat"]
    assert all(r["best"] and r["objective"] == pytest.approx(2.0) and r["best_bound"] == pytest.approx(2.0)
               for r in cp)
    assert csv_path.read_text().splitlines()[0].startswith("instance,solver,repeat,seed")
    assert "best" in res.stderr and "*" in res.stderr  # the table


def test_compare_stdout_formats(instance_file):
    res = run("compare", instance_file, "--solvers", SOLVER, "-q")
    assert res.exit_code == 0 and res.stderr == ""
    assert json.loads(res.stdout)[0]["solver"] == SOLVER
    res = run("compare", instance_file, "--solvers", SOLVER, "-q", "--csv", "-")
    assert res.stdout.splitlines()[0].startswith("instance,solver")
    res = run("compare", instance_file, "--solvers", f"{SOLVER},cpsat", "-q", "--native", "cpsat:num_workers=1")
    assert res.exit_code == 0 and len(json.loads(res.stdout)) == 2
    assert_one_line_error(run("compare", instance_file, "--solvers", SOLVER, "--native", "cpsat:num_workers=1"),
                          needle="SOLVER:KEY=VALUE")
    assert_one_line_error(run("compare", instance_file, "--solvers", SOLVER, "--native", f"{SOLVER}:bogus=1"),
                          needle="bogus")


# ---------------------------------------------------------------------- validate
def test_validate_instance_summary(instance_file, tiny_instance):
    res = run("validate", instance_file)
    assert res.exit_code == 0
    s = json.loads(res.stdout)
    assert s == {**s, "kind": "instance", "nodes": 5, "edges": 5, "hard_edges": 1, "types": {"A": 3, "B": 2},
                 "sha256": tiny_instance.sha256}


def test_validate_result_and_tampering(tmp_path, instance_file):
    out = tmp_path / "r.json"
    assert run("solve", instance_file, "--solver", "cpsat", "-o", out, "-q").exit_code == 0
    res = run("validate", out, "--instance", instance_file)
    assert res.exit_code == 0 and json.loads(res.stdout)["checked_against_instance"] == str(instance_file)
    # the result records where its instance came from: validate finds it without --instance
    res = run("validate", out)
    assert res.exit_code == 0 and json.loads(res.stdout)["checked_against_instance"] == str(instance_file.resolve())
    good = json.loads(out.read_text())
    tampered = {
        "objective": (dict(good, objective=good["objective"] - 1), "objective"),
        "assignment": (dict(good, assignment=dict(good["assignment"], c=good["assignment"]["a"])), "infeasible"),
        "bound": (dict(good, bound=good["objective"] + 5), "bound"),
        "hash": (dict(good, instance_sha256="f" * 64), "not this one"),
        "status": (dict(good, status="maybe"), "unknown status"),
    }
    for key, (payload, needle) in tampered.items():
        p = write(tmp_path, f"t_{key}.json", payload)
        assert_one_line_error(run("validate", p, "--instance", instance_file), needle=needle)
    # without --instance (and found via instance_path): the recomputed objective still catches tampering
    p = write(tmp_path, "t_obj.json", dict(good, objective=good["objective"] - 1))
    assert_one_line_error(run("validate", p), needle="objective")
    # with no instance at all, internal consistency is still checked
    p = write(tmp_path, "t_gap.json", dict(good, gap=0.5, instance_path=""))
    assert_one_line_error(run("validate", p), needle="gap")
    res = run("validate", write(tmp_path, "t_alone.json", dict(good, instance_path="")))
    assert res.exit_code == 0 and json.loads(res.stdout)["checked_against_instance"] is None


def test_validate_unknown_format(tmp_path):
    assert_one_line_error(run("validate", write(tmp_path, "x.json", {"format": "x"})), needle="unknown format")


# ---------------------------------------------------------------------- solvers, convert, export
def test_solvers_listing():
    res = run("solvers")
    assert res.exit_code == 0
    rows = json.loads(res.stdout)
    names = {r["name"] for r in rows}
    assert {"auto", "cpsat", "highs", "pulp", "dsatur", "anneal"} <= names
    for r in rows:
        assert set(r) >= {"name", "available", "reason", "version", "exact", "gives_bound", "determinism"}
        assert r["available"] or r["reason"]
    assert "name" in res.stderr.splitlines()[0]


DIMACS = "c tiny\np edge 4 5\ne 1 2\ne 2 3\ne 3 1\ne 3 4\ne 1 2\n"
GSET = "4 3\n1 2 1\n2 3 -1\n3 4 1\n"


@pytest.mark.parametrize("text, args, hard, k", [
    (DIMACS, ["--k", "3"], True, 3),
    (DIMACS, ["--k", "2", "--soft"], False, 2),
    (DIMACS, ["--k", "3", "--format", "dimacs"], True, 3),
    (GSET, [], False, 2),
    (GSET, ["--format", "gset", "--k", "3"], False, 3),
])
def test_convert(tmp_path, text, args, hard, k):
    src = write(tmp_path, "g.txt", text)
    out = tmp_path / "g.json"
    res = run("convert", src, "-o", out, *args)
    assert res.exit_code == 0, res.stderr
    inst = Instance.load(out)
    assert inst.budget.max_classes == k
    assert all(e.hard == hard for e in inst.edges)
    assert len(inst.edges) == (4 if text is DIMACS else 3)  # DIMACS duplicate edge dropped
    res = run("convert", src, *args)  # to stdout
    assert Instance.loads(res.stdout).sha256 == inst.sha256


def test_convert_bad_file(tmp_path):
    src = write(tmp_path, "g.txt", "hello world\n")
    res = run("convert", src)
    assert res.exit_code == 2 and "Traceback" not in res.stderr and res.stdout == ""


@pytest.mark.parametrize("fmt", ["lp", "mps"])
def test_export(tmp_path, instance_file, fmt):
    out = tmp_path / f"model.{fmt}"
    res = run("export", instance_file, "--format", fmt, "-o", out)
    assert res.exit_code == 0, res.stderr
    # the exported model, solved by an external reader, has the instance's optimum (2.0 for tiny)
    from geoshare_opt.solvers.quiet import new_highs
    h = new_highs()
    h.readModel(str(out))
    h.run()
    assert h.getInfo().objective_function_value == pytest.approx(2.0, abs=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["tiny.json", out.name])
    # suffix-inferred format
    assert run("export", instance_file, "-o", tmp_path / f"again.{fmt}").exit_code == 0


# ---------------------------------------------------------------------- helpers of the commands
def test_progress_line_modes():
    import io
    from geoshare_opt.cli.common import ProgressLine

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    line = ProgressLine("x:", stream=tty, every=0)
    line({"event": "incumbent", "objective": 3.0, "elapsed": 0.1})
    line.close()
    assert tty.getvalue().startswith("\r\x1b[K") and "incumbent 3" in tty.getvalue() and tty.getvalue().endswith("\n")
    log = io.StringIO()
    line = ProgressLine("x:", stream=log, every=3600)  # throttled: one line, then nothing until `every` passes
    for k in range(50):
        line({"event": "incumbent", "objective": float(k), "elapsed": 0.1})
    line.close()
    assert log.getvalue().count("\n") == 1 and "\r" not in log.getvalue()
    quiet = io.StringIO()
    line = ProgressLine("x:", enabled=False, stream=quiet)
    line({"event": "incumbent", "objective": 1.0})
    line.close()
    assert quiet.getvalue() == ""


def test_parse_native_and_table():
    from geoshare_opt import InputError
    from geoshare_opt.cli.common import format_table, parse_native, rows_to_csv
    assert parse_native(["a=1", "b= 2.5", "c=NaN", "d=", "e={\"x\": 1}"]) == {
        "a": 1, "b": 2.5, "c": "NaN", "d": "", "e": {"x": 1}}
    for bad in ("=1", "novalue"):
        with pytest.raises(InputError):
            parse_native([bad])
    rows = [{"name": "a", "v": 1.5, "best": True}, {"name": "bb", "v": None, "best": False}]
    table = format_table(rows, ["name", "v", "best"]).splitlines()
    assert len(table) == 4 and table[2].endswith("*") and "-" in table[3]
    assert rows_to_csv(rows, ["name", "v"]).splitlines() == ["name,v", "a,1.5", "bb,"]


def test_convert_and_solve_shared_dimacs(tmp_path, reference_data):
    """myciel3 (chi = 4): converted with hard edges at K = 4 it is colourable (optimum 0); with unit soft
    weights at K = 3 its optimum is 1 (instances/reference/best_known_values.csv)."""
    src = reference_data / "dimacs" / "myciel3.col"
    hard, soft = tmp_path / "hard.json", tmp_path / "soft.json"
    assert run("convert", src, "-o", hard, "--k", "4").exit_code == 0
    assert run("convert", src, "-o", soft, "--k", "3", "--soft").exit_code == 0
    assert len(Instance.load(hard).edges) == 20
    for path, expected in ((hard, 0.0), (soft, 1.0)):
        res = run("solve", path, "--solver", "cpsat", "--time-limit", "20", "-q")
        payload = json.loads(res.stdout)
        assert res.exit_code == 0 and payload["termination"] == "optimal"
        assert payload["objective"] == pytest.approx(expected)


def test_warm_up_compiles_every_kernel_the_solvers_call_and_prints_nothing_on_stdout():
    from geoshare_opt.solvers import _anneal_kernels as K
    from geoshare_opt.solvers import _bls_kernels as B
    from geoshare_opt.solvers import _greedy_kernels as G
    from geoshare_opt.solvers import _ising_kernels as I
    res = run("warm-up")
    assert res.exit_code == 0
    assert res.stdout == ""
    assert "numba kernels ready" in res.stderr
    # every kernel the backends call from Python has a compiled signature in this process now
    called = [K.anneal_sweeps, K.build_tables, K.descend, K.hard_conflicts, K.objective, K.params_state, K.perturb,
              K.tabucol, I.flip_gains, I.ising_sweeps, B.bls, G.dsatur]
    assert [k.py_func.__name__ for k in called if not k.signatures] == []
