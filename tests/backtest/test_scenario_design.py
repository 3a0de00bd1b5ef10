"""Scenario design: every row of a group is a distinct position, random entries come as long/short pairs sharing
one level pass, and the stop-type shares hold when fewer rows than pairs are drawn."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from backtest.config import BacktestConfig
from backtest.context import ReplayContexts
from backtest.scenarios import RANDOM, STOP_ATR, STOP_NONE, STOP_STRUCTURE, bar_range, draft_group, stop_leverage_rows
from tools.market.replay import ReplayMarketData

COLUMNS = ("group", "kind", "stop_type", "entry_bar", "side", "leverage", "entry", "stop", "t1", "t2", "t3", "risk")


def _rows(ohlcv_dir: Path, cfg: BacktestConfig, groups: int) -> list[dict[str, float]]:
    ctx = ReplayContexts(ReplayMarketData(ohlcv_dir), "BTC", "1h", cfg.lookback)
    lo, hi = bar_range(len(ctx.full), cfg)
    return [
        dict(zip(COLUMNS, r, strict=False))
        for g in range(groups)
        for r in draft_group(ctx, cfg, g, cfg.group_size, lo, hi).rows
    ]


def test_every_row_of_a_group_is_a_distinct_position(ohlcv_dir: Path) -> None:
    rows = _rows(ohlcv_dir, BacktestConfig(symbols=["BTC"]), 4)
    # The same entry, side, stop, targets and leverage twice would repeat one decision and outcome.
    keys = [
        (r["group"], r["entry_bar"], r["side"], r["leverage"], np.nan_to_num(r["stop"], nan=-1.0), r["t1"], r["t2"])
        for r in rows
    ]
    assert len(keys) == len(set(keys))
    # The default draws every (stop type, leverage) pair of an entry once: the full factorial.
    per_entry = Counter((r["group"], r["entry_bar"], r["side"], r["stop_type"]) for r in rows)
    assert set(per_entry.values()) == {6}
    stop_types = Counter((r["group"], r["entry_bar"], r["side"]) for r in rows if r["stop_type"] == STOP_ATR)
    # An ATR-stop row is dropped only where it equals the structure-stop row (no level to put the stop behind).
    for r in rows:
        if r["stop_type"] == STOP_STRUCTURE and (r["group"], r["entry_bar"], r["side"]) not in stop_types:
            assert abs(abs(r["entry"] - r["stop"]) - r["risk"]) < 1e-9


def test_random_entries_are_long_short_pairs_at_one_bar(ohlcv_dir: Path) -> None:
    rows = _rows(ohlcv_dir, BacktestConfig(symbols=["BTC"]), 6)
    random_sides = Counter()
    for r in rows:
        if r["kind"] == RANDOM:
            random_sides[(r["group"], r["entry_bar"])] |= 1 << int(r["side"] > 0)
    paired = sum(v == 3 for v in random_sides.values())
    assert paired >= len(random_sides) // 2  # most random entry bars carry both sides (a failed setup search: one)


def test_rows_keep_the_stop_type_shares_with_every_leverage() -> None:
    cfg = BacktestConfig()
    rng = np.random.default_rng(4)
    drawn = [stop_leverage_rows(rng, cfg) for _ in range(3000)]
    counts = Counter(st for d in drawn for st, _ in d)
    total = sum(counts.values())
    assert abs(counts[STOP_STRUCTURE] / total - 0.6) < 0.02
    assert abs(counts[STOP_ATR] / total - 0.2) < 0.02 and abs(counts[STOP_NONE] / total - 0.2) < 0.02
    assert abs(total / len(drawn) - cfg.group_size / cfg.entries_per_bar) < 0.3  # the group size the config plans
    for d in drawn:  # each stop type an entry gets comes with every leverage, once
        assert Counter(st for st, _ in d) == {st: len(cfg.leverages) for st in {st for st, _ in d}}


def test_fewer_rows_than_pairs_keep_the_stop_type_shares() -> None:
    cfg = BacktestConfig(per_bar=4)
    rng = np.random.default_rng(3)
    drawn = [stop_leverage_rows(rng, cfg) for _ in range(3000)]
    assert all(len(set(d)) == len(d) == 4 for d in drawn)
    counts = Counter(st for d in drawn for st, _ in d)
    total = sum(counts.values())
    # Without replacement the shares flatten a little (a heavy type cannot fill every row); they stay ordered.
    assert counts[STOP_STRUCTURE] / total > 0.45 and counts[STOP_NONE] / total < 0.3 and counts[STOP_ATR] / total < 0.3
