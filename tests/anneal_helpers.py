"""Shared by the anneal kernel tests."""
from __future__ import annotations

from typing import Callable

import numpy as np

from geoshare_opt.solvers import _anneal_kernels as K


def ends_with_and_without_table(make_state: Callable, t_start: float, t_end: float, sweeps: int,
                                seed: int) -> tuple[list[np.ndarray], int]:
    """The generic kernel's end labels from two fresh states, once with the tabulated acceptance probabilities and
    once with ``exp`` for every move (the same seed must give the same chain), and the table's length."""
    ends, table_len = [], None
    for tabulate in (True, False):
        st = make_state()
        table_len = len(st.etab) if table_len is None else table_len
        etab = st.etab if tabulate else np.zeros(0)
        rng = np.array([np.uint64(seed)], dtype=np.uint64)
        best = np.array([st.obj[0]])
        K.anneal_sweeps(st.movable, *st.common(), t_start, t_end, sweeps, rng, st.obj, best, st.loc.copy(), etab)
        ends.append(st.loc.copy())
    return ends, table_len
