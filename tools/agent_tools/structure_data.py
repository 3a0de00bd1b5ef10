"""Structure reports for the tools: cached per (symbol, timeframe, last closed candle), rendered to compact JSON."""

from __future__ import annotations

from typing import Any

import pandas as pd

from tools.agent_tools.base import ToolDeps, ToolError, num
from tools.market.base import MarketData
from tools.structure.analysis import analyze_frame
from tools.structure.mtf import StructureCache, closed_candles
from tools.structure.report import LevelOut, StructureReport
from tools.structure.targets import TradePlan, plan_from_report

BARS = 500
_DIR = {1: "up", -1: "down", 0: "mixed"}
_BIAS = {1: "bullish", -1: "bearish", 0: "neutral"}


async def closed_frame(market: MarketData, symbol: str, timeframe: str, bars: int = BARS) -> pd.DataFrame:
    """The last `bars` closed candles of `symbol`."""
    frame = closed_candles(await market.ohlcv(symbol, timeframe, bars + 1), timeframe).iloc[-bars:]
    if len(frame) < 50:
        raise ToolError(f"Not enough closed {timeframe} candles for {symbol} ({len(frame)}).")
    return frame


async def structure_of(deps: ToolDeps, symbol: str, timeframe: str) -> tuple[StructureReport, pd.DataFrame]:
    """The structure report (cached per last closed candle) and the frame it was built on."""
    frame = await closed_frame(deps.market, symbol, timeframe)
    report = cached_report(deps.cache, frame, symbol, timeframe)
    return report, frame


def cached_report(cache: StructureCache, frame: pd.DataFrame, symbol: str, timeframe: str) -> StructureReport:
    """Reuse the report of the same last closed candle; analyse otherwise."""
    last = frame.index[-1]
    report = cache.for_candle(symbol, timeframe, last)
    if report is None:
        report = analyze_frame(frame, symbol, timeframe)
        cache.put(symbol, timeframe, last, report)
    return report


def level_json(lv: LevelOut) -> dict[str, Any]:
    """One level as the model sees it."""
    return {
        "price": num(lv.price),
        "grade": lv.grade,
        "touches": lv.touches,
        "state": lv.state,
        "distance_atr": round(lv.distance_atr, 2),
    }


def plan_json(plan: TradePlan) -> dict[str, Any]:
    """A trade plan: entry, stop, targets with their R:R."""
    return {
        "entry": num(plan.entry),
        "stop": num(plan.stop),
        "stop_source": plan.stop_source,
        "risk_per_unit": num(plan.risk_per_unit),
        "targets": [
            {"name": t.name, "price": num(t.price), "take_pct": round(t.take_pct, 1), "rr": round(t.rr, 2)}
            for t in plan.targets
        ],
        "rr_t1": round(plan.rr_t1, 2),
        "rejected": plan.rejected,
        "reasons": list(plan.reasons),
    }


def structure_json(
    report: StructureReport, simulated: bool, per_side: int = 4, price: float | None = None
) -> dict[str, Any]:
    """Compact JSON of a report with both trade plans (from the live `price` when known); every figure an
    answer may cite."""
    p = report.profile
    plans: dict[str, Any] = {}
    for side in ("long", "short"):
        try:
            plans[side] = plan_json(plan_from_report(report, side, price=price))
        except ValueError:
            plans[side] = None
    return {
        "symbol": report.symbol,
        "timeframe": report.timeframe,
        "as_of": report.as_of_time.isoformat() if report.as_of_time else None,
        "simulated": simulated,
        "close": num(report.close),
        "price": num(price) if price is not None else None,
        "atr": num(report.atr),
        "atr_pct": round(100 * report.atr / report.close, 2),
        "trend": _DIR[report.trend],
        "bias": _BIAS[report.bias],
        "resistances": [level_json(lv) for lv in report.resistances()[:per_side]],
        "supports": [level_json(lv) for lv in report.supports()[:per_side]],
        "major_breaks": [
            {"price": num(b.price), "grade": b.grade, "direction": b.break_direction} for b in report.major_breaks
        ],
        "trendlines": [
            {"kind": t.kind, "grade": t.grade, "touches": t.touches, "now": num(t.value_now), "state": t.state}
            for t in report.trendlines[:3]
        ],
        "profile": {
            "poc": num(p.poc),
            "vah": num(p.vah),
            "val": num(p.val),
            "hvn": [num(x) for x in p.hvn],
            "lvn": [num(x) for x in p.lvn],
        },
        "plans": plans,
    }
