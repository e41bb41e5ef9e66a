"""The assignment MILP (formulations/milp.md), built once into a solver-neutral structure.

HiGHS reads the structure directly, PuLP rebuilds it with its own API, and ``export`` writes it as LP or MPS for
any external solver. Only ``x`` is integer: the pair indicators ``y``, the class-used indicators ``z`` and the class
storage ``s`` take integral values at every vertex once ``x`` is integral, so they are continuous in ``[0, 1]``
(``[0, max p]`` for ``s``).

Variables per part t (type t, ``C_t = cap`` class slots, local nodes i):
  x[t,i,c]  binary   node i in slot c            (with symmetry breaking only c <= i exists)
  y[t,e]    [0,1]    both ends of soft edge e share a slot, cost w_e
  z[t,c]    [0,1]    slot c is used              (only when the global class budget or a parameter cap can bind)
  s[t,c]    [0,P]    parameters stored by slot c (only for a parameter cap on a part with non-uniform params)
"""
from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from ..instance import Instance
from .budget import MAX_TRIANGLES, NO_CLOCK, BuildClock
from .curves import Model, Part, first_appearance, parts_of


@dataclass
class Milp:
    """min cost·v + offset  s.t.  row_lb <= A v <= row_ub,  lb <= v <= ub,  v_j integer where ``integer[j]``."""

    names: list[str]
    cost: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    integer: np.ndarray
    A: sp.csr_matrix
    row_lb: np.ndarray
    row_ub: np.ndarray
    row_names: list[str]
    x_cols: list[np.ndarray]                  # per part: (n, C) column index of x[i,c], -1 where it does not exist
    y_cols: list[np.ndarray]                  # per part: column of y per soft edge
    z_cols: list[np.ndarray | None]           # per part: column of z per slot, or None
    s_cols: list[np.ndarray | None]           # per part: column of s per slot, or None
    model: Model = field(repr=False, default=None)
    scale: float = 1.0                        # cost = scale * w (see build's ``normalise``)
    optional: np.ndarray | None = None        # per row: a valid cut (triangle row) that may be left out
    cuts: dict = field(default_factory=dict)  # triangle rows added, and whether time or MAX_TRIANGLES cut them short

    @property
    def n_cols(self) -> int:
        return len(self.names)

    @property
    def n_rows(self) -> int:
        return len(self.row_names)

    def labels(self, values: np.ndarray) -> list[np.ndarray]:
        """Per-part labels from a column vector (the slot with the largest x value, robust to 0.9999999)."""
        out = []
        for xc in self.x_cols:
            vals = np.where(xc >= 0, np.asarray(values)[np.maximum(xc, 0)], -1.0)
            out.append(np.argmax(vals, axis=1).astype(np.int64) if xc.size else np.zeros(len(xc), dtype=np.int64))
        return out

    def start(self, labels: list[np.ndarray]) -> np.ndarray | None:
        """A complete column vector for a feasible labelling (x, y, z and s all set), or None if the labels do not
        fit the slots (too many classes, or not canonical where symmetry breaking removed columns)."""
        v = np.zeros(self.n_cols)
        for p, lab, xc, yc, zc, sc in zip(self.model.parts, labels, self.x_cols, self.y_cols, self.z_cols, self.s_cols):
            lab = first_appearance(lab)
            if len(lab) and int(lab.max()) >= p.cap:
                return None
            cols = xc[np.arange(p.n), lab]
            if np.any(cols < 0):
                return None
            v[cols] = 1.0
            v[yc] = (lab[p.soft_u] == lab[p.soft_v]).astype(float)
            if zc is not None:
                v[zc[np.unique(lab)]] = 1.0
            if sc is not None:
                stored = np.zeros(p.cap)
                np.maximum.at(stored, lab, p.params.astype(float))
                v[sc] = stored
        return v


