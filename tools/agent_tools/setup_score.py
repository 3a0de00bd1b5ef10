"""The MCF score (SPEC section 4) of both sides and the multi-timeframe alignment, as JSON and as lines for people.

Shared by the analyst's `get_structure` (so /analyze and free text show them) and `bastion analyze`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from tools.structure.mtf import DEFAULT_TIMEFRAMES, combine
from tools.structure.report import StructureReport
from tools.structure.score import DerivativesInputs, McfScore, OrderFlowInputs, mcf_score

ALIGNMENT_TIMEFRAMES = (*DEFAULT_TIMEFRAMES, "1d")
_BIAS = {1: "bullish", -1: "bearish", 0: "neutral"}
OI_WINDOW_H = 4.0  # the overview's open-interest change is over 4 h: the price move is taken over the same window


def price_move_pct(frame: pd.DataFrame, hours: float = OI_WINDOW_H) -> float | None:
    """Close-to-close change over the last `hours` of a closed-candle frame (None when it is shorter)."""
    if len(frame) < 2:
        return None
    before = frame[frame.index <= frame.index[-1] - pd.Timedelta(hours=hours)]
    if len(before) == 0:
        return None
    first = float(before["close"].iloc[-1])
    return 100.0 * (float(frame["close"].iloc[-1]) / first - 1.0) if first > 0 else None


def score_inputs(overview: Mapping[str, Any] | None, frame: pd.DataFrame) -> tuple[OrderFlowInputs, DerivativesInputs]:
    """MCF inputs from the market overview (funding, open interest, long/short, book) and the candles."""
    o = overview or {}
    funding = o.get("funding_pct_per_8h")
    book = o.get("book_imbalance")
    flow = OrderFlowInputs(
        book_imbalance=None if book is None else max(-1.0, min(1.0, float(book))),
        volume_ratio=_volume_ratio(frame),
    )
    deriv = DerivativesInputs(
        funding_rate=None if funding is None else float(funding) / 100,
        oi_change_pct=o.get("open_interest_change_pct"),
        price_change_pct=price_move_pct(frame),
        long_short_ratio=o.get("long_short_ratio"),
    )
    return flow, deriv


def _volume_ratio(frame: pd.DataFrame, bars: int = 20) -> float | None:
    if len(frame) <= bars:
        return None
    vol = frame["volume"].to_numpy()
    mean = float(vol[-bars - 1 : -1].mean())
    return float(vol[-1]) / mean if mean > 0 else None


def mcf_json(report: StructureReport, overview: Mapping[str, Any] | None, frame: pd.DataFrame) -> dict[str, Any]:
    """Both sides' MCF score: total of 12, band, confidence, each factor's score and what was missing."""
    flow, deriv = score_inputs(overview, frame)
    return {side: _score_json(mcf_score(report, side, flow, deriv)) for side in ("long", "short")}


def _score_json(s: McfScore) -> dict[str, Any]:
    return {
        "total": s.total,
        "band": s.band,
        "confidence": round(s.confidence, 2),
        "tradeable": s.tradeable,
        "factors": {f.name: f.score for f in s.factors},
        "missing": s.missing,
    }


def alignment_json(symbol: str, reports: Mapping[str, StructureReport], missing: list[str]) -> dict[str, Any]:
    """Each timeframe's bias, the mean (-1..+1) and the direction when all agree."""
    m = combine(symbol, reports, missing)
    return {
        "biases": {tf: _BIAS[v] for tf, v in m.alignment.items()},
        "score": round(m.alignment_score, 2),
        "direction": m.direction,
        "missing": list(m.missing),
    }


def mcf_line(side: str, s: Mapping[str, Any]) -> str:
    """ "MCF score (long): 8 of 12, medium; structure 2, order flow 2, derivatives 3, on-chain 1 (no data)"."""
    names = {"structure": "structure", "order_flow": "order flow", "derivatives": "derivatives", "onchain": "on-chain"}
    factors = ", ".join(f"{names.get(k, k)} {v}" for k, v in s["factors"].items())
    gaps = [m.split(".")[-1].replace("_", " ") for m in s.get("missing") or []]
    note = f"; not available: {', '.join(gaps)}" if gaps else ""
    return (
        f"MCF score ({side}): {s['total']} of 12, {s['band']} (confidence {100 * s['confidence']:.0f}%); "
        f"{factors}{note}"
    )


def alignment_line(a: Mapping[str, Any]) -> str:
    """ "Timeframes: 15m bullish, 1h bullish, 4h neutral, 1d bearish; alignment +0.25, no common direction"."""
    parts = ", ".join(f"{tf} {bias}" for tf, bias in a["biases"].items()) or "none"
    direction = f"all {a['direction']}" if a.get("direction") else "no common direction"
    gone = f"; no data for {', '.join(a['missing'])}" if a.get("missing") else ""
    return f"Timeframes: {parts}; alignment {a['score']:+.2f}, {direction}{gone}"
