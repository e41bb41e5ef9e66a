"""The README stays a short manual that gets a newcomer to the main job and the tests, and the documents link
only to files that exist (no citation of design notes kept outside the repository)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md")) + sorted((ROOT / "formulations").glob("*.md"))
QUICK_START = ("bash scripts/setup.sh && .venv/bin/geoshare-opt pipeline minilm",
               "bash scripts/setup.sh && .venv/bin/python -m pytest -q")


def test_readme_is_a_short_manual_with_the_two_quick_start_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) < 15_000, "README.md must stay under 15 KB: put details in docs/"
    for command in QUICK_START:
        assert command in text


def relative_links(text: str) -> list[str]:
    """Targets of markdown links that are paths in the repository (not URLs, not anchors)."""
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_links_point_to_files_that_exist(doc):
    missing = [t for t in relative_links(doc.read_text(encoding="utf-8")) if not (doc.parent / t).exists()]
    assert not missing, f"{doc.relative_to(ROOT)} links to missing files: {missing}"


def test_relative_links_are_found():
    assert relative_links("see [a](docs/a.md#x), [b](https://x.org/b) and [c](#c)") == ["docs/a.md"]


def test_nothing_cites_design_notes_outside_the_repository():
    sources = [README, *DOCS, *sorted((ROOT / "geoshare_opt").rglob("*.py"))]
    offenders = [str(p.relative_to(ROOT)) for p in sources if "shared/design" in p.read_text(encoding="utf-8")]
    assert not offenders, f"cite formulations/ or docs/ instead of shared/design: {offenders}"


def test_readme_shows_the_layer_diagram_of_the_architecture_document():
    diagram = re.search(r"```\n(.*?)```", (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8"), re.S)
    assert diagram and diagram.group(1) in README.read_text(encoding="utf-8")


def test_the_package_and_its_metadata_state_one_version():
    """The version lives in pyproject.toml and in provenance.py (results record it without importing packaging
    metadata, which an uninstalled checkout lacks); the two must agree."""
    import tomllib
    from geoshare_opt.provenance import __version__
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert __version__ == declared, f"provenance.__version__ {__version__} != pyproject.toml {declared}"