class _Rows:
    """Accumulates sparse rows (triplets) with bounds and names."""

    def __init__(self):
        self.r: list[int] = []
        self.c: list[int] = []
        self.v: list[float] = []
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.names: list[str] = []

    def add(self, cols, coefs, lb: float, ub: float, name: str) -> None:
        i = len(self.lb)
        self.r.extend([i] * len(cols))
        self.c.extend(int(c) for c in cols)
        self.v.extend(float(a) for a in coefs)
        self.lb.append(lb)
        self.ub.append(ub)
        self.names.append(name)


def weight_scale(model: Model) -> float:
    """The power of two that brings the largest |w| into [1, 2): MIP solvers stop at an *absolute* gap (HiGHS and
    CBC about 1e-6) and use absolute tolerances, so weights of 1e-9 (small curvature damage) would otherwise all
    look optimal at once. A power of two rescales without rounding error."""
    big = max((float(np.abs(p.soft_w).max()) for p in model.parts if len(p.soft_w)), default=0.0)
    return 1.0 if big == 0.0 else 2.0 ** -math.floor(math.log2(big))


def build(model: Model, normalise: bool = True, cut_deadline: float | None = None,
          clock: BuildClock = NO_CLOCK) -> Milp:
    """The MILP of a ``Model`` (see the module docstring and formulations/milp.md for every row family). With
    ``normalise`` the objective is multiplied by ``weight_scale(model)`` (recorded as ``Milp.scale``; divide a
    solver's objective or bound by it); without, the costs are the weights themselves (``export``).

    The triangle rows are optional cuts, O(n^3) of them on a dense part: none is generated after ``cut_deadline``
    (``time.monotonic()`` seconds; see ``limited_triangles``), so a short time limit is not spent building them.
    Every row needed for correctness is always built. ``Milp.cuts`` says how many triangle rows were added.
    ``clock`` (budget.BuildClock) raises ``BuildTimeout`` once its deadline passes mid-build."""
    b = _Builder(model, weight_scale(model) if normalise else 1.0, clock)
    for t, p in enumerate(model.parts):
        xc = b.assignment(t, p)
        yc = b.soft_edges(t, p, xc)
        b.triangles(t, p, yc, cut_deadline)
        if model.symmetry:
            b.slot_order(t, p, xc)
        b.slot_usage(t, p, xc)
    return b.finish()


