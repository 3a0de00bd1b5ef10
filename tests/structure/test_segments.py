"""RowSegments against a cell-by-cell reading of random side matrices (what the level pass used to scan)."""

from __future__ import annotations

import numpy as np
import pytest

from tools.structure.segments import NEVER, RowSegments


def _brute(m: np.ndarray) -> tuple[list[tuple[int, int]], list[int]]:
    """(crosses as (flat index, value), last nonzero per row) by walking every cell."""
    crosses, last = [], []
    n_bar = m.shape[1]
    for r, row in enumerate(m.tolist()):
        prev = 0
        for c, v in enumerate(row):
            if v and prev and v != prev:
                crosses.append((r * n_bar + c, v))
            prev = v or prev
        last.append(prev)
    return crosses, last


def _before(m: np.ndarray, r: int, c: int) -> int:
    return next((int(v) for v in m[r, :c][::-1] if v), 0)


def _next(m: np.ndarray, r: int, c: int, value: int) -> int:
    return next((j for j in range(c, m.shape[1]) if m[r, j] == value), NEVER)


@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (1, 7), (6, 40), (25, 120)])
@pytest.mark.parametrize("zeros", [0.0, 0.3, 0.8])
def test_runs_answer_like_the_cells(shape: tuple[int, int], zeros: float) -> None:
    rng = np.random.default_rng(shape[0] * 1000 + shape[1] + int(10 * zeros))
    m = rng.choice(np.array([-1, 1], dtype=np.int8), size=shape)
    m[rng.random(shape) < zeros] = 0
    m[:, : shape[1] // 3] = np.where(rng.random((shape[0], 1)) < 0.5, m[:, :1], m[:, : shape[1] // 3])
    segs = RowSegments.of(m)
    crosses, last = _brute(m)
    flat, value, row = segs.crosses()
    assert list(zip(flat.tolist(), value.tolist(), strict=True)) == crosses
    assert row.tolist() == [f // shape[1] for f, _ in crosses]
    assert segs.last_nonzero(shape[0]).tolist() == last
    rows, cols = np.divmod(np.arange(m.size), shape[1])
    q = rows * shape[1] + cols
    assert segs.value_before(q).tolist() == [_before(m, r, c) for r, c in zip(rows, cols, strict=True)]
    for want in (1, -1):
        got = segs.next_at(q, rows, want).tolist()
        assert got == [_next(m, r, c, want) for r, c in zip(rows, cols, strict=True)]


def test_a_row_that_never_holds_the_value() -> None:
    m = np.array([[0, 1, 1, 0], [1, 0, 1, 1]], dtype=np.int8)
    segs = RowSegments.of(m)
    assert segs.next_at(np.array([0, 5]), np.array([0, 1]), -1).tolist() == [NEVER, NEVER]
    assert segs.crosses()[0].tolist() == []
    assert segs.last_nonzero(2).tolist() == [1, 1]
