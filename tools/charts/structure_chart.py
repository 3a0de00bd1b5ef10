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
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import blended_transform_factory

from tools.charts.labels import Placed, PriceLabel, place_labels
from tools.structure.render import fmt_price
from tools.structure.report import LevelOut, StructureReport

# mplfinance titles ask for a "semibold" DejaVu the Agg font cache lacks; the fallback is fine.
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)

WIDTH_PX, HEIGHT_PX, DPI = 1280, 720, 100
_GRADE_WIDTH = {1: 0.8, 2: 1.3, 3: 2.0, 4: 2.4}
_STYLE = mpf.make_mpf_style(base_mpf_style="yahoo", gridstyle=":", y_on_right=False, rc={"font.size": 8})
LABEL_FONT = 7
LABEL_GAP_PX = 13  # one 7-point line plus a little air: labels closer than this would touch
# Shares of the candle panel's width: candles, then the label column, then the volume profile.
MAIN_SHARE, PROFILE_SHARE = 0.68, 0.13  # the label column takes what is left between them
_LABEL_BOX = {"facecolor": "white", "alpha": 0.75, "lw": 0, "pad": 0.6}
SUPPORT_COLOR, RESISTANCE_COLOR, PRICE_COLOR = "#2e7d32", "#c62828", "#37474f"
WATERMARK_GID = "watermark"  # the SIMULATED stamp lies across the candles on purpose; overlap checks skip it


@dataclass(frozen=True, slots=True)
class PositionLines:
    """A position, or a plan when `size` is None: entry, stop and targets drawn across the chart."""

    entry: float
    stop: float | None = None
    targets: list[float] = field(default_factory=list)
    side: str = "long"
    size: float | None = None  # set for an open position (in base units)
    pnl: float | None = None  # unrealised PnL in the quote currency
    liquidation: float | None = None
    quote: str = "USDT"

    @property
    def is_plan(self) -> bool:
        """A proposed trade rather than an open position."""
        return self.size is None

    def summary(self) -> str:
        """One line naming what is drawn: "Long plan: entry …, stop …" or "Long position 0.1 …, PnL …"."""
        parts = [f"entry {fmt_price(self.entry)}"]
        if self.stop is not None:
            parts.append(f"stop {fmt_price(self.stop)}")
        parts += [f"T{i + 1} {fmt_price(t)}" for i, t in enumerate(self.targets)]
        risk = abs(self.entry - self.stop) if self.stop is not None else 0.0
        if risk > 0 and self.targets:
            parts.append(f"R:R {abs(self.targets[0] - self.entry) / risk:.1f}")
        side = self.side.capitalize()
        if self.is_plan:
            return f"{side} plan: " + ", ".join(parts)
        head = f"{side} position {self.size:g}"
        if self.pnl is not None:
            parts.append(f"PnL {self.pnl:+,.2f} {self.quote}")
        if self.liquidation is not None:
            parts.append(f"liquidation {fmt_price(self.liquidation)}")
        return f"{head}: " + ", ".join(parts)


@dataclass(frozen=True, slots=True)
class ChartSource:
    """Where the candles came from and the price now (the marker), for the title and the SIMULATED stamp."""

    name: str = ""
    simulated: bool = False
    price: float | None = None


def level_label(lv: LevelOut) -> str:
    """"R 2,005 · grade 3 · 4 touches" (S for support; "broken" when price closed through it)."""
    kind = "S" if lv.role == "support" else "R"
    touches = f"{lv.touches} touch" + ("" if lv.touches == 1 else "es")
    text = f"{kind} {fmt_price(lv.price)} · grade {lv.grade} · {touches}"
    return text + (" · broken" if lv.state == "broken" else "")


def chart_title(report: StructureReport, source: ChartSource) -> str:
    """Symbol, timeframe, source and as-of time of the analysed candle."""
    parts = [f"{report.symbol} {report.timeframe}"]
    if source.name:
        parts.append(source.name + (" (simulated)" if source.simulated and "simul" not in source.name else ""))
    elif source.simulated:
        parts.append("simulated")
    if report.as_of_time is not None:
        parts.append(f"as of {report.as_of_time:%Y-%m-%d %H:%M} UTC")
    return " · ".join(parts)