class _Builder:
    """Columns and rows of one MILP, added part by part in a fixed order (the column and row order is the model's
    identity: exported files and solver runs depend on it)."""

    def __init__(self, model: Model, sigma: float, clock: BuildClock = NO_CLOCK):
        self.model, self.sigma, self.clock = model, sigma, clock
        self.names: list[str] = []
        self.cost: list[float] = []
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.integer: list[bool] = []
        self.rows = _Rows()
        self.x_cols, self.y_cols, self.z_cols, self.s_cols = [], [], [], []
        self.with_z = model.needs_class_count or model.max_params is not None
        self.z_all: list[int] = []
        self.param_terms: list[tuple[int, float]] = []
        self.cuts = {"triangles": 0, "truncated": None}
        self.cut_rows: list[tuple[int, int]] = []     # row ranges of the triangle rows, per part

    def col(self, name: str, lo: float, hi: float, c: float = 0.0, is_int: bool = False) -> int:
        self.names.append(name)
        self.lb.append(lo)
        self.ub.append(hi)
        self.cost.append(c)
        self.integer.append(is_int)
        return len(self.names) - 1

    def assignment(self, t: int, p: Part) -> np.ndarray:
        """x[i, c] (slot c >= i dropped under symmetry breaking), every node in exactly one slot, hard edges apart."""
        C, rows = p.cap, self.rows
        xc = np.full((p.n, C), -1, dtype=np.int64)
        for i in range(p.n):
            for c in range(min(C, i + 1) if self.model.symmetry else C):
                xc[i, c] = self.col(f"x_{t}_{i}_{c}", 0.0, 1.0, is_int=True)
        self.x_cols.append(xc)
        for i in range(p.n):
            cs = xc[i][xc[i] >= 0]
            rows.add(cs, np.ones(len(cs)), 1.0, 1.0, f"assign_{t}_{i}")
        for e, (a, b) in enumerate(zip(p.hard_u.tolist(), p.hard_v.tolist())):
            self.clock.tick(2 * C)
            for c in range(C):
                if xc[a, c] >= 0 and xc[b, c] >= 0:
                    rows.add([xc[a, c], xc[b, c]], [1, 1], -np.inf, 1.0, f"hard_{t}_{e}_{c}")
        return xc

    def soft_edges(self, t: int, p: Part, xc: np.ndarray) -> np.ndarray:
        """y per soft edge (its weight in the objective), tied to "both ends share a slot"."""
        rows, inf = self.rows, np.inf
        yc = np.empty(len(p.soft_w), dtype=np.int64)
        for e, (a, b, w) in enumerate(zip(p.soft_u.tolist(), p.soft_v.tolist(), p.soft_w.tolist())):
            self.clock.tick(3 * p.cap)
            y = yc[e] = self.col(f"y_{t}_{e}", 0.0, 1.0, c=w * self.sigma)
            for c in range(p.cap):
                xa, xb = xc[a, c], xc[b, c]
                if w > 0:  # y >= x_ac + x_bc - 1: paying is forced when both sit in slot c
                    if xa >= 0 and xb >= 0:
                        rows.add([xa, xb, y], [1, 1, -1], -inf, 1.0, f"same_{t}_{e}_{c}")
                else:      # y <= 1 - x_ac + x_bc and y <= 1 + x_ac - x_bc: the reward needs a shared slot
                    if xa >= 0 and xb >= 0:
                        rows.add([y, xa, xb], [1, 1, -1], -inf, 1.0, f"sameA_{t}_{e}_{c}")
                        rows.add([y, xa, xb], [1, -1, 1], -inf, 1.0, f"sameB_{t}_{e}_{c}")
                    elif xa >= 0:
                        rows.add([y, xa], [1, 1], -inf, 1.0, f"sameA_{t}_{e}_{c}")
                    elif xb >= 0:
                        rows.add([y, xb], [1, 1], -inf, 1.0, f"sameB_{t}_{e}_{c}")
        self.y_cols.append(yc)
        return yc

    def triangles(self, t: int, p: Part, yc: np.ndarray, cut_deadline: float | None) -> None:
        """The optional transitivity cuts: y is "same class" at every optimum, and that is transitive (milp.md)."""
        rows, first = self.rows, len(self.rows.lb)
        for a, b, c, ab, bc, ac in limited_triangles(p, cut_deadline, self.cuts) if self.model.triangles else ():
            rows.add([yc[ab], yc[bc], yc[ac]], [1, 1, -1], -np.inf, 1.0, f"tri_{t}_{a}_{b}_{c}_0")
            rows.add([yc[ab], yc[bc], yc[ac]], [1, -1, 1], -np.inf, 1.0, f"tri_{t}_{a}_{b}_{c}_1")
            rows.add([yc[ab], yc[bc], yc[ac]], [-1, 1, 1], -np.inf, 1.0, f"tri_{t}_{a}_{b}_{c}_2")
        self.cut_rows.append((first, len(rows.lb)))

    def slot_order(self, t: int, p: Part, xc: np.ndarray) -> None:
        """Slot c >= 1 may hold node i only if slot c-1 holds an earlier node (colour-symmetry breaking)."""
        for c in range(1, p.cap):
            for i in range(c, p.n):
                self.clock.tick(i - c + 2)
                prev = [xc[j, c - 1] for j in range(c - 1, i) if xc[j, c - 1] >= 0]
                self.rows.add([xc[i, c]] + prev, [1] + [-1] * len(prev), -np.inf, 0.0, f"order_{t}_{i}_{c}")

    def slot_usage(self, t: int, p: Part, xc: np.ndarray) -> None:
        """z[c] (slot c used) when the class count or the parameters can bind; s[c] (slot c's storage) for a part
        whose members store different parameter counts."""
        zc = sc = None
        if self.with_z:
            rows, C = self.rows, p.cap
            zc = np.array([self.col(f"z_{t}_{c}", 0.0, 1.0) for c in range(C)], dtype=np.int64)
            for c in range(C):
                for i in range(p.n):
                    if xc[i, c] >= 0:
                        rows.add([xc[i, c], zc[c]], [1, -1], -np.inf, 0.0, f"used_{t}_{i}_{c}")
            if self.model.symmetry:
                for c in range(C - 1):
                    rows.add([zc[c + 1], zc[c]], [1, -1], -np.inf, 0.0, f"usedorder_{t}_{c}")
            self.z_all.extend(zc.tolist())
            if self.model.max_params is not None:
                sc = self._storage(t, p, xc, zc)
        self.z_cols.append(zc)
        self.s_cols.append(sc)

    def _storage(self, t: int, p: Part, xc: np.ndarray, zc: np.ndarray) -> np.ndarray | None:
        if p.uniform_params:
            self.param_terms.extend((int(z), float(p.max_param)) for z in zc)
            return None
        sc = np.array([self.col(f"s_{t}_{c}", 0.0, float(p.max_param)) for c in range(p.cap)], dtype=np.int64)
        for c in range(p.cap):
            for i in range(p.n):
                if xc[i, c] >= 0 and p.params[i] > 0:
                    self.rows.add([sc[c], xc[i, c]], [1, -float(p.params[i])], 0.0, np.inf, f"store_{t}_{i}_{c}")
        self.param_terms.extend((int(s), 1.0) for s in sc)
        return sc

    def finish(self) -> Milp:
        """The global budget rows, then the matrix."""
        model, rows = self.model, self.rows
        if self.with_z and model.needs_class_count:
            rows.add(self.z_all, np.ones(len(self.z_all)), -np.inf, float(model.max_classes), "max_classes")
        if model.max_params is not None and self.param_terms:
            rows.add([a for a, _ in self.param_terms], [b for _, b in self.param_terms], -np.inf,
                     float(model.max_params), "max_params")
        A = sp.csr_matrix((rows.v, (rows.r, rows.c)), shape=(len(rows.lb), len(self.names)))
        optional = np.zeros(len(rows.lb), dtype=bool)
        for lo, hi in self.cut_rows:
            optional[lo:hi] = True
        return Milp(self.names, np.array(self.cost), np.array(self.lb), np.array(self.ub),
                    np.array(self.integer, dtype=bool), A, np.array(rows.lb), np.array(rows.ub), rows.names,
                    self.x_cols, self.y_cols, self.z_cols, self.s_cols, model, self.sigma, optional, self.cuts)


