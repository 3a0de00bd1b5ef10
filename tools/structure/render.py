"""Two renderings of a `StructureReport`: compact for model prompts, human for people."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tools.numbers import plural
from tools.structure.levels import NODE_ATR

if TYPE_CHECKING:
    from tools.structure.report import LevelOut, MultiTimeframeReport, StructureReport

_DIR = {1: "up", -1: "down", 0: "mixed"}
_BIAS = {1: "bullish", -1: "bearish", 0: "neutral"}


def fmt_price(p: float) -> str:
    """Price with precision that suits its magnitude (67,234 / 184.35 / 0.5123)."""
    a = abs(p)
    if a >= 1000:
        return f"{p:,.0f}"
    if a >= 100:
        return f"{p:.1f}"
    if a >= 1:
        return f"{p:.2f}"
    return f"{p:.4g}"


def _lv(lv: LevelOut) -> str:
    s = f"{fmt_price(lv.price)} g{lv.grade} t{lv.touches}"
    return s + (" BROKEN" if lv.state == "broken" else "")


def render_compact(r: StructureReport, max_per_side: int = 4) -> str:
    """About 350 tokens: levels, breaks, trendlines, pressure points, profile, auto-support, pivots."""
    t = r.as_of_time.strftime("%Y-%m-%d %H:%M") if r.as_of_time else f"bar {r.as_of}"
    p = r.profile
    lines = [
        f"{r.symbol} {r.timeframe} @{t}Z close {fmt_price(r.close)} ATR {fmt_price(r.atr)} "
        f"({100 * r.atr / r.close:.2f}%) trend {_DIR[r.trend]} bias {_BIAS[r.bias]}",
        "R: " + (" | ".join(_lv(lv) for lv in r.resistances()[:max_per_side]) or "none"),
        "S: " + (" | ".join(_lv(lv) for lv in r.supports()[:max_per_side]) or "none"),
    ]
    for b in r.major_breaks:
        lines.append(f"BREAK: g{b.grade} {fmt_price(b.price)} broken {b.break_direction} at bar {b.broken_at}")
    if r.trendlines:
        lines.append(
            "TL: "
            + "; ".join(
                f"{ln.kind[:3]} g{ln.grade} t{ln.touches} now {fmt_price(ln.value_now)} {ln.state}"
                for ln in r.trendlines
            )
        )
    if r.pressure_points:
        lines.append(
            "PP: "
            + "; ".join(
                f"{pp.trendline_kind[:3]}-TL x {fmt_price(pp.price)} in {pp.bars_ahead:.0f} bars"
                for pp in r.pressure_points[:3]
            )
        )
    buy = 100 * p.buy_volume / p.total_volume if p.total_volume else 0.0
    lines.append(
        f"VP({r.bars} bars): POC {fmt_price(p.poc)} VA {fmt_price(p.val)}-{fmt_price(p.vah)} "
        f"HVN {','.join(fmt_price(x) for x in p.hvn) or '-'} LVN {','.join(fmt_price(x) for x in p.lvn) or '-'} "
        f"buy {buy:.0f}%"
    )
    if r.auto_support:
        lines.append(
            "AUTO: "
            + " ".join(f"#{z.rank} {fmt_price(z.price)}({z.sensitivities}/16,t{z.touches})" for z in r.auto_support[:5])
        )
    if r.recent_pivots:
        lines.append(
            "PIV: " + " ".join(f"{pv.kind[0].upper()} {fmt_price(pv.price)}@{pv.bar}" for pv in r.recent_pivots[-4:])
        )
    return "\n".join(lines)


def _level_line(lv: LevelOut) -> str:
    """One level for people, with what its grade rests on: respected touches and a volume node."""
    touches = plural(lv.touches, "touch")
    line = f"  {fmt_price(lv.price)}  grade {lv.grade}, {touches}, {lv.state}, {lv.distance_atr:+.1f} ATR"
    decided = round(lv.reactions / lv.respect) if lv.respect > 0 else 0
    if decided:
        line += f", {lv.reactions} of {decided} respected"
    if lv.node_atr is not None and lv.node_atr <= NODE_ATR:
        line += ", at a volume node"
    return line


def render_human(r: StructureReport) -> str:
    """Multi-line plain-text report for a person."""
    t = r.as_of_time.strftime("%Y-%m-%d %H:%M UTC") if r.as_of_time else f"bar {r.as_of}"
    p = r.profile
    out = [
        f"{r.symbol} {r.timeframe} market structure as of {t}",
        f"Close {fmt_price(r.close)}, ATR(14) {fmt_price(r.atr)} ({100 * r.atr / r.close:.2f}% of price).",
        f"Swing structure: {_DIR[r.trend]}; bias {_BIAS[r.bias]}.",
        "",
        "Resistance:",
    ]
    for lv in r.resistances() or []:
        out.append(_level_line(lv))
    if not r.resistances():
        out.append("  none in range")
    out.append("Support:")
    for lv in r.supports():
        out.append(_level_line(lv))
    if not r.supports():
        out.append("  none in range")
    for b in r.major_breaks:
        out.append(f"Grade {b.grade} level {fmt_price(b.price)} broke {b.break_direction} at bar {b.broken_at}.")
    if r.trendlines:
        out.append("Trendlines:")
        for ln in r.trendlines:
            out.append(
                f"  {ln.kind} line grade {ln.grade}, {plural(ln.touches, 'touch')} over {plural(ln.span, 'bar')}, "
                f"now at {fmt_price(ln.value_now)} ({ln.state})"
            )
    for pp in r.pressure_points[:3]:
        out.append(
            f"Pressure point: {pp.trendline_kind} trendline meets {fmt_price(pp.price)} in about "
            f"{plural(round(pp.bars_ahead), 'bar')}."
        )
    out.append(
        f"Volume profile ({r.bars} bars): POC {fmt_price(p.poc)}, value area {fmt_price(p.val)} - "
        f"{fmt_price(p.vah)}, high-volume nodes {', '.join(fmt_price(x) for x in p.hvn) or 'none'}, "
        f"low-volume nodes {', '.join(fmt_price(x) for x in p.lvn) or 'none'}."
    )
    if r.auto_support:
        out.append("Auto-support priority:")
        for z in r.auto_support:
            out.append(
                f"  #{z.rank} {fmt_price(z.price)} ({z.role}), {z.sensitivities}/16 sensitivities, "
                f"{plural(z.touches, 'touch')}, score {z.score:.2f}"
            )
    return "\n".join(out)


def render_mtf_compact(m: MultiTimeframeReport) -> str:
    """Every timeframe's compact block plus the alignment line."""
    align = " ".join(f"{tf}:{v:+d}" for tf, v in m.alignment.items())
    head = f"MTF {m.symbol} alignment {align} score {m.alignment_score:+.2f} direction {m.direction or 'none'}"
    if m.missing:
        head += f" missing {','.join(m.missing)}"
    return "\n\n".join([head, *(r.compact() for r in m.reports.values())])
