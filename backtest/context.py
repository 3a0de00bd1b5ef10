"""Decision contexts at bar t, built only from bars <= t: the replay provider, the structure engine, RiskContext."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from engine.risk.context import (
    CONTEXT_BARS,
    MarketView,
    RiskContext,
    RiskPosition,
    build_market_view,
    context_structure,
)
from tools.market.features import OhlcvArrays, timeframe_seconds
from tools.market.files import FundingRates
from tools.market.replay import ReplayMarketData, ms_to_datetime
from tools.structure.analysis import atr_as_of, level_pass, shown_rows, window_pivots
from tools.structure.config import DEFAULT_CONFIG, StructureConfig
from tools.structure.levels import Level
from tools.structure.pivots import market_trend
from tools.structure.report import StructureReport
from tools.structure.targets import Side, TradePlan, plan_trade


@dataclass(frozen=True, slots=True)
class EntryLevels:
    """The level part of the structure at an entry bar: ATR, the displayed levels (those `analyze` shows) and the
    pivot trend."""

    close: float
    atr: float
    levels: list[Level]
    trend: int
    _plans: dict[tuple[str, int], TradePlan] = field(default_factory=dict, compare=False, repr=False)

    def plan(self, side: Side, min_stop_grade: int = 2) -> TradePlan:
        """plan_trade from the close on these levels (the plan analyze and the calculator give), once per side and
        stop grade: the setup check and the rows of its entry read the same plan."""
        key = (side, min_stop_grade)
        got = self._plans.get(key)
        if got is None:
            got = self._plans[key] = plan_trade(side, self.close, self.atr, self.levels, min_stop_grade=min_stop_grade)
        return got


# The funding note of a symbol without a funding-rate file (the report says "no funding" when every symbol has it).
NO_FUNDING_FILE = "none (no funding-rate file beside the candles)"


class ReplayContexts:
    """Contexts of one symbol and timeframe; every read goes through the replay clock, so nothing after t leaks."""

    def __init__(
        self,
        md: ReplayMarketData,
        symbol: str,
        timeframe: str,
        lookback: int = CONTEXT_BARS,
        config: StructureConfig = DEFAULT_CONFIG,
    ) -> None:
        self.md = md
        self.symbol = md.resolve(symbol)
        self.timeframe = timeframe
        self.lookback = lookback
        self.config = config
        self.tf_ms = timeframe_seconds(timeframe) * 1000
        md.set_now(None)
        self.full = md.candles(self.symbol, timeframe, limit=10**9)  # the whole series (outcomes only)
        # Funding events of the perp, if its funding-rate file is there: charged on the bars simulated after t only.
        self.funding_rates: FundingRates | None = md.funding_rates(self.symbol)
        self.funding = None if self.funding_rates is None else self.funding_rates.per_bar(self.full.ts, self.tf_ms)
        self._reports: dict[int, StructureReport] = {}
        self._report_bars: dict[int, OhlcvArrays] = {}  # the candles each cached report was read from
        self._entries: dict[int, EntryLevels] = {}

    def funding_note(self, charged: bool) -> str:
        """What the backtest does about funding for this symbol, in words (the report's line)."""
        rates = self.funding_rates
        if rates is None:
            return NO_FUNDING_FILE
        if not len(rates):
            return f"none ({rates.source} is empty)"
        span = f"{ms_to_datetime(int(rates.ts[0])):%Y-%m-%d}..{ms_to_datetime(int(rates.ts[-1])):%Y-%m-%d}"
        events = f"{rates.source}, {len(rates):,} events {span}"
        return f"charged from {events}" if charged else f"not charged (--no-funding); {events}"

    def close_time_ms(self, bar: int) -> int:
        """Epoch ms at which bar `bar` of the full series has closed."""
        return int(self.full.ts[bar]) + self.tf_ms

    def visible(self, bar: int) -> OhlcvArrays:
        """The last `lookback` closed candles when bar `bar` has just closed, from the replay provider."""
        self.md.set_now(self.close_time_ms(bar))
        return self.md.candles(self.symbol, self.timeframe, self.lookback)

    def entry_levels(self, bar: int) -> EntryLevels:
        """ATR, displayed levels and trend at `bar`: the live analysis' own level pass (level_pass on the highs,
        lows, closes and volumes), so a structure entry is planned on the levels a trader is shown (cached per bar)."""
        cached = self._entries.get(bar)
        if cached is not None:
            return cached
        c = self.visible(bar)
        cfg, as_of = self.config, len(c) - 1
        ws = max(0, as_of - cfg.window + 1)
        a = atr_as_of(c.high, c.low, c.close, as_of, cfg)
        piv = window_pivots(c.high, c.low, as_of, ws, cfg)
        table = level_pass(c.high, c.low, c.close, c.volume, as_of, a, piv, ws, cfg)
        shown = table.levels(shown_rows(table, cfg))
        cached = self._entries[bar] = EntryLevels(float(c.close[as_of]), a, shown, market_trend(piv))
        return cached

    def report(self, bar: int) -> StructureReport:
        """Full structure report as of `bar` (cached: one per bar, shared by every scenario there)."""
        cached = self._reports.get(bar)
        if cached is None:
            c = self._report_bars[bar] = self.visible(bar)
            cached = context_structure(c.high, c.low, c.close, c.volume, c.ts, self.symbol, self.timeframe, self.config)
            self._reports[bar] = cached
        return cached

    def market_view(self, bar: int) -> MarketView:
        """What the market looks like when bar `bar` has closed (price = its close): the monitor's builder."""
        report = self.report(bar)
        c = self._report_bars[bar]  # the same replay read as the report's
        return build_market_view(
            price=report.close,
            close=c.close,
            volume=c.volume,
            report=report,
            now=ms_to_datetime(self.close_time_ms(bar)),
            timeframe=self.timeframe,
            funding_rate=self.funding_at(bar),
        )

    def funding_at(self, bar: int) -> float | None:
        """The last funding rate settled by the close of `bar` (what the replay provider, and so the monitor, reads
        then), None without a funding-rate file or before its first event."""
        rates = self.funding_rates
        i = None if rates is None else rates.settled_by(self.close_time_ms(bar))
        return None if rates is None or i is None else float(rates.rate[i])

    def forget(self) -> None:
        """Drop cached reports and entry levels (a worker keeps only the bars it is working on)."""
        self._reports.clear()
        self._report_bars.clear()
        self._entries.clear()


def risk_context(position: RiskPosition, view: MarketView) -> RiskContext:
    """The rules' input; the same object the model's prompt is rendered from."""
    return RiskContext(position=position, market=view)


def opened_at(contexts: ReplayContexts, bar: int) -> datetime:
    """Entry time of a position entered at the close of `bar`."""
    return ms_to_datetime(contexts.close_time_ms(bar))
