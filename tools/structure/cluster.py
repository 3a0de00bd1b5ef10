"""Price clustering without chaining: greedy intervals of fixed width over sorted prices."""

from __future__ import annotations

from bisect import bisect_right

import numpy as np


def greedy_cluster_starts(sorted_prices: np.ndarray, tol: float) -> np.ndarray:
    """Start indices of clusters: each opens at the lowest unassigned price and spans `tol` above it.

    Single linkage would chain a dense run of pivots into one huge level; fixed-width
    intervals keep every cluster at most `tol` wide. Loops once per cluster, not per price.
    """
    values = sorted_prices.tolist()
    n = len(values)
    starts: list[int] = []
    i = 0
    while i < n:
        starts.append(i)
        i = bisect_right(values, values[i] + tol, lo=i + 1)
    return np.asarray(starts, dtype=np.int64)


def cluster_ids(starts: np.ndarray, n: int) -> np.ndarray:
    """Cluster id of each of `n` sorted items given the cluster start indices."""
    ids = np.zeros(n, dtype=np.int64)
    if len(starts) > 1:
        ids[starts[1:]] = 1
    return np.cumsum(ids)
