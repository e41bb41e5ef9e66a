"""The package's import graph keeps the layers of docs/architecture.md (read from its table, so the document and
the test cannot drift): no import against the layer order, no cycle, no module importing the package root, no
module-level torch in the torch-free layers. Every ``import`` statement counts, also those inside functions."""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "geoshare_opt"
ARCHITECTURE = ROOT / "docs" / "architecture.md"


@dataclass(frozen=True)
class Layer:
    name: str
    patterns: tuple[str, ...]
    may_import: frozenset[str]
    torch: bool

    def holds(self, module: str) -> bool:
        for pattern in self.patterns:
            if pattern.endswith(".*"):
                if module == pattern[:-2] or module.startswith(pattern[:-1]):
                    return True
            elif module == pattern:
                return True
        return False


@dataclass(frozen=True)
class Import:
    source: str        # importing module, e.g. "geoshare_opt.solvers.anneal"
    target: str        # imported module or package
    line: int
    top_level: bool    # executed on import (not inside a function)


def parse_layers(text: str) -> list[Layer]:
    """The rows of the table under '## Layers' in docs/architecture.md."""
    section = text.split("## Layers", 1)[1]
    layers = []
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("Layer", "") or set(cells[0]) <= {"-"}:
            continue
        patterns = tuple("geoshare_opt" if m == "geoshare_opt" else f"geoshare_opt.{m}"
                         for m in re.findall(r"`([\w.*]+)`", cells[1]))
        allowed = frozenset(x.strip() for x in cells[2].split(",") if x.strip() not in ("", "—", "-"))
        layers.append(Layer(cells[0], patterns, allowed, cells[3].lower().startswith("yes")))
    return layers


@lru_cache(maxsize=None)
def layers() -> list[Layer]:
    return parse_layers(ARCHITECTURE.read_text(encoding="utf-8"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@lru_cache(maxsize=None)
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _targets(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """Modules an import statement loads: for ``from X import y`` the submodule X.y when it is one, else X."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = module.split(".")[: len(module.split(".")) - (0 if is_package else 1)]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    known = modules()
    return [f"{source}.{a.name}" if f"{source}.{a.name}" in known else source for a in node.names]


@lru_cache(maxsize=None)
def trees() -> dict[str, ast.Module]:
    return {module: ast.parse(path.read_text(encoding="utf-8")) for module, path in modules().items()}


@lru_cache(maxsize=None)
def imports() -> tuple[Import, ...]:
    out = []
    for module, path in modules().items():
        tree = trees()[module]
        nested = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for n in ast.walk(f) if n is not f}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(node, module, path.name == "__init__.py"):
                    out.append(Import(module, target, node.lineno, id(node) not in nested))
    return tuple(out)


def layer_of(module: str) -> Layer | None:
    return next((layer for layer in layers() if layer.holds(module)), None)


def _where(imp: Import) -> str:
    return f"{modules()[imp.source].relative_to(ROOT)}:{imp.line}"


# ---------------------------------------------------------------------------------------------------- the checks
def test_the_layer_table_is_read():
    names = [layer.name for layer in layers()]
    assert {"core", "solvers", "api", "specs", "frontend", "materialize", "cli", "root"} <= set(names), names
    for layer in layers():
        assert layer.patterns, f"layer {layer.name} lists no modules"
        assert layer.may_import <= set(names), f"layer {layer.name} may import an unknown layer"


def test_every_module_belongs_to_exactly_one_layer():
    for module in modules():
        owners = [layer.name for layer in layers() if layer.holds(module)]
        assert len(owners) == 1, (f"{module} belongs to {owners or 'no layer'}: add it to one row of the table in "
                                  "docs/architecture.md")


def test_imports_follow_the_layers():
    broken = []
    for imp in imports():
        if not imp.target.startswith("geoshare_opt"):
            continue
        source, target = layer_of(imp.source), layer_of(imp.target)
        if target is None or target is source:
            continue
        if target.name not in source.may_import:
            broken.append(f"{_where(imp)}: {imp.source} ({source.name}) imports {imp.target} ({target.name})")
    assert not broken, "imports against docs/architecture.md:\n" + "\n".join(broken)


def test_no_module_imports_the_package_root():
    offenders = [f"{_where(i)}: {i.source}" for i in imports() if i.target == "geoshare_opt" and i.source != "geoshare_opt"]
    assert not offenders, "import the defining module instead of the package root:\n" + "\n".join(offenders)


def test_no_module_level_torch_in_the_torch_free_layers():
    offenders = [f"{_where(i)}: {i.source}" for i in imports()
                 if i.top_level and i.target.split(".")[0] == "torch" and not layer_of(i.source).torch]
    assert not offenders, "torch imported at module level in a torch-free layer:\n" + "\n".join(offenders)


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_no_import_cycles():
    edges: dict[str, set[str]] = {m: set() for m in modules()}
    for imp in imports():
        if imp.target in edges and imp.target != imp.source:
            edges[imp.source].add(imp.target)
    assert import_cycles(edges) == []


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}}, [["a", "b", "c"]]),
])
def test_the_cycle_finder_finds_cycles(edges, expected):
    assert import_cycles(edges) == expected


def test_the_checks_catch_a_broken_layering():
    """The table parser and the rules on a made-up graph: a back end importing the solvers is caught."""
    table = parse_layers("## Layers\n| Layer | Modules | May import | torch |\n|---|---|---|---|\n"
                         "| core | `instance` | — | no |\n| solvers | `solvers.*` | core | no |\n"
                         "| materialize | `materialize.*` | core | yes |\n")
    materialize = next(layer for layer in table if layer.name == "materialize")
    solvers = next(layer for layer in table if layer.name == "solvers")
    assert materialize.holds("geoshare_opt.materialize.common") and solvers.holds("geoshare_opt.solvers")
    assert "solvers" not in materialize.may_import and materialize.torch and not solvers.torch


# ---------------------------------------------------------------------------------------------------- routine length
MAX_FUNCTION_LINES = 80


def is_numba_kernel(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Decorated ``@njit``/``@numba.njit``/``@jit``/``@numba.jit`` (with or without arguments): a compiled kernel,
    whose loops stay in one function on purpose."""
    for dec in fn.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name in ("njit", "jit"):
            return True
    return False


def long_functions(tree: ast.AST, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int, int]]:
    """(name, first line, lines) of every function or method longer than ``limit`` lines, counting the whole
    definition (decorators, signature, docstring, body)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not is_numba_kernel(node):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            lines = node.end_lineno - first + 1
            if lines > limit:
                out.append((node.name, first, lines))
    return out


def test_no_function_is_longer_than_80_lines():
    offenders = [f"{path.relative_to(ROOT)}:{first}: {name} ({lines} lines)"
                 for module, path in modules().items() for name, first, lines in long_functions(trees()[module])]
    assert not offenders, (f"functions longer than {MAX_FUNCTION_LINES} lines (split them into steps with one job "
                           "each):\n" + "\n".join(offenders))


def test_the_length_check_counts_the_whole_definition_and_spares_kernels():
    body = "\n".join(f"    x = {i}" for i in range(78))
    tree = ast.parse(f"@decorator\ndef long():\n{body}\n    return x\n\n"
                     f"@njit(cache=True)\ndef kernel():\n{body}\n{body}\n\n"
                     f"def short():\n{body}\n")
    assert long_functions(tree) == [("long", 1, 81)]
