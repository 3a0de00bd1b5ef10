"""Candlestick chart of a StructureReport: levels, trendlines, side volume profile, position lines."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")  # headless: charts are rendered to bytes on servers, never shown

import matplotlib.pyplot as plt
import mplfinance as mpf
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from tools.structure.render import fmt_price
from tools.structure.report import StructureReport

# mplfinance titles ask for a "semibold" DejaVu the Agg font cache lacks; the fallback is fine.
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)

WIDTH_PX, HEIGHT_PX, DPI = 1280, 720, 100
_GRADE_WIDTH = {1: 0.8, 2: 1.3, 3: 2.0, 4: 2.4}
_STYLE = mpf.make_mpf_style(base_mpf_style="yahoo", gridstyle=":", y_on_right=False, rc={"font.size": 8})


@dataclass(frozen=True, slots=True)
class PositionLines:
    """Entry, stop and targets of a position to draw across the chart."""

    entry: float
    stop: float | None = None
    targets: list[float] = field(default_factory=list)
    side: str = "long"


def structure_figure(
    df: pd.DataFrame, report: StructureReport, position: PositionLines | None = None, bars: int = 240
) -> Figure:
    """Build the figure: the last `bars` candles up to the report's bar, with its structure drawn on."""
    end = report.as_of + 1
    start = max(0, end - bars)
    data = df.iloc[start:end][["open", "high", "low", "close", "volume"]]
    fig, axes = mpf.plot(
        data,
        type="candle",
        volume=True,
        style=_STYLE,
        returnfig=True,
        figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI),
        title=f"{report.symbol} {report.timeframe}",
        tight_layout=False,
        scale_padding={"left": 0.55, "right": 0.4, "top": 0.6, "bottom": 0.6},
        warn_too_much_data=10_000,
    )
    price_ax, vol_ax = axes[0], axes[2]
    n = len(data)
    lo, hi = float(data["low"].min()), float(data["high"].max())
    pad = 0.05 * (hi - lo or hi * 0.01)
    ylim = (lo - pad, hi + pad)

    for lv in report.levels:
        if not ylim[0] <= lv.price <= ylim[1]:
            continue
        color = "#2e7d32" if lv.role == "support" else "#c62828"
        style = "--" if lv.state == "broken" else "-"
        price_ax.axhline(lv.price, color=color, lw=_GRADE_WIDTH[lv.grade], ls=style, alpha=0.8)
        price_ax.text(
            n - 0.5,
            lv.price,
            f" {fmt_price(lv.price)} g{lv.grade} t{lv.touches}",
            color=color,
            va="center",
            ha="left",
            fontsize=7,
            clip_on=False,
        )
    for ln in report.trendlines:
        if not ylim[0] <= ln.value_now <= ylim[1]:
            continue  # far from the visible candles: it would only squash the price scale
        x0 = max(ln.first_touch, start)
        xs = np.array([x0, report.as_of], dtype=float)
        ys = ln.anchor_price + ln.slope * (xs - ln.anchor_bar)
        color = "#1565c0" if ln.kind == "support" else "#ef6c00"
        price_ax.plot(xs - start, ys, color=color, lw=_GRADE_WIDTH[ln.grade], ls="-" if ln.state == "holding" else ":")
    if position is not None:
        lines = [(position.entry, "entry", "#283593")]
        if position.stop is not None:
            lines.append((position.stop, "stop", "#b71c1c"))
        lines += [(t, f"T{i + 1}", "#1b5e20") for i, t in enumerate(position.targets)]
        for price, name, color in lines:
            price_ax.axhline(price, color=color, lw=1.2, ls="-.")
            price_ax.text(0, price, f"{name} {fmt_price(price)} ", color=color, ha="left", va="bottom", fontsize=7)
            ylim = (min(ylim[0], price - pad), max(ylim[1], price + pad))
    price_ax.set_ylim(*ylim)
    _side_profile(fig, price_ax, vol_ax, report, ylim)
    return fig


def _side_profile(
    fig: Figure, price_ax: Axes, vol_ax: Axes, report: StructureReport, ylim: tuple[float, float]
) -> None:
    """Shrink the candle axes and draw the volume profile (buy/sell stacked) in the freed strip."""
    pos, vpos = price_ax.get_position(), vol_ax.get_position()
    main_w = pos.width * 0.80
    price_ax.set_position((pos.x0, pos.y0, main_w, pos.height))
    vol_ax.set_position((vpos.x0, vpos.y0, main_w, vpos.height))
    ax = fig.add_axes((pos.x0 + pos.width * 0.86, pos.y0, pos.width * 0.14, pos.height))
    p = report.profile
    width = p.bin_width
    centers = p.low + width * (np.arange(p.bins) + 0.5)
    buy, sell = np.asarray(p.buy), np.asarray(p.sell)
    ax.barh(centers, buy, height=width, color="#66bb6a", alpha=0.8, lw=0)
    ax.barh(centers, sell, left=buy, height=width, color="#ef5350", alpha=0.8, lw=0)
    ax.axhspan(p.val, p.vah, color="#90caf9", alpha=0.25)
    ax.axhline(p.poc, color="#0d47a1", lw=1.5)
    ax.text(ax.get_xlim()[1], p.poc, f"POC {fmt_price(p.poc)}", ha="right", va="bottom", fontsize=7, color="#0d47a1")
    for name, y in (("VAH", p.vah), ("VAL", p.val)):
        ax.text(ax.get_xlim()[1], y, f"{name} {fmt_price(y)}", ha="right", va="bottom", fontsize=6, color="#1565c0")
    ax.set_ylim(*ylim)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("volume profile", fontsize=7)


def render_structure_chart(
    df: pd.DataFrame, report: StructureReport, position: PositionLines | None = None, bars: int = 240
) -> bytes:
    """PNG bytes (1280 x 720 px) of `structure_figure`."""
    fig = structure_figure(df, report, position, bars)
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI)
        return buf.getvalue()
    finally:
        plt.close(fig)
