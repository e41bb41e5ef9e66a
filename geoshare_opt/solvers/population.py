"""Population annealing (Hukushima & Iba 2003; Machta 2010) over the plain K = 2 sweep of ``anneal``.

``size`` copies of the state anneal side by side along one schedule; after every temperature step each copy is
weighted by exp(-(1/T_new - 1/T_old) E) and the population is resampled (systematic resampling, fixed size), so
copies stuck in poor valleys are replaced by copies of the good ones while the temperature is still high enough for
them to diverge again.

Why: on graphs where a few nodes hold a large share of the edges (Gset G58/G59/G63/G64: "planar" unions with hubs
of degree 324-589 against a mean of 12) one chain's result spreads widely over seeds and more sweeps barely move
its mean (G64: about +5 cut per doubling). Timed 10 s runs of G64, 16 seeds each, hubs at their scaled temperature
(``anneal.hub_scales``) in both: one chain 8727 +- 10 (min 8707), 16 copies 8730 +- 9 (min 8718)
(benchmarks/solvers/gset/TUNING.md, 4th session). On the 2D tori (G67/G77, no hubs) each copy's shorter schedule
cost more than the selection gained (G77, 190,000 sweeps in all, 6 seeds: one chain 9892, 8 copies 9888, 16 copies
9886), which is why ``anneal`` uses a population only where hubs are (``auto_size``).
"""
from __future__ import annotations

import time

import numpy as np

POP_SIZE = 16        # copies when ``population`` is "auto" and the graph has hubs
POP_STEPS = 1000     # temperature steps (resamplings) per schedule (G64, 360,000 sweeps, 16 copies, 8 seeds: 400
                     # steps 8715, 1000 steps 8724; TUNING.md)
HUB_RATIO = 10.0     # a population where the largest hub's weighted degree is at least this many times the mean


def auto_size(scales: np.ndarray) -> int:
    """POP_SIZE when the largest hub's degree is at least HUB_RATIO times the mean (``scales``: ``hubs.hub_scales``),
    else 1 (a single chain)."""
    return POP_SIZE if len(scales) and scales.max() >= HUB_RATIO else 1


def _resample(energies: np.ndarray, dbeta: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of the copies kept (with repetition): systematic resampling on weights exp(-dbeta (E - min E))."""
    w = np.exp(-dbeta * (energies - energies.min()))
    c = np.cumsum(w)
    c /= c[-1]
    size = len(energies)
    return np.minimum(np.searchsorted(c, (rng.random() + np.arange(size)) / size), size - 1)


def population_round(sweeper, size: int, temperature, length: int, end_time, deadline, rate, seed_rng,
                     rng: np.random.Generator, obj, round_best, best_loc):
    """Anneal ``size`` copies of the sweeper's current state along ``temperature(frac)``, frac 0 -> 1.

    ``length``: sweeps summed over all copies (the round ends when they are done). With an ``end_time`` the
    temperature follows the larger of the sweep fraction and the elapsed fraction of the time up to it, as in the
    single-chain fill round, so the schedule ends cold whatever the machine's speed; ``deadline`` (or None) stops
    the round wherever it is. ``rate``: sweeps per second measured so far (any copy's sweep costs the same), kept
    up to date. ``round_best`` / ``best_loc`` collect the best state any copy visits. On return the sweeper's state
    is the copy with the lowest objective. Returns (sweeps done over all copies, stopped by the deadline, rate,
    temperature steps taken)."""
    from . import _anneal_kernels as K
    from . import _ising_kernels as I
    st = sweeper.st
    a = st.adj
    # copy 0 is the current state, the others random: nodes of high degree keep their start orientation at
    # every temperature of the schedule (their gains stay far above T), so copies of one state would all share
    # it and selection could not choose between orientations (G64, 16 seeds: copies of one start 8698 +- 8,
    # single chain 8705 +- 7, random copies 8709 +- 12; TUNING.md)
    locs = rng.integers(0, 2, size=(size, len(st.loc))).astype(np.int64)
    locs[0] = st.loc
    gains = np.empty((size, len(st.loc)), dtype=sweeper.gain.dtype)
    objs = np.empty((size, 1))
    gains[0] = sweeper.gain
    objs[0, 0] = obj[0]
    for r in range(1, size):
        I.flip_gains(locs[r], a.indptr, a.nbr, sweeper.wt, gains[r])
        objs[r, 0] = K.objective(locs[r], a.indptr, a.nbr, a.wt)
    t0 = time.monotonic()
    span = max(1e-3, end_time - t0) if end_time is not None else None
    steps = max(1, min(POP_STEPS, length // size))
    done, frac, stopped, taken = 0, 0.0, False, 0
    while frac < 1.0:
        taken += 1
        if span is not None and rate:
            m = max(1, int(rate * span / (steps * size)))
        else:
            m = max(1, length // (steps * size))
        now = time.monotonic()
        f_next = (done + m * size) / length
        if span is not None and rate:
            f_next = max(f_next, (now - t0 + m * size / rate) / span)
        f_next = min(1.0, f_next)
        ta, tb = temperature(frac), temperature(max(frac, f_next))
        for r in range(size):
            sweeper.ising_sweeps(locs[r], gains[r], ta, tb, m, seed_rng, objs[r], round_best, best_loc, frac)
        done += m * size
        after = time.monotonic()
        if after > now:
            r_now = m * size / (after - now)
            rate = 0.7 * rate + 0.3 * r_now if rate else r_now
        frac = min(1.0, max(done / length, (after - t0) / span if span is not None else 0.0))
        if deadline is not None and after >= deadline:
            stopped = True
            break
        if frac < 1.0:
            idx = _resample(objs[:, 0], 1.0 / tb - 1.0 / ta, rng)
            moved = idx != np.arange(size)
            if moved.any():
                # only the replaced copies are written (the right side is gathered before the assignment)
                src = idx[moved]
                locs[moved], gains[moved], objs[moved] = locs[src], gains[src], objs[src]
    i = int(np.argmin(objs[:, 0]))
    st.loc[:] = locs[i]
    sweeper.gain[:] = gains[i]
    obj[0] = objs[i, 0]
    return done, stopped, rate, taken
