"""Candlestick chart of a StructureReport: levels, trendlines, side volume profile, position lines."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.transforms import Transform, blended_transform_factory
from PIL import Image

from tools.charts.labels import Placed, PriceLabel, place_labels
from tools.charts.panels import TICK_FONT, draw_candles, draw_volume, hide_axis, x_grid, y_grid
from tools.structure.render import fmt_price
from tools.structure.report import LevelOut, StructureReport

WIDTH_PX, HEIGHT_PX, DPI = 1280, 720, 100
_GRADE_WIDTH = {1: 0.8, 2: 1.3, 3: 2.0, 4: 2.4}
LABEL_FONT = 7
LABEL_GAP_PX = 13  # one 7-point line plus a little air: labels closer than this would touch
# Shares of the candle panel's width: candles, then the label column, then the volume profile.
MAIN_SHARE, PROFILE_SHARE = 0.68, 0.13  # the label column takes what is left between them
# The panels in figure fractions: candles over volume on the left, the profile strip on the right.
PANEL_X0, PANEL_W = 0.075, 0.89
PRICE_Y0, PRICE_H, VOLUME_Y0, VOLUME_H = 0.33, 0.56, 0.075, 0.245
FACE_COLOR, SPINE_COLOR = "#fafafa", "#c8c8c8"
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
    """The label "R 2,005 · grade 3 · 4 touches" (S for support; "broken" when price closed through it)."""
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


class ChartCanvas:
    """A figure with its three panels; a chart is drawn into it and cleared off again, the panels stay.

    Creating the figure and its Axes costs about as much as drawing a chart, so `render_structure_chart` keeps
    one canvas per thread (Agg figures are not shared between threads) and reuses it.
    """

    def __init__(self) -> None:
        self.fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
        FigureCanvasAgg(self.fig)
        self.price, self.volume, self.profile = _panels(self.fig)
        self._fixed = set(self._drawn())

    def _drawn(self) -> list[Artist]:
        out: list[Artist] = list(self.fig.texts)
        for ax in self.fig.axes:
            out += [*ax.collections, *ax.lines, *ax.texts, *ax.patches, *ax.artists]
        return out

    def clear(self) -> None:
        """Remove everything the last chart drew; the panels, their frames and names stay."""
        for artist in self._drawn():
            if artist not in self._fixed:
                artist.remove()  # the title too: removing it resets the figure's suptitle


_LOCAL = threading.local()


def _panels(fig: Figure) -> tuple[Axes, Axes, Axes]:
    """Candle, volume and side-profile axes at fixed places: no layout engine runs per chart."""
    price_ax = fig.add_axes((PANEL_X0, PRICE_Y0, PANEL_W * MAIN_SHARE, PRICE_H))
    vol_ax = fig.add_axes((PANEL_X0, VOLUME_Y0, PANEL_W * MAIN_SHARE, VOLUME_H))
    profile_ax = fig.add_axes((PANEL_X0 + PANEL_W * (1 - PROFILE_SHARE), PRICE_Y0, PANEL_W * PROFILE_SHARE, PRICE_H))
    for ax in (price_ax, vol_ax, profile_ax):
        hide_axis(ax)
        ax.set_facecolor(FACE_COLOR)
        for spine in ax.spines.values():
            spine.set_color(SPINE_COLOR)
    for ax, name in ((price_ax, "Price"), (vol_ax, "Volume")):
        ax.text(-0.075, 0.5, name, transform=ax.transAxes, rotation=90, ha="center", va="center",
                fontsize=TICK_FONT + 1)  # fmt: skip
    profile_ax.text(0.5, 1.01, "volume profile", transform=profile_ax.transAxes, ha="center", va="bottom", fontsize=7)
    return price_ax, vol_ax, profile_ax


def _hlines(ax: Axes, lines: list[tuple[float, str, float, str]], **kw: object) -> None:
    """(price, colour, width, style) lines across `ax` as one collection (axhline is an artist each)."""
    if lines:
        ax.add_collection(
            LineCollection([[(0.0, y), (1.0, y)] for y, *_ in lines], colors=[c for _, c, _, _ in lines],
                           linewidths=[w for *_, w, _ in lines], linestyles=[s for *_, s in lines],
                           transform=_across(ax), **kw),  # type: ignore[arg-type]
            autolim=False,
        )  # fmt: skip


def _across(ax: Axes) -> Transform:
    """x in the axes' fraction, y in its prices."""
    return blended_transform_factory(ax.transAxes, ax.transData)


def structure_figure(
    df: pd.DataFrame,
    report: StructureReport,
    position: PositionLines | None = None,
    bars: int = 240,
    source: ChartSource | None = None,
) -> Figure:
    """Build the figure: the last `bars` candles up to the report's bar, with its structure drawn on."""
    canvas = ChartCanvas()  # a figure of its own: the caller keeps it
    draw_structure(canvas, df, report, position, bars, source or ChartSource())
    return canvas.fig


