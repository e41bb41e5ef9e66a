"""Move attempts per second of the annealing sweep: numba-compiled vs the same loop in Python vs numpy per move.

    python benchmarks/solvers/gset/kernel_speed.py [--graph G22]

The three run the same Metropolis sweep (K = 2, fixed temperature) on one Gset graph, side by side in one process:
1. ``numba``: ``_anneal_kernels.anneal_sweeps`` (the backend's generic sweep), with one ``exp`` per uphill
   attempt (``numba``) and with the per-sweep acceptance table for integer gains (``numba_etab``);
   and ``ising``: ``_ising_kernels.ising_sweeps``, the specialised sweep the backend takes for the plain K = 2
   structure (one flip gain per node, integer acceptance table);
2. ``python``: the same sweep as a plain Python loop over numpy arrays (scalar indexing);
3. ``numpy``: a Python loop over moves whose table update is one vectorised numpy operation per accepted move.
(A fully vectorised sweep would move neighbouring nodes at once, which is not the Metropolis chain.)
Prints one JSON line; the numbers are quoted in benchmarks/solvers/gset/TUNING.md (last section).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from geoshare_opt.convert import read_gset  # noqa: E402
from geoshare_opt.reference import gset, shared_data_dir  # noqa: E402
from geoshare_opt.solvers import _anneal_kernels as K  # noqa: E402
from geoshare_opt.solvers._csr import adjacency  # noqa: E402
from geoshare_opt.solvers.anneal import _State  # noqa: E402


def python_sweeps(loc, G, indptr, nbr, wt, T, sweeps, rng):
    n = len(loc)
    for _ in range(sweeps):
        for v in range(n):
            a = loc[v]
            b = 1 - a
            d = G[v, b] - G[v, a]
            if d > 0 and rng.random() >= math.exp(-d / T):
                continue
            for p in range(indptr[v], indptr[v + 1]):
                u = nbr[p]
                G[u, a] -= wt[p]
                G[u, b] += wt[p]
            loc[v] = b


def numpy_sweeps(loc, G, indptr, nbr, wt, T, sweeps, rng):
    n = len(loc)
    for _ in range(sweeps):
        u = rng.random(n)
        for v in range(n):
            a = loc[v]
            b = 1 - a
            d = G[v, b] - G[v, a]
            if d > 0 and u[v] >= math.exp(-d / T):
                continue
            s, e = indptr[v], indptr[v + 1]
            np.subtract.at(G[:, a], nbr[s:e], wt[s:e])
            np.add.at(G[:, b], nbr[s:e], wt[s:e])
            loc[v] = b


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--graph", default="G22")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--skip-python", action="store_true", help="only the compiled sweeps")
    args = ap.parse_args()
    data = shared_data_dir()
    ref = {r.instance: r for r in gset(data)}[args.graph]
    inst = read_gset(data / ref.file)
    adj = adjacency(inst)
    n = len(inst.nodes)
    lab = np.random.default_rng(0).integers(0, 2, n)
    out = {"graph": args.graph, "n": n, "m": len(inst.edges)}
    T = args.temperature
    out["temperature"] = T

    # numba with one exp per uphill attempt, and with the per-sweep table of exp(-d/T) for integer gains
    for name, tabulate in (("numba", False), ("numba_etab", True)):
        st = _State(inst, adj, np.array([2]), lab)
        etab = st.etab if tabulate else np.zeros(0)
        rng = np.array([np.uint64(12345)], dtype=np.uint64)
        best = np.array([st.obj[0]])
        K.anneal_sweeps(st.movable, *st.common(), T, T, 1, rng, st.obj, best, st.loc.copy(), etab)  # compile
        sweeps = 200
        t0 = time.process_time()
        K.anneal_sweeps(st.movable, *st.common(), T, T, sweeps, rng, st.obj, best, st.loc.copy(), etab)
        out[f"{name}_attempts_per_s"] = round(sweeps * n / (time.process_time() - t0))

    # the plain K = 2 sweep the backend takes for one type / two classes / no hard edges / no parameter cap
    from geoshare_opt.solvers import _ising_kernels as I
    st = _State(inst, adj, np.array([2]), lab)
    wt = adj.wt.astype(np.int64)
    gain = np.zeros(n, dtype=np.int64)
    I.flip_gains(st.loc, adj.indptr, adj.nbr, wt, gain)
    thr = np.zeros(len(st.etab), dtype=np.int64)
    rng = np.array([np.uint64(12345)], dtype=np.uint64)
    best = np.array([st.obj[0]])
    I.ising_sweeps(st.loc, gain, adj.indptr, adj.nbr, wt, T, T, 1, rng, st.obj, best, st.loc.copy(), thr, np.zeros(0))  # compile
    sweeps = 200
    t0 = time.process_time()
    I.ising_sweeps(st.loc, gain, adj.indptr, adj.nbr, wt, T, T, sweeps, rng, st.obj, best, st.loc.copy(), thr, np.zeros(0))
    out["ising_attempts_per_s"] = round(sweeps * n / (time.process_time() - t0))

    for name, fn, sw in (() if args.skip_python else (("python", python_sweeps, 2), ("numpy", numpy_sweeps, 2))):
        st = _State(inst, adj, np.array([2]), lab)
        t0 = time.process_time()
        fn(st.loc, st.G, adj.indptr, adj.nbr, adj.wt, T, sw, np.random.default_rng(0))
        out[f"{name}_attempts_per_s"] = round(sw * n / (time.process_time() - t0))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