def structure_figure(
    df: pd.DataFrame,
    report: StructureReport,
    position: PositionLines | None = None,
    bars: int = 240,
    source: ChartSource | None = None,
) -> Figure:
    """Build the figure: the last `bars` candles up to the report's bar, with its structure drawn on."""
    source = source or ChartSource()
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
        tight_layout=False,
        scale_padding={"left": 0.55, "right": 0.4, "top": 0.9, "bottom": 0.6},
        warn_too_much_data=10_000,
    )
    price_ax, vol_ax = axes[0], axes[2]
    lo, hi = float(data["low"].min()), float(data["high"].max())
    pad = 0.05 * (hi - lo or hi * 0.01)
    ylim = (lo - pad, hi + pad)
    marks = [position.entry, position.stop, *position.targets] if position is not None else []
    if source.price is not None:
        marks.append(source.price)
    for price in marks:
        if price is not None:
            ylim = (min(ylim[0], price - pad), max(ylim[1], price + pad))
    price_ax.set_ylim(*ylim)
    # The lowest price tick would sit on the volume panel's label and its top tick.
    price_ax.yaxis.set_major_locator(MaxNLocator(nbins=8, prune="lower"))
    vol_ax.yaxis.set_major_locator(MaxNLocator(nbins=4, prune="upper"))

    fig.suptitle(chart_title(report, source), fontsize=10, y=0.985)
    if position is not None:
        fig.text(0.5, 0.945, position.summary(), ha="center", va="center", fontsize=8, color="#283593")
    if source.simulated:
        price_ax.text(
            0.5, 0.5, "SIMULATED", transform=price_ax.transAxes, ha="center", va="center", fontsize=48,
            color="#9e9e9e", alpha=0.18, rotation=20, gid=WATERMARK_GID, zorder=0,
        )  # fmt: skip

    levels = [lv for lv in report.levels if ylim[0] <= lv.price <= ylim[1]]
    for lv in levels:
        color = SUPPORT_COLOR if lv.role == "support" else RESISTANCE_COLOR
        price_ax.axhline(lv.price, color=color, lw=_GRADE_WIDTH[lv.grade], ls="--" if lv.state == "broken" else "-",
                         alpha=0.8)  # fmt: skip
    for ln in report.trendlines:
        if not ylim[0] <= ln.value_now <= ylim[1]:
            continue  # far from the visible candles: it would only squash the price scale
        x0 = max(ln.first_touch, start)
        xs = np.array([x0, report.as_of], dtype=float)
        ys = ln.anchor_price + ln.slope * (xs - ln.anchor_bar)
        color = "#1565c0" if ln.kind == "support" else "#ef6c00"
        price_ax.plot(xs - start, ys, color=color, lw=_GRADE_WIDTH[ln.grade], ls="-" if ln.state == "holding" else ":")

    gap = _gap(fig, price_ax, ylim)
    right = [PriceLabel(lv.price, level_label(lv), SUPPORT_COLOR if lv.role == "support" else RESISTANCE_COLOR,
                        priority=lv.grade) for lv in levels]  # fmt: skip
    if source.price is not None:
        right.append(PriceLabel(source.price, f"price {fmt_price(source.price)}", PRICE_COLOR, priority=9))
        price_ax.axhline(source.price, color=PRICE_COLOR, lw=0.8, ls=":")
        price_ax.plot([1.0], [source.price], marker="<", color=PRICE_COLOR, markersize=7, clip_on=False,
                      transform=blended_transform_factory(price_ax.transAxes, price_ax.transData))  # fmt: skip
    _draw_column(price_ax, place_labels(right, ylim[0], ylim[1], gap), x=1.015, ha="left", leaders=True)

    if position is not None:
        left: list[PriceLabel] = [PriceLabel(position.entry, f"entry {fmt_price(position.entry)}", "#283593", 3)]
        lines = [(position.entry, "#283593")]
        if position.stop is not None:
            left.append(PriceLabel(position.stop, f"stop {fmt_price(position.stop)}", "#b71c1c", 3))
            lines.append((position.stop, "#b71c1c"))
        for i, t in enumerate(position.targets):
            left.append(PriceLabel(t, f"T{i + 1} {fmt_price(t)}", "#1b5e20", 2))
            lines.append((t, "#1b5e20"))
        if position.liquidation is not None and ylim[0] <= position.liquidation <= ylim[1]:
            left.append(PriceLabel(position.liquidation, f"liq {fmt_price(position.liquidation)}", "#4a148c", 3))
            lines.append((position.liquidation, "#4a148c"))
        for price, color in lines:
            price_ax.axhline(price, color=color, lw=1.2, ls="-.")
        _draw_column(price_ax, place_labels(left, ylim[0], ylim[1], gap), x=0.005, ha="left", leaders=False)
    _side_profile(fig, price_ax, vol_ax, report, ylim)
    return fig


