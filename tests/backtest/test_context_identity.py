"""One context for live and backtest: the monitor's StructureMarketViews and the backtest's ReplayContexts build
the identical MarketView, RiskContext, decision and prompt from the same candles and position."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backtest.context import ReplayContexts, risk_context
from engine.monitor.market_view import StructureMarketViews
from engine.risk.context import CONTEXT_BARS, VOLUME_MEAN_BARS, RiskPosition, volume_ratio
from engine.risk.evaluate import evaluate
from engine.risk.opinion import build_risk_context
from tests.backtest.perp_data import perp_copy
from tools.market.replay import ReplayMarketData
from tools.structure.targets import plan_from_report, plan_trade


class CountingMarket(ReplayMarketData):
    """The replay provider, recording how many candles the live builder asks for."""

    asked: list[int]

    async def ohlcv(self, symbol: str, timeframe: str, limit: int = 500):  # type: ignore[no-untyped-def]
        """Record `limit`, then answer as the replay provider."""
        self.asked = [*getattr(self, "asked", []), limit]
        return await super().ohlcv(symbol, timeframe, limit)


@pytest.mark.parametrize("funding", [False, True], ids=["spot candles", "with a funding-rate file"])
async def test_monitor_and_backtest_build_the_identical_context_and_decision(
    ohlcv_dir: Path, tmp_path: Path, funding: bool
) -> None:
    data = tmp_path / "perp" if funding else ohlcv_dir
    if funding:  # a different rate at every 8h event
        perp_copy(ohlcv_dir, data, 0.0001, spread=0.0002, seed=3)
    bt = ReplayContexts(ReplayMarketData(data), "BTC", "1h")
    for bar in (3000, 5000, 5007):
        view_bt = bt.market_view(bar)
        assert (view_bt.funding_rate is not None) is funding
        live_md = CountingMarket(data, now=bt.close_time_ms(bar))
        live = StructureMarketViews(live_md, clock=lambda v=view_bt: v.now)
        view_live = await live.view(bt.symbol, "1h")  # the monitor asks with the position's unified symbol
        assert live_md.asked == [CONTEXT_BARS + 1]  # the same window: CONTEXT_BARS closed bars
        assert view_live == view_bt
        assert view_live.structure == view_bt.structure
        entry = float(bt.full.close[bar - 5])
        atr = view_bt.atr
        for side, d in (("long", 1), ("short", -1)):
            position = RiskPosition(
                symbol=bt.symbol, side=side, entry=entry, size=1.0, leverage=5, stop=entry - d * 1.6 * atr,
                targets=[entry + d * 2 * atr, entry + d * 4 * atr],
            )  # fmt: skip
            a, b = risk_context(position, view_bt), risk_context(position, view_live)
            assert a == b
            assert evaluate(a) == evaluate(b)
            assert build_risk_context(a) == build_risk_context(b)


def test_volume_ratio_is_the_last_bar_over_the_mean_of_the_20_before_it(ohlcv_dir: Path) -> None:
    bt = ReplayContexts(ReplayMarketData(ohlcv_dir), "BTC", "1h")
    bar = 4000
    vol = bt.full.volume
    expected = vol[bar] / np.mean(vol[bar - VOLUME_MEAN_BARS : bar])
    assert bt.market_view(bar).volume_ratio == expected
    assert volume_ratio(vol[: bar + 1]) == expected
    assert volume_ratio(vol[:VOLUME_MEAN_BARS]) is None  # not enough history for a mean without the bar itself


def test_structure_entries_are_planned_on_the_levels_the_live_analysis_shows(ohlcv_dir: Path) -> None:
    bt = ReplayContexts(ReplayMarketData(ohlcv_dir), "BTC", "1h")
    for bar in (3000, 5000, 7001):
        lv, report = bt.entry_levels(bar), bt.report(bar)  # the report is the monitor's and analyze's analysis
        assert (lv.close, lv.atr, lv.trend) == (report.close, report.atr, report.trend)
        shown = [(x.price, x.zone_low, x.zone_high, x.touches, x.grade, x.role, x.state) for x in report.levels]
        assert [(x.price, x.zone_low, x.zone_high, x.touches, x.grade, x.role, x.state) for x in lv.levels] == shown
        for side in ("long", "short"):
            assert plan_trade(side, lv.close, lv.atr, lv.levels) == plan_from_report(report, side)
