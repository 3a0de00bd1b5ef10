"""Replay check: feed bars one at a time and count labels on past bars that a later run rewrote."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """Labels rewritten (changed or removed after being reported) and labels newly added."""

    steps: int
    rewritten: int
    added: int


def _present(labels: np.ndarray) -> np.ndarray:
    return ~np.isnan(labels) & (labels != 0)


def count_rewrites(labels_at: Callable[[int], np.ndarray], start: int, stop: int) -> ReplayResult:
    """Run `labels_at(t)` (per-bar float labels for bars 0..t; 0 or NaN = none) for t in [start, stop).

    A label reported for bar i at step t counts as rewritten when a later step reports a
    different value (or none) for bar i. Labels appearing on bars that had none are additions:
    a lookahead-free engine only ever adds (new confirmations), never rewrites.
    """
    prev = np.asarray(labels_at(start), dtype=np.float64)
    rewritten = added = 0
    for t in range(start + 1, stop):
        cur = np.asarray(labels_at(t), dtype=np.float64)
        old = cur[: len(prev)]
        had = _present(prev)
        same = (old == prev) | (np.isnan(old) & np.isnan(prev))
        rewritten += int((had & ~same).sum())
        added += int((~had & _present(old)).sum()) + int(_present(cur[len(prev) :]).sum())
        prev = cur
    return ReplayResult(stop - start - 1, rewritten, added)
