"""Published reference values for the public benchmarks (shared/data/best_known_values.csv).

The CSV is long-format: several rows per instance (one per source). This module folds them into one record per
graph: the best published Max-Cut for Gset (the largest cut over all sources), the chromatic number or its
bounds for DIMACS, and the exact small min-k-partition optima. The data folder lives beside the repository
(``<repo>/../shared/data``); ``GEOSHARE_SHARED_DATA`` overrides it.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import InputError

CSV_NAME = "best_known_values.csv"


def shared_data_dir() -> Path | None:
    """The reference data folder, or None when it is not there (tests then skip)."""
    env = os.environ.get("GEOSHARE_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    for c in candidates:
        if (c / CSV_NAME).is_file():
            return c.resolve()
    return None


@dataclass(frozen=True)
class GraphReference:
    family: str                      # "Gset" or "DIMACS-COLOR"
    instance: str
    file: str                        # path relative to the data folder
    n: int
    m: int                           # unique edges
    total_weight: float
    best_cut: float | None = None    # Gset: best published Max-Cut (k = 2)
    cut_source: str = ""
    chi_low: int | None = None       # DIMACS: chromatic number bounds (equal when exact)
    chi_high: int | None = None
    min_kpartition: dict = field(default_factory=dict)   # k -> (value, kind): "optimal ..." or "upper bound only ..."

    @property
    def chi(self) -> int | None:
        """The chromatic number when known exactly, else None."""
        return self.chi_low if self.chi_low is not None and self.chi_low == self.chi_high else None

    @property
    def best_min2partition(self) -> float | None:
        """total weight − best cut: an upper bound on the min 2-partition (exact when the cut is optimal)."""
        return None if self.best_cut is None else self.total_weight - self.best_cut

    def path(self, data_dir: Path | None = None) -> Path:
        d = data_dir or shared_data_dir()
        if d is None:
            raise InputError("reference data folder (../shared/data) not found")
        return d / self.file


def _num(s: str) -> float:
    v = float(s)
    return int(v) if v.is_integer() else v


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, GraphReference]:
    recs: dict[str, dict] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            name = row["instance"]
            r = recs.setdefault(name, {
                "family": row["family"], "instance": name, "file": row["file"], "n": int(row["n"]),
                "m": int(row["m"]), "total_weight": _num(row["total_weight"]), "min_kpartition": {}})
            problem = row["problem"]
            if problem == "max-k-cut" and row["k"] == "2":
                cut = _num(row["value"])
                if r.get("best_cut") is None or cut > r["best_cut"]:
                    r["best_cut"], r["cut_source"] = cut, row["source"]
            elif problem == "graph coloring":
                lo, _, hi = row["value"].partition("..")
                r["chi_low"], r["chi_high"] = int(lo), int(hi or lo)
            elif problem.startswith("min-k-partition"):
                r["min_kpartition"][int(row["k"])] = (_num(row["value"]), row["value_kind"])
    return {k: GraphReference(**v) for k, v in recs.items()}


def references(data_dir: str | os.PathLike | None = None) -> dict[str, GraphReference]:
    """All references keyed by instance name (``"G1"``, ``"myciel3"``, ...). Raises ``InputError`` if absent."""
    d = Path(data_dir) if data_dir is not None else shared_data_dir()
    if d is None or not (d / CSV_NAME).is_file():
        raise InputError(f"{CSV_NAME} not found (expected in ../shared/data next to the repository)")
    return dict(_load(str((d / CSV_NAME).resolve())))


def gset(data_dir=None) -> list[GraphReference]:
    """Gset references in numeric order (G1, G2, ...)."""
    refs = [r for r in references(data_dir).values() if r.family == "Gset"]
    return sorted(refs, key=lambda r: int(r.instance[1:]))


def dimacs(data_dir=None) -> list[GraphReference]:
    return sorted((r for r in references(data_dir).values() if r.family != "Gset"), key=lambda r: (r.n, r.instance))