# share of a sub-solve's time limit that generating the optional triangle rows may take (the solver needs the rest,
# and its presolve, which HiGHS does not interrupt for the time limit, grows with them too)
CUT_SHARE = 0.1


def cuts_until(started: float, time_limit: float | None, share: float = CUT_SHARE) -> float | None:
    """The ``time.monotonic()`` time after which no more optional rows are built (None without a limit)."""
    return None if time_limit is None else started + share * time_limit


def limited_triangles(part: Part, deadline: float | None, cuts: dict):
    """``triangles(part)``, stopping at ``MAX_TRIANGLES`` or at ``deadline``; counts into ``cuts["triangles"]`` and
    sets ``cuts["truncated"]`` to "time" or "max_triangles" when it stops early."""
    for n, tri in enumerate(triangles(part)):
        if n >= MAX_TRIANGLES:
            cuts["truncated"] = cuts["truncated"] or "max_triangles"
            return
        if deadline is not None and n % 256 == 0 and time.monotonic() >= deadline:
            cuts["truncated"] = "time"
            return
        cuts["triangles"] += 1
        yield tri


def triangles(part: Part):
    """Triples ``a < b < c`` whose three pairs are all soft edges, with the three edge positions (ab, bc, ac)."""
    pos = {(a, b): e for e, (a, b) in enumerate(zip(part.soft_u.tolist(), part.soft_v.tolist()))}
    nbr: dict[int, list[int]] = {}
    for a, b in pos:
        nbr.setdefault(a, []).append(b)
    for a, bs in nbr.items():
        bs = sorted(bs)
        for i, b in enumerate(bs):
            for c in bs[i + 1:]:
                bc = pos.get((b, c))
                if bc is not None:
                    yield a, b, c, pos[(a, b)], bc, pos[(a, c)]


