"""Extract English prose from the Python standard library's docstrings into a frozen snapshot.

Run ``python -m geoshare_opt.data.build_prose`` to regenerate ``stdlib_prose.txt.gz``. The snapshot is committed so
calibration and evaluation data do not change with the Python version; this script documents how it was made.

Sources: docstrings of modules, classes and functions (read with ``ast``, nothing is imported or executed) of the
pure-Python standard library, excluding tests, demos, IDLE, vendored packages and site-packages; plus the
reference-manual topics of ``pydoc_data.topics``. Each docstring is split into paragraphs at blank lines; a paragraph
is kept when it reads as prose (see ``clean_paragraph``). Duplicates (after normalising case and whitespace) are
dropped, keeping the first in a fixed order (sorted file paths, then source order).
"""
from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import inspect
import re
import sys
import sysconfig
from pathlib import Path

SNAPSHOT = Path(__file__).resolve().parent / "stdlib_prose.txt.gz"
SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "turtledemo", "site-packages", "dist-packages", "ensurepip",
             "__pycache__", "pydoc_data", "tkinter", "distutils", "encodings"}
MIN_WORDS = 12
MAX_WORDS = 400

_DOCTEST = re.compile(r"^\s*(>>>|\.\.\.\s)")
_SIGNATURE = re.compile(r"^[\w.]+\(.*\)\s*(->.*)?$")        # "name(arg, ...)" lines opening C-level docstrings
_FIELD = re.compile(r"^\s*[:@]\w+")                          # ":param x:" / "@return" field lists
_RST_DIRECTIVE = re.compile(r"^\s*\.\. ")
_BULLET = re.compile(r"^\s*([-*+]|\d+[.)]|[a-z][.)])\s")
_CODE_CHARS = re.compile(r"[{}\[\]<>=_|\\#$`]")


def clean_paragraph(lines: list[str]) -> str | None:
    """One paragraph as a single line of prose, or None when it looks like code, a signature, a table or a list."""
    if not lines:
        return None
    indents = {len(l) - len(l.lstrip()) for l in lines}
    if len(indents) > 1:            # indented continuation blocks are code samples, tables or definition lists
        return None
    for line in lines:
        if (_DOCTEST.match(line) or _FIELD.match(line) or _RST_DIRECTIVE.match(line) or _BULLET.match(line)
                or line.rstrip().endswith("::") or set(line.strip()) <= set("-=~*^+|")):
            return None
    if _SIGNATURE.match(lines[0].strip()):
        return None
    text = " ".join(l.strip() for l in lines)
    text = re.sub(r"\s+", " ", text).strip()
    words = text.split()
    if not (MIN_WORDS <= len(words) <= MAX_WORDS):
        return None
    letters = sum(c.isalpha() for c in text)
    if letters < 0.75 * len(text.replace(" ", "")):   # mostly punctuation/digits: a table, a formula or code
        return None
    if len(_CODE_CHARS.findall(text)) > max(3, len(words) // 8):
        return None
    if not text[0].isupper() or text[-1] not in ".!?)":
        return None
    if not text.isascii():
        return None
    return text


def paragraphs_of(doc: str) -> list[str]:
    out, block = [], []
    for line in inspect.cleandoc(doc).splitlines() + [""]:
        if line.strip():
            block.append(line.rstrip())
            continue
        cleaned = clean_paragraph(block)
        if cleaned:
            out.append(cleaned)
        block = []
    return out


def docstrings_of_file(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return []
    docs = []
    for node in ast.walk(tree):  # breadth-first: deterministic for a given file
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                docs.append(doc)
    return docs


def stdlib_files(root: Path) -> list[Path]:
    files = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS or part.startswith(("test_", "config-")) for part in rel.parts):
            continue
        files.append(path)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def extract(root: Path | None = None, topics: bool = True) -> list[str]:
    root = Path(root or sysconfig.get_paths()["stdlib"])
    sources: list[str] = []
    for path in stdlib_files(root):
        sources.extend(docstrings_of_file(path))
    if topics:
        try:
            from pydoc_data.topics import topics as topic_texts
        except ImportError:
            topic_texts = {}
        sources.extend(topic_texts[k] for k in sorted(topic_texts))
    seen, out = set(), []
    for doc in sources:
        for para in paragraphs_of(doc):
            key = " ".join(para.lower().split())
            if key not in seen:
                seen.add(key)
                out.append(para)
    return out


def write_snapshot(paragraphs: list[str], path: Path = SNAPSHOT) -> str:
    """Write one paragraph per line, gzip with a zero mtime so the bytes depend only on the text; return sha256."""
    import os
    import tempfile

    data = ("\n".join(paragraphs) + "\n").encode("utf-8")
    blob = gzip.compress(data, compresslevel=9, mtime=0)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(blob)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return hashlib.sha256(blob).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SNAPSHOT, help="snapshot path (default: the packaged one)")
    parser.add_argument("--stdlib", type=Path, default=None, help="standard-library directory (default: this Python's)")
    args = parser.parse_args(argv)
    paragraphs = extract(args.stdlib)
    digest = write_snapshot(paragraphs, args.out)
    words = sum(len(p.split()) for p in paragraphs)
    print(f"{len(paragraphs)} paragraphs, {words} words, Python {sys.version.split()[0]} -> {args.out} "
          f"(sha256 {digest[:16]})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
