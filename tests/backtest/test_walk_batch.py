"""One walk for many decision sets: every row's outcome is the one it gets walked alone, to the bit, while the
walk drops rows as they go flat (random paths where most rows close early, some late, some never)."""

from __future__ import annotations

import numpy as np

from backtest.config import BacktestConfig
from backtest.outcomes import Path, Position, candidate_outcomes, candidate_terms, simulate, simulate_rows, walk_plan

CFG = BacktestConfig()


def _world(n: int, bars: int, seed: int) -> tuple[Position, Path]:
    rng = np.random.default_rng(seed)
    d = rng.choice([-1, 1], n)
    price = rng.uniform(50, 150, n)
    steps = rng.normal(0, rng.uniform(0.002, 0.03, n)[:, None], (n, bars))
    close = price[:, None] * np.exp(np.cumsum(steps, axis=1))
    opens = np.concatenate([price[:, None], close[:, :-1]], axis=1)
    wick = np.abs(rng.normal(0, 0.01, (n, bars))) * close
    high, low = np.maximum(opens, close) + wick, np.minimum(opens, close) - wick
    entry = price * rng.uniform(0.97, 1.03, n)
    risk = price * rng.uniform(0.005, 0.05, n)
    stop = np.where(rng.random(n) < 0.2, np.nan, entry - d * risk)
    pos = Position(
        d=d,
        entry=entry,
        stop=stop,
        t1=entry + d * 1.5 * risk,
        t2=entry + d * 3 * risk,
        targets_hit=rng.integers(0, 2, n),
        price=price,
        atr=price * 0.01,
        risk=np.where(np.isnan(stop), price * 0.02, risk),
    )
    return pos, Path(opens, high, low, close)


def _row(pos: Position, path: Path, i: int) -> tuple[Position, Path]:
    pick = np.array([i])
    return (
        Position(*(getattr(pos, f)[pick] for f in Position.__dataclass_fields__)),
        Path(path.open[pick], path.high[pick], path.low[pick], path.close[pick]),
    )


def test_batched_walk_matches_each_row_walked_alone() -> None:
    pos, path = _world(300, 48, 1)
    length = np.random.default_rng(2).integers(1, 49, 300)
    frac = np.random.default_rng(3).uniform(0.2, 1.0, 300)
    walk = walk_plan(
        path,
        pos.d,
        pos.entry,
        pos.stop,
        pos.t1,
        pos.t2,
        pos.targets_hit,
        frac,
        fee=5e-4,
        time_exit=False,
        length=length,
    )
    assert 0 < int((walk.closed_at >= 0).sum()) < 300  # some rows flat early, the rest walked on alone
    for i in range(0, 300, 7):
        p1, b1 = _row(pos, path, i)
        one = walk_plan(
            b1,
            p1.d,
            p1.entry,
            p1.stop,
            p1.t1,
            p1.t2,
            p1.targets_hit,
            frac[i : i + 1],
            fee=5e-4,
            time_exit=False,
            length=length[i : i + 1],
        )
        for got, want in zip(
            (walk.pnl, walk.remaining, walk.targets_hit, walk.stop, walk.closed_at),
            (one.pnl, one.remaining, one.targets_hit, one.stop, one.closed_at),
            strict=True,
        ):
            assert got[i : i + 1].tobytes() == want.tobytes()


def test_simulate_rows_gives_each_part_its_own_simulate() -> None:
    pos, path = _world(200, 48, 4)
    n = len(pos.d)
    rng = np.random.default_rng(5)
    close = np.where(rng.random(n) < 0.3, rng.choice([0.3, 0.5, 1.0], n), 0.0)
    stop = np.where(rng.random(n) < 0.3, pos.price - pos.d * pos.atr, pos.stop)
    rows = np.sort(rng.choice(n, 60, replace=False))
    sub = Position(*(getattr(pos, f)[rows] for f in Position.__dataclass_fields__))
    sub_path = Path(path.open[rows], path.high[rows], path.low[rows], path.close[rows])
    cand_close, cand_stop, avail = candidate_terms(pos, CFG)
    k = len(cand_close) // n
    cand, mine, theirs = simulate_rows(
        pos,
        path,
        CFG,
        [
            (np.tile(np.arange(n), k), cand_close, cand_stop),
            (np.arange(n), close, stop),
            (rows, close[rows], stop[rows]),
        ],
    )
    want_cand, want_avail = candidate_outcomes(pos, path, CFG)
    assert cand.reshape(k, n).T.tobytes() == want_cand.tobytes() and avail.tolist() == want_avail.tolist()
    assert mine.tobytes() == simulate(pos, path, CFG, close, stop).tobytes()
    assert theirs.tobytes() == simulate(sub, sub_path, CFG, close[rows], stop[rows]).tobytes()
    assert theirs.tobytes() == mine[rows].tobytes()
    empty = simulate_rows(pos, path, CFG, [(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))])
    assert [len(x) for x in empty] == [0]