def draw_structure(
    c: ChartCanvas, df: pd.DataFrame, report: StructureReport, position: PositionLines | None, bars: int,
    source: ChartSource,
) -> None:  # fmt: skip
    """Add the chart's artists to the canvas `c` (nothing is rasterised yet)."""
    end = report.as_of + 1
    start = max(0, end - bars)
    data = df.iloc[start:end][["open", "high", "low", "close", "volume"]]
    price_ax, vol_ax = c.price, c.volume
    # A bar of room right of the last candle keeps it clear of the price marker on the panel's edge.
    for ax in (price_ax, vol_ax):
        ax.set_xlim(-1, len(data) + 1)
    draw_candles(price_ax, data)
    draw_volume(vol_ax, data)
    x_grid([price_ax, vol_ax], data.index, vol_ax)
    y_grid(vol_ax, nbins=3, labels="volume", prune="upper")
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
    # The lowest price tick would sit on the volume panel's top tick.
    y_grid(price_ax, nbins=8, prune="lower")

    c.fig.suptitle(chart_title(report, source), fontsize=10, fontweight="bold", y=0.985)
    if position is not None:
        c.fig.text(0.5, 0.945, position.summary(), ha="center", va="center", fontsize=8, color="#283593")
    if source.simulated:
        price_ax.text(
            0.5, 0.5, "SIMULATED", transform=price_ax.transAxes, ha="center", va="center", fontsize=48,
            color="#9e9e9e", alpha=0.18, rotation=20, gid=WATERMARK_GID, zorder=0,
        )  # fmt: skip

    levels = [lv for lv in report.levels if ylim[0] <= lv.price <= ylim[1]]
    _hlines(price_ax, [(lv.price, SUPPORT_COLOR if lv.role == "support" else RESISTANCE_COLOR, _GRADE_WIDTH[lv.grade],
                        "--" if lv.state == "broken" else "-") for lv in levels], alpha=0.8)  # fmt: skip
    trends = [ln for ln in report.trendlines if ylim[0] <= ln.value_now <= ylim[1]]  # far ones squash the scale
    segments = []
    for ln in trends:
        xs = np.array([max(ln.first_touch, start), report.as_of], dtype=float)
        segments.append(np.column_stack([xs - start, ln.anchor_price + ln.slope * (xs - ln.anchor_bar)]))
    if segments:
        price_ax.add_collection(LineCollection(
            segments, colors=["#1565c0" if ln.kind == "support" else "#ef6c00" for ln in trends],
            linewidths=[_GRADE_WIDTH[ln.grade] for ln in trends],
            linestyles=["-" if ln.state == "holding" else ":" for ln in trends],
        ), autolim=False)  # fmt: skip

    gap = _gap(c.fig, price_ax, ylim)
    right = [PriceLabel(lv.price, level_label(lv), SUPPORT_COLOR if lv.role == "support" else RESISTANCE_COLOR,
                        priority=lv.grade) for lv in levels]  # fmt: skip
    if source.price is not None:
        right.append(PriceLabel(source.price, f"price {fmt_price(source.price)}", PRICE_COLOR, priority=9))
        _hlines(price_ax, [(source.price, PRICE_COLOR, 0.8, ":")])
        price_ax.add_artist(Line2D([1.0], [source.price], marker="<", color=PRICE_COLOR, markersize=7, clip_on=False,
                                   transform=_across(price_ax)))  # fmt: skip
    _draw_column(price_ax, place_labels(right, ylim[0], ylim[1], gap), x=1.015, ha="left", leaders=True)

    if position is not None:
        left: list[PriceLabel] = [PriceLabel(position.entry, f"entry {fmt_price(position.entry)}", "#283593", 3)]
        if position.stop is not None:
            left.append(PriceLabel(position.stop, f"stop {fmt_price(position.stop)}", "#b71c1c", 3))
        for i, t in enumerate(position.targets):
            left.append(PriceLabel(t, f"T{i + 1} {fmt_price(t)}", "#1b5e20", 2))
        if position.liquidation is not None and ylim[0] <= position.liquidation <= ylim[1]:
            left.append(PriceLabel(position.liquidation, f"liq {fmt_price(position.liquidation)}", "#4a148c", 3))
        _hlines(price_ax, [(lb.price, lb.color, 1.2, "-.") for lb in left])
        _draw_column(price_ax, place_labels(left, ylim[0], ylim[1], gap), x=0.005, ha="left", leaders=False)
    _side_profile(c.fig, c.profile, report, ylim)


def _gap(fig: Figure, ax: Axes, ylim: tuple[float, float]) -> float:
    """LABEL_GAP_PX in price units on `ax`."""
    height_px = ax.get_position().height * fig.get_figheight() * fig.dpi
    return (ylim[1] - ylim[0]) * LABEL_GAP_PX / max(height_px, 1.0)


