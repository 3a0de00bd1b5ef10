"""The chart's panels drawn cheaply: candles and volume as a few collections, grid and tick labels of our own.

matplotlib's Axis makes a Tick (two tick lines, a grid line, two texts) per tick and mplfinance a rectangle per
bar; on a 1280 x 720 report chart those objects cost several times the drawing itself. Here each panel is an Axes
with its Axis hidden: candles, volume bars and grid lines are a path or collection each, tick labels plain texts.
"""

from __future__ import annotations

import itertools
import math
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.patches import PathPatch
from matplotlib.path import Path
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import blended_transform_factory

UP_COLOR, DOWN_COLOR, WICK_COLOR = "#00b060", "#fe3032", "#606060"
VOLUME_UP, VOLUME_DOWN = "#4dc790", "#fd6b6c"
GRID_COLOR, TICK_COLOR = "#d0d0d0", "#101010"
TICK_FONT = 8
BODY_WIDTH = 0.6  # of one bar's slot: a gap between neighbouring candles keeps them apart at 2-3 px a bar
TICK_PAD = 0.008  # axes fraction between a panel's edge and its tick labels


def _boxes(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, width: float) -> Path:
    """One compound path of rectangles centred on `x` from `lo` to `hi`."""
    left, right = x - width / 2, x + width / 2
    corners = np.stack([np.column_stack([left, lo]), np.column_stack([left, hi]), np.column_stack([right, hi]),
                        np.column_stack([right, lo])], axis=1)  # fmt: skip
    return Path.make_compound_path_from_polys(corners)


def _fill(ax: Axes, path: Path, color: str, **kw: Any) -> None:
    """Fill `path` (many shapes, one colour) as one patch, without the data-limits walk of `add_patch`."""
    ax.add_artist(PathPatch(path, facecolor=color, edgecolor=kw.pop("edgecolor", "none"), **kw))


def draw_candles(ax: Axes, data: pd.DataFrame) -> None:
    """Wicks as one path and rising / falling bodies as one path each, bar i at x = i.

    A rectangle per candle (mplfinance, `ax.bar`) is an artist, a transform and a limits update each; here the
    240 candles of a chart are three paths drawn in one call each.
    """
    o, h, lo, c = (data[k].to_numpy(dtype=float) for k in ("open", "high", "low", "close"))
    x = np.arange(len(data), dtype=float)
    wicks = np.stack([np.column_stack([x, lo]), np.column_stack([x, h])], axis=1).reshape(-1, 2)
    codes = np.tile(np.array([Path.MOVETO, Path.LINETO], dtype=Path.code_type), len(data))
    ax.add_artist(PathPatch(Path(wicks, codes), fill=False, edgecolor=WICK_COLOR, lw=0.6))
    up = c >= o
    for mask, color in ((up, UP_COLOR), (~up, DOWN_COLOR)):
        if mask.any():
            # The edge in the body's colour keeps a doji (open = close, zero pixels tall) visible as a hairline.
            body = _boxes(x[mask], np.minimum(o, c)[mask], np.maximum(o, c)[mask], BODY_WIDTH)
            _fill(ax, body, color, edgecolor=color, lw=0.3, zorder=2)


def draw_volume(ax: Axes, data: pd.DataFrame) -> None:
    """Volume bars, green when the close rose from the previous close, one path per colour; sets the y range."""
    v = data["volume"].to_numpy(dtype=float)
    c = data["close"].to_numpy(dtype=float)
    rose = np.r_[True, c[1:] >= c[:-1]]
    x = np.arange(len(data), dtype=float)
    for mask, color in ((rose, VOLUME_UP), (~rose, VOLUME_DOWN)):
        if mask.any():
            _fill(ax, _boxes(x[mask], np.zeros(int(mask.sum())), v[mask], BODY_WIDTH), color, lw=0, alpha=0.9)
    ax.set_ylim(0, max(float(v.max()) if len(v) else 0.0, 1e-12) * 1.05)


def compact_number(value: float) -> str:
    """9,000 / 12.5k / 3.2M: volume ticks short enough to stay inside the left margin."""
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div * 10:
            return f"{value / div:,.0f}{unit}"
        if abs(value) >= div:
            return f"{value / div:,.1f}".removesuffix(".0") + unit
    return f"{value:,.0f}" if abs(value) >= 1 or value == 0 else f"{value:.2g}"


def price_ticks(values: list[float]) -> list[str]:
    """Tick labels with as many decimals as the tick step needs: 112,000 / 2.15 / 0.0825."""
    step = min((b - a for a, b in itertools.pairwise(values)), default=0.0)
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    return [f"{v:,.{decimals}f}" for v in values]


def y_grid(ax: Axes, nbins: int, labels: str = "price", prune: str | None = None) -> None:
    """Horizontal grid lines at "nice" values of the y range, labelled left of the panel."""
    lo, hi = ax.get_ylim()
    values = [float(v) for v in MaxNLocator(nbins=nbins, prune=prune).tick_values(lo, hi) if lo <= v <= hi]
    texts = price_ticks(values) if labels == "price" else [compact_number(v) for v in values]
    where = blended_transform_factory(ax.transAxes, ax.transData)
    segments = [[(0.0, v), (1.0, v)] for v in values]
    ax.add_collection(LineCollection(segments, colors=GRID_COLOR, linewidths=0.6, linestyles=":", transform=where,
                                     zorder=0.5), autolim=False)  # fmt: skip
    for v, text in zip(values, texts, strict=True):
        ax.text(-TICK_PAD, v, text, transform=where, ha="right", va="center", fontsize=TICK_FONT, color=TICK_COLOR)


def x_grid(axes: list[Axes], index: pd.Index, label_ax: Axes, ticks: int = 6) -> None:
    """Vertical grid lines at bar indexes on every panel of `axes`; the bars' times written under `label_ax`."""
    times = pd.DatetimeIndex(index)
    n = len(times)
    if n == 0:
        return
    step = (times[-1] - times[0]) / max(n - 1, 1)
    fmt = "%Y-%m-%d" if step >= pd.Timedelta(days=1) else "%b %d %H:%M"
    at = [int(x) for x in MaxNLocator(nbins=ticks, integer=True).tick_values(0, n - 1) if 0 <= x <= n - 1]
    for ax in axes:
        where = blended_transform_factory(ax.transData, ax.transAxes)
        ax.add_collection(LineCollection([[(x, 0.0), (x, 1.0)] for x in at], colors=GRID_COLOR, linewidths=0.6,
                                         linestyles=":", transform=where, zorder=0.5), autolim=False)  # fmt: skip
    stamps: list[datetime] = [times[i].to_pydatetime() for i in at]
    where = blended_transform_factory(label_ax.transData, label_ax.transAxes)
    for x, stamp in zip(at, stamps, strict=True):
        label_ax.text(x, -0.04, stamp.strftime(fmt), transform=where, ha="center", va="top", fontsize=TICK_FONT,
                      color=TICK_COLOR)  # fmt: skip


def hide_axis(ax: Axes) -> None:
    """Hide the Axis machinery (its Tick objects are the cost); the frame and background stay."""
    ax.xaxis.set_visible(False)
    ax.yaxis.set_visible(False)
