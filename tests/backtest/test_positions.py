"""The backtest's positions and market views built in bulk are the ones built row by row from the replay reads."""

from __future__ import annotations

import math
from pathlib import Path

from backtest.config import BacktestConfig
from backtest.context import ReplayContexts, opened_at
from backtest.scenarios import generate
from backtest.worker import decision_contexts, positions
from engine.risk.context import RiskPosition, build_market_view
from tools.market.replay import ReplayMarketData, ms_to_datetime

SMALL = BacktestConfig(symbols=["BTC"], scenarios=120, per_bar=4, chunk=3, workers=1)


def test_bulk_positions_and_views_equal_row_by_row(ohlcv_dir: Path) -> None:
    ctx = ReplayContexts(ReplayMarketData(ohlcv_dir), "BTC", "1h", SMALL.lookback)
    sc = generate(ctx, SMALL, range(SMALL.groups))
    assert len(sc) > 10 and len(set(sc.entry_bar.tolist())) > 1
    got = positions(sc, ctx)
    for i, p in enumerate(got):
        stop, initial = float(sc.stop[i]), float(sc.initial_stop[i])
        assert p == RiskPosition(
            symbol=ctx.symbol,
            side="long" if sc.d[i] > 0 else "short",
            entry=float(sc.entry[i]),
            size=float(sc.remaining[i]),
            leverage=float(sc.leverage[i]),
            stop=None if math.isnan(stop) else stop,
            initial_stop=None if math.isnan(initial) else initial,
            targets=[float(sc.t1[i]), float(sc.t2[i]), float(sc.t3[i])],
            targets_hit=int(sc.targets_hit[i]),
            opened_at=opened_at(ctx, int(sc.entry_bar[i])),
        )
    fresh = ReplayContexts(ReplayMarketData(ohlcv_dir), "BTC", "1h", SMALL.lookback)
    for c in decision_contexts(sc, ctx):
        bar = int(sc.bar[[p == c.position for p in got].index(True)])
        seen = fresh.visible(bar)  # what the replay clock shows at the close of the bar
        assert c.market == build_market_view(
            price=float(seen.close[-1]),
            close=seen.close,
            volume=seen.volume,
            report=fresh.report(bar),
            now=ms_to_datetime(fresh.close_time_ms(bar)),
            timeframe="1h",
        )
