"""Each row of a small int8 matrix as runs of equal cells: a level's side of its zone, bar by bar, in a few pieces.

Price is off a level's zone on nearly every bar, but it changes side only a handful of times. The level pass reads
crosses, the side price came from and the next close beyond the zone from these runs (a few hundred) instead of
from the flat index of every off-zone cell (tens of thousands). The answers are the same cells' values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True, slots=True)
class RowSegments:
    """Runs of equal cells, in flat (row * n_bar + column) order; `before` is the last nonzero value before a run
    in its row (0: none)."""

    start: np.ndarray  # flat index of each run's first cell, sorted
    row: np.ndarray
    value: np.ndarray
    before: np.ndarray
    n_bar: int

    @classmethod
    def of(cls, m: np.ndarray) -> RowSegments:
        """The runs of every row of `m` (rows x bars)."""
        n_bar = m.shape[1]
        flat = np.ascontiguousarray(m).ravel()
        # A run starts at every row's first cell and wherever a cell differs from the one before it in its row: on
        # the flat cells, every change plus every row start (a change across a row boundary is a row start anyway).
        first = np.empty(len(flat), dtype=bool)
        np.not_equal(flat[1:], flat[:-1], out=first[1:])
        first[:: max(n_bar, 1)] = True
        start = np.flatnonzero(first)
        row = start // n_bar
        value = flat[start].astype(np.int64)
        before = np.zeros(len(start), dtype=np.int64)
        if len(start) > 1:
            same1, v1 = row[1:] == row[:-1], value[:-1]
            before[1:] = np.where(same1 & (v1 != 0), v1, 0)
            # After a run of zeros, the run before it (nonzero: neighbouring runs differ), when in the same row.
            fill = (row[2:] == row[:-2]) & same1[1:] & (v1[1:] == 0)
            before[2:] = np.where(fill, value[:-2], before[2:])
        return cls(start, row, value, before, n_bar)

    def crosses(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(flat index, new value, row) of every nonzero cell whose row's previous nonzero cell has the other value."""
        hit = (self.value != 0) & (self.before != 0) & (self.before != self.value)
        return self.start[hit], self.value[hit], self.row[hit]

    def last_nonzero(self, n_row: int) -> np.ndarray:
        """Per row, the value of its last nonzero cell (0: none)."""
        last = np.flatnonzero(np.append(self.row[1:] != self.row[:-1], True))
        out = np.zeros(n_row, dtype=np.int64)
        v = self.value[last]
        out[self.row[last]] = np.where(v != 0, v, self.before[last])
        return out

    def value_before(self, q: np.ndarray) -> np.ndarray:
        """Per flat index `q`, the value of the last nonzero cell before it in its row (0: none)."""
        k = self.start.searchsorted(q, side="right") - 1
        v = self.value[k]
        return np.where((self.start[k] < q) & (v != 0), v, self.before[k])

    def next_at(self, q: np.ndarray, q_row: np.ndarray, value: int) -> np.ndarray:
        """Per flat index `q` in row `q_row`, the column of the first cell at or after it in that row holding `value`,
        else NEVER (`q` past its row's end: undefined)."""
        k = self.start.searchsorted(q, side="right") - 1
        here = self.value[k] == value
        starts = self.start[self.value == value]
        if len(starts) == 0:
            return np.where(here, q - q_row * self.n_bar, NEVER)
        j = starts.searchsorted(q, side="left")
        jj = np.minimum(j, len(starts) - 1)
        later = (j < len(starts)) & (starts[jj] // self.n_bar == q_row)
        return np.where(here, q - q_row * self.n_bar, np.where(later, starts[jj] - q_row * self.n_bar, NEVER))