def instance_model(instance: Instance, symmetry: bool = True, triangles: bool = True) -> Model:
    """The monolithic model of a whole instance."""
    b = instance.budget
    return Model(tuple(parts_of(instance)), b.max_classes, b.max_params, symmetry, triangles)


# ---------------------------------------------------------------------------------------------- highspy
def to_highs(milp: Milp, h) -> None:
    """Load ``milp`` into a ``highspy.Highs`` (column-wise, with names)."""
    import highspy
    A = milp.A.tocsc()
    lp = highspy.HighsLp()
    lp.num_col_ = milp.n_cols
    lp.num_row_ = milp.n_rows
    lp.col_cost_ = milp.cost
    lp.col_lower_ = milp.lb
    lp.col_upper_ = milp.ub
    lp.row_lower_ = np.where(np.isfinite(milp.row_lb), milp.row_lb, -highspy.kHighsInf)
    lp.row_upper_ = np.where(np.isfinite(milp.row_ub), milp.row_ub, highspy.kHighsInf)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr
    lp.a_matrix_.index_ = A.indices
    lp.a_matrix_.value_ = A.data
    lp.a_matrix_.num_col_ = milp.n_cols
    lp.a_matrix_.num_row_ = milp.n_rows
    lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
                       for i in milp.integer]
    lp.col_names_ = milp.names
    lp.row_names_ = milp.row_names
    status = h.passModel(lp)
    if status == highspy.HighsStatus.kError:
        raise RuntimeError("HiGHS rejected the model")


FORMATS = ("lp", "mps")


#: the last line of a complete model file of each format
END_MARKERS = {"lp": b"end", "mps": b"ENDATA"}


def _ends_with(path: Path, marker: bytes) -> bool:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 64))
        return fh.read().rstrip().endswith(marker)


def export(instance: Instance, path: str | os.PathLike, fmt: str | None = None, *, symmetry: bool = True,
           triangles: bool = True) -> Path:
    """Write the monolithic MILP of ``instance`` as LP or MPS (``fmt`` defaults to the file extension).

    Names: ``x_t_i_c`` (type t in ``instance.types`` order, i the node's position among that type's nodes in
    instance order, c the slot), ``y_t_e`` (t's e-th soft edge), ``z_t_c``, ``s_t_c``. The file is written to a
    temporary name and renamed (``atomic.place``: through a link, into a stream), so a failure never leaves half a
    file; stdout stays clean."""
    import tempfile
    from ..atomic import place, temp_dir_for
    from .quiet import new_highs, stdout_to_stderr
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise InputError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not path.parent.exists():
        raise InputError(f"export: directory does not exist: {path.parent}")
    milp = build(instance_model(instance, symmetry, triangles), normalise=False)
    h = new_highs()
    to_highs(milp, h)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=temp_dir_for(path)))
    tmp = tmpdir / f"model.{fmt}"      # HiGHS picks the writer from the extension
    try:
        with stdout_to_stderr():
            status = h.writeModel(str(tmp))
        import highspy
        if status == highspy.HighsStatus.kError or not tmp.exists():
            raise InputError(f"export: HiGHS could not write {path}")
        if not _ends_with(tmp, END_MARKERS[fmt]):    # HiGHS reports no error when the disk fills up
            raise InputError(f"export: cannot write {path}: the model file came out incomplete (disk full?)")
        place(tmp, path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return path
