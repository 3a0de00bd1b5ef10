"""Runs the scan: each symbol's timeframes analysed once, both sides planned and scored, the best kept."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from engine.reports.inputs import WhaleFeed, market_inputs, optional
from engine.scan.qualify import QualifyRules, Setup, evaluate
from tools.agent_tools.base import ToolError, symbol_of
from tools.agent_tools.structure_data import cached_report, closed_frame
from tools.market.base import MarketData, MarketDataError
from tools.structure.mtf import DEFAULT_TIMEFRAMES, StructureCache, combine
from tools.structure.render import fmt_price
from tools.structure.score import mcf_score
from tools.structure.targets import plan_from_report

log = logging.getLogger(__name__)
DEFAULT_WATCHLIST: tuple[str, ...] = ("BTC", "ETH", "SOL", "AVAX", "XRP", "DOGE", "LINK", "ADA", "POL")
Progress = Callable[[str], None]


@dataclass
class ScanResult:
    """Every setup looked at, the qualifying ones ranked, and the symbols that could not be scanned."""

    watchlist: list[str]
    timeframes: list[str]
    setups: list[Setup] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    top_n: int = 5

    @property
    def qualified(self) -> list[Setup]:
        """Qualifying setups, best first, one per symbol (its best)."""
        best: dict[str, Setup] = {}
        for s in sorted((s for s in self.setups if s.qualified), key=Setup.rank_key, reverse=True):
            best.setdefault(s.symbol, s)
        return list(best.values())

    @property
    def top(self) -> list[Setup]:
        """The elite: the first `top_n` qualifying setups."""
        return self.qualified[: self.top_n]


async def scan_symbol(
    market: MarketData,
    symbol: str,
    timeframes: Sequence[str],
    rules: QualifyRules,
    cache: StructureCache,
    whales: WhaleFeed | None = None,
    bars: int = 500,
) -> list[Setup]:
    """Both sides of `symbol` on each timeframe, evaluated against `rules`."""
    sym = symbol_of(symbol)
    frames = await asyncio.gather(*(closed_frame(market, sym, tf, bars) for tf in timeframes))
    reports = {tf: cached_report(cache, f, sym, tf) for tf, f in zip(timeframes, frames, strict=True)}
    alignment = combine(sym, reports).alignment
    ticker = await optional(market.ticker(sym))
    # Derivatives and flows are read once per symbol, against the slowest timeframe's candles.
    inputs = await market_inputs(market, sym, frames[-1], whales)
    out: list[Setup] = []
    for tf, report in reports.items():
        price = float(ticker.last) if ticker is not None else report.close
        for side in ("long", "short"):
            plan = plan_from_report(report, side, price=price)
            score = mcf_score(report, side, inputs.order_flow_in, inputs.derivatives_in, inputs.onchain_in)
            out.append(evaluate(report.symbol or sym, tf, plan, score, alignment, rules))
    return out


async def run_scan(
    market: MarketData,
    watchlist: Sequence[str] = DEFAULT_WATCHLIST,
    timeframes: Sequence[str] = DEFAULT_TIMEFRAMES,
    rules: QualifyRules | None = None,
    *,
    cache: StructureCache | None = None,
    whales: WhaleFeed | None = None,
    progress: Progress | None = None,
) -> ScanResult:
    """Scan `watchlist`; a symbol the provider cannot serve is listed in `failed`, the rest go on."""
    rules = rules or QualifyRules()
    cache = cache or StructureCache()
    result = ScanResult(list(watchlist), list(timeframes), top_n=rules.top)
    for symbol in watchlist:
        try:
            result.setups += await scan_symbol(market, symbol, timeframes, rules, cache, whales)
        except (MarketDataError, ToolError) as exc:
            result.failed[symbol] = exc.user_message
            log.info("scan: %s skipped: %s", symbol, exc.user_message)
        if progress is not None:
            progress(symbol)
    return result


def render_scan(result: ScanResult, when: str | None = None) -> str:
    """Markdown of the elite setups (or why there are none)."""
    head = f"**Elite scan**{f' {when}' if when else ''}: {len(result.watchlist)} symbols x {len(result.timeframes)} "
    head += f"timeframes, {len(result.qualified)} qualifying setups."
    lines = [head]
    for i, s in enumerate(result.top, 1):
        targets = ", ".join(fmt_price(t) for t in s.targets[:2])
        lines.append(
            f"{i}. **{s.symbol} {s.side}** on {s.timeframe}: entry {fmt_price(s.entry)}, stop {fmt_price(s.stop)}, "
            f"targets {targets}; R:R {s.rr_t1:.2f}, move to T1 {s.expected_move_pct:.1f}%, MCF {s.mcf_total}/12 "
            f"({s.mcf_band}), confidence {100 * s.confidence:.0f}%"
        )
    if not result.top:
        lines.append(
            "No setup qualifies now (confidence 65%+, timeframes agreeing, MCF 7+, room to T1, a plan to take)."
        )
    if result.failed:
        lines.append("Not scanned: " + "; ".join(f"{k} ({v})" for k, v in result.failed.items()))
    return "\n".join(lines)