def _gap(fig: Figure, ax: Axes, ylim: tuple[float, float]) -> float:
    """LABEL_GAP_PX in price units on `ax`."""
    height_px = ax.get_position().height * fig.get_figheight() * fig.dpi
    return (ylim[1] - ylim[0]) * LABEL_GAP_PX / max(height_px, 1.0)


def _draw_column(ax: Axes, placed: list[Placed], x: float, ha: str, leaders: bool) -> None:
    """Draw placed labels at `x` (a fraction of the axes' width); a label moved off its price gets a thin leader
    from the axes' edge to the text when `leaders`."""
    where = blended_transform_factory(ax.transAxes, ax.transData)
    for p in placed:
        ax.text(x, p.y, p.label.text, color=p.label.color, va="center", ha=ha, fontsize=LABEL_FONT, clip_on=False,
                transform=where, bbox=_LABEL_BOX)  # fmt: skip
        if leaders and p.moved:
            ax.plot([1.0, x], [p.label.price, p.y], color=p.label.color, lw=0.5, alpha=0.7, clip_on=False,
                    transform=where)  # fmt: skip


def _side_profile(
    fig: Figure, price_ax: Axes, vol_ax: Axes, report: StructureReport, ylim: tuple[float, float]
) -> None:
    """Shrink the candle axes, leave a column for the level labels, draw the volume profile in the last strip."""
    pos, vpos = price_ax.get_position(), vol_ax.get_position()
    main_w = pos.width * MAIN_SHARE
    price_ax.set_position((pos.x0, pos.y0, main_w, pos.height))
    vol_ax.set_position((vpos.x0, vpos.y0, main_w, vpos.height))
    ax = fig.add_axes((pos.x0 + pos.width * (1 - PROFILE_SHARE), pos.y0, pos.width * PROFILE_SHARE, pos.height))
    p = report.profile
    edges = p.low + p.bin_width * np.arange(p.bins + 1)
    buy, sell = np.asarray(p.buy, dtype=float), np.asarray(p.sell, dtype=float)
    # One stepped patch per side instead of a rectangle per bin: barh's hundreds of patches cost about a second
    # of CPU per chart to create and draw; the picture is the same.
    ax.stairs(buy, edges, orientation="horizontal", fill=True, color="#66bb6a", alpha=0.8, lw=0)
    ax.stairs(buy + sell, edges, baseline=buy, orientation="horizontal", fill=True, color="#ef5350", alpha=0.8, lw=0)
    ax.set_xlim(0, max(float((buy + sell).max()), 1e-12) * 1.02)
    ax.axhspan(p.val, p.vah, color="#90caf9", alpha=0.25)
    ax.axhline(p.poc, color="#0d47a1", lw=1.5)
    ax.set_ylim(*ylim)
    marks = [
        PriceLabel(p.poc, f"POC {fmt_price(p.poc)}", "#0d47a1", priority=2),
        PriceLabel(p.vah, f"VAH {fmt_price(p.vah)}", "#1565c0", priority=1),
        PriceLabel(p.val, f"VAL {fmt_price(p.val)}", "#1565c0", priority=1),
    ]
    # Labels stay inside the panel: a value-area edge beyond the visible prices is left unlabelled.
    inner = _gap(fig, ax, ylim)
    for placed in place_labels(marks, ylim[0] + inner / 2, ylim[1] - inner / 2, inner):
        ax.text(ax.get_xlim()[1], placed.y, placed.label.text, ha="right", va="center", fontsize=6,
                color=placed.label.color, bbox=_LABEL_BOX)  # fmt: skip
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("volume profile", fontsize=7)


def render_structure_chart(
    df: pd.DataFrame,
    report: StructureReport,
    position: PositionLines | None = None,
    bars: int = 240,
    source: ChartSource | None = None,
) -> bytes:
    """PNG bytes (1280 x 720 px) of `structure_figure`."""
    fig = structure_figure(df, report, position, bars, source)
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI)
        return buf.getvalue()
    finally:
        plt.close(fig)