def _draw_column(ax: Axes, placed: list[Placed], x: float, ha: str, leaders: bool) -> None:
    """Draw placed labels at `x` (a fraction of the axes' width); a label moved off its price gets a thin leader
    from the axes' edge to the text when `leaders`."""
    where = _across(ax)
    # Inside the candle panel a label sits on lines and candles and needs its backing box; the column beside
    # the panel is empty, and a box there would only cost its drawing.
    box = _LABEL_BOX if 0.0 <= x <= 1.0 else None
    for p in placed:
        ax.text(x, p.y, p.label.text, color=p.label.color, va="center", ha=ha, fontsize=LABEL_FONT, clip_on=False,
                transform=where, bbox=box)  # fmt: skip
    moved = [p for p in placed if p.moved] if leaders else []
    if moved:
        ax.add_collection(LineCollection([[(1.0, p.label.price), (x, p.y)] for p in moved],
                                         colors=[p.label.color for p in moved], linewidths=0.5, alpha=0.7,
                                         clip_on=False, transform=where), autolim=False)  # fmt: skip


def _side_profile(fig: Figure, ax: Axes, report: StructureReport, ylim: tuple[float, float]) -> None:
    """The volume profile in the strip right of the label column: buy and sell volume per price bin, POC, VA."""
    p = report.profile
    edges = p.low + p.bin_width * np.arange(p.bins + 1)
    buy, sell = np.asarray(p.buy, dtype=float), np.asarray(p.sell, dtype=float)
    ax.set_xlim(0, max(float((buy + sell).max()), 1e-12) * 1.02)
    ax.set_ylim(*ylim)
    # One stepped polygon per side, added without a data-limits update: a rectangle per bin (barh) or a StepPatch
    # (stairs, whose limits walk every Bezier segment) cost more than the rest of the chart.
    steps = [_steps(edges, np.zeros_like(buy), buy), _steps(edges, buy, buy + sell)]
    ax.add_collection(PolyCollection(steps, facecolors=["#66bb6a", "#ef5350"], alpha=0.8, linewidths=0),
                      autolim=False)  # fmt: skip
    ax.add_artist(Rectangle((0.0, p.val), 1.0, p.vah - p.val, transform=_across(ax), color="#90caf9", alpha=0.25,
                            lw=0))  # fmt: skip
    _hlines(ax, [(p.poc, "#0d47a1", 1.5, "-")])
    marks = [
        PriceLabel(p.poc, f"POC {fmt_price(p.poc)}", "#0d47a1", priority=2),
        PriceLabel(p.vah, f"VAH {fmt_price(p.vah)}", "#1565c0", priority=1),
        PriceLabel(p.val, f"VAL {fmt_price(p.val)}", "#1565c0", priority=1),
    ]
    # Labels stay inside the panel: a value-area edge beyond the visible prices is left unlabelled.
    inner = _gap(fig, ax, ylim)
    for placed in place_labels(marks, ylim[0] + inner / 2, ylim[1] - inner / 2, inner):
        ax.text(1.0, placed.y, placed.label.text, ha="right", va="center", fontsize=6, color=placed.label.color,
                bbox=_LABEL_BOX, transform=_across(ax))  # fmt: skip


def _steps(edges: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Vertices of the horizontal step polygon between `left` and `right` over the bins `edges` bound."""
    y = np.repeat(edges, 2)[1:-1]
    return np.concatenate([np.column_stack([np.repeat(right, 2), y]), np.column_stack([np.repeat(left, 2), y])[::-1]])


def render_structure_chart(
    df: pd.DataFrame,
    report: StructureReport,
    position: PositionLines | None = None,
    bars: int = 240,
    source: ChartSource | None = None,
) -> bytes:
    """PNG bytes (1280 x 720 px, 256 colours) of the chart `structure_figure` builds, drawn on this thread's
    reused canvas."""
    canvas: ChartCanvas | None = getattr(_LOCAL, "canvas", None)
    if canvas is None:
        canvas = _LOCAL.canvas = ChartCanvas()
    try:
        draw_structure(canvas, df, report, position, bars, source or ChartSource())
        return png_bytes(canvas.fig)
    finally:
        canvas.clear()


def png_bytes(fig: Figure) -> bytes:
    """The figure drawn and encoded as a PNG."""
    return encode_png(rasterize(fig))


def rasterize(fig: Figure) -> Image.Image:
    """Draw the figure with Agg; its RGBA pixels as an image (sharing the canvas' buffer until the next draw)."""
    agg = fig.canvas
    assert isinstance(agg, FigureCanvasAgg)
    agg.draw()
    return Image.frombuffer("RGBA", agg.get_width_height(), agg.buffer_rgba(), "raw", "RGBA", 0, 1)


def encode_png(image: Image.Image) -> bytes:
    """A 256-colour PNG of `image`.

    A chart has a few dozen flat colours plus the anti-aliased edges between them; an adaptive 256-colour palette
    keeps them visibly the same, makes the file a third of the RGBA one and encodes in half the time.
    """
    buf = io.BytesIO()
    image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).save(buf, format="png")
    return buf.getvalue()
