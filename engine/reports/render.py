"""Markdown of a report body: the same sections in the same order every time, figures from the body only."""

from __future__ import annotations

from engine.reports.body import KeyLevel, ReportBody, Scenario
from tools.structure.render import fmt_price

NOT_AVAILABLE = "not available"


def _level(lv: KeyLevel) -> str:
    return f"{fmt_price(lv.price)} (grade {lv.grade}, {lv.touches} touches, {lv.distance_atr:+.1f} ATR)"


def _scenario(s: Scenario) -> str:
    targets = ", ".join(f"{t.name} {fmt_price(t.price)} ({t.rr:.1f}R)" for t in s.targets)
    head = "Bullish (long)" if s.side == "long" else "Bearish (short)"
    line = f"- {head}: entry {fmt_price(s.entry)}, stop {fmt_price(s.stop)}, {targets}; R:R at T1 {s.rr_t1:.2f}"
    if s.rejected:
        line += f". Rejected: {'; '.join(s.reasons)}"
    return line + "."


def _usd(x: float) -> str:
    return f"${x:,.0f}"


def _derivatives(body: ReportBody) -> list[str]:
    d = body.derivatives
    funding = NOT_AVAILABLE if d.funding_pct_8h is None else f"{d.funding_pct_8h:+.4f}% per 8h"
    if d.oi_change_pct is not None:
        oi = f"{d.oi_change_pct:+.2f}% over {d.oi_window_hours:g}h"
        if d.oi_usd is not None:
            oi += f" (open interest {_usd(d.oi_usd)})"
    elif d.oi_usd is not None:
        oi = f"open interest {_usd(d.oi_usd)}, change {NOT_AVAILABLE}"
    else:
        oi = NOT_AVAILABLE
    ls = NOT_AVAILABLE if d.long_short_ratio is None else f"{d.long_short_ratio:g} accounts long per short"
    return [f"- Funding: {funding}", f"- Open interest change: {oi}", f"- Long/short ratio: {ls}"]


def _whale(body: ReportBody) -> str:
    w = body.whale
    if not w.available:
        return f"- Whale flows: {NOT_AVAILABLE} (no on-chain provider configured)"
    parts = []
    for name, value in (
        ("whale net flow", w.whale_net_flow_usd),
        ("exchange net flow", w.exchange_net_flow_usd),
        ("stablecoin net mint", w.stablecoin_net_mint_usd),
    ):
        parts.append(f"{name} {NOT_AVAILABLE if value is None else ('+' if value >= 0 else '-') + _usd(abs(value))}")
    return f"- Whale flows ({w.lean or 'neutral'} lean): " + ", ".join(parts)


def render_body(body: ReportBody) -> str:
    """The report as Markdown (Telegram/Discord renderers take it from here)."""
    when = f"{body.as_of:%Y-%m-%d %H:%M} UTC" if body.as_of else "latest close"
    label = " (simulated market)" if body.simulated else ""
    align = ", ".join(f"{tf} {v:+d}" for tf, v in body.alignment.items())
    p = body.profile
    out = [
        f"**{body.symbol} {body.timeframe} report**{label}, candle closed {when}",
        f"Price {fmt_price(body.price)}. Bias **{body.bias}**, confidence {100 * body.confidence:.0f}% "
        f"(timeframes {align}).",
        "",
        "**Key levels**",
    ]
    res, sup = body.resistances(), body.supports()
    out += [f"- Resistance {_level(lv)}" for lv in res] or ["- Resistance: none holding in range"]
    out += [f"- Support {_level(lv)}" for lv in sup] or ["- Support: none holding in range"]
    out += ["", "**Scenarios**", *(_scenario(s) for s in body.scenarios)]
    out += [
        "",
        "**Volume profile**",
        f"- POC {fmt_price(p.poc)}, value area {fmt_price(p.val)} - {fmt_price(p.vah)} "
        f"({100 * p.value_area_share:.0f}% of volume)",
        f"- High-volume nodes: {', '.join(fmt_price(x) for x in p.hvn) or 'none'}",
        f"- Low-volume nodes: {', '.join(fmt_price(x) for x in p.lvn) or 'none'}",
        "",
        "**Derivatives and flows**",
        *_derivatives(body),
        _whale(body),
        "",
        "**Since the previous report**",
    ]
    out += [f"- {c}" for c in body.changes] if body.changes else ["- First report of this symbol and timeframe."]
    if body.narrative:
        out += ["", "**Narrative**", body.narrative]
    return "\n".join(out)
