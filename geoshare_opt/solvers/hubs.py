"""Hubs: nodes whose weighted degree is far above the mean. ``anneal`` lets them anneal at a temperature scaled by
their degree early in a schedule (``hub_scales``) and, where the largest hub is far above the mean, anneals a
population of copies (``population.auto_size``)."""
from __future__ import annotations

import numpy as np

HUB_DEGREE = 4.0   # hub: weighted degree at least this many times the mean
HUB_FADE = 0.7     # share of a schedule over which the hubs' temperature factor fades to 1


def hub_scales(adj) -> np.ndarray:
    """Per node, the factor on the temperature it sees early in a schedule: weighted degree / mean weighted degree
    for hubs (weighted degree at least ``HUB_DEGREE`` times the mean), 1 for the rest; empty when there are no hubs.

    Why: a node's flip gain grows with its degree, so at a temperature calibrated on typical gains a hub's moves
    are never accepted and it keeps its start orientation through the whole schedule; the chain then settles
    around it and the result depends on the start (G64: degrees up to 589 against a mean of 12; 240,000 sweeps
    from random starts, 6 seeds: 8710 +- 13 cut, with hubs at T * degree / mean fading to T over the first 70 %
    of the schedule 8726 +- 5; benchmarks/solvers/gset/TUNING.md). The factor fades out (``HUB_FADE``), so the end
    of the schedule is the plain chain at one temperature. Only the plain K = 2 sweep applies it."""
    w = np.abs(adj.wt)
    src = np.repeat(np.arange(adj.n), np.diff(adj.indptr))
    wdeg = np.bincount(src, weights=w, minlength=adj.n)
    mean = wdeg.mean() if adj.n else 0.0
    if mean <= 0 or wdeg.max() < HUB_DEGREE * mean:
        return np.zeros(0)
    return np.where(wdeg >= HUB_DEGREE * mean, wdeg / mean, 1.0)
