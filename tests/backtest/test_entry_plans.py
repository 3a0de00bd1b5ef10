"""An entry bar's plans are plan_trade's on its levels, computed once per side and stop grade."""

from __future__ import annotations

from pathlib import Path

from backtest.context import ReplayContexts
from tools.market.replay import ReplayMarketData
from tools.structure.targets import plan_trade


def test_entry_plans_are_plan_trade_once_per_side_and_grade(ohlcv_dir: Path) -> None:
    ctx = ReplayContexts(ReplayMarketData(ohlcv_dir), "BTC", "1h")
    lv = ctx.entry_levels(5000)
    for side in ("long", "short"):
        for grade in (2, 99):
            plan = lv.plan(side, min_stop_grade=grade)
            assert plan == plan_trade(side, lv.close, lv.atr, lv.levels, min_stop_grade=grade)
            assert lv.plan(side, min_stop_grade=grade) is plan
    assert lv.plan("long") is lv.plan("long", min_stop_grade=2)
    assert lv.plan("long") != lv.plan("short")
