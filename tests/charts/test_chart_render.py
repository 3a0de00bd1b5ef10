"""Rendering charts to PNG: a reused canvas draws each chart as a fresh figure would, threads do not mix, the PNG
is a small palette image, candles and volume are drawn bar for bar, tick labels read as prices and volumes."""

from __future__ import annotations

import functools
import io
import threading

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb
from matplotlib.patches import PathPatch
from PIL import Image

from tests.charts.test_chart_layout import frame
from tools.charts import ChartSource, PositionLines, render_structure_chart, structure_figure
from tools.charts.panels import DOWN_COLOR, UP_COLOR, VOLUME_DOWN, VOLUME_UP, compact_number, price_ticks
from tools.charts.structure_chart import ChartCanvas, png_bytes
from tools.structure.analysis import analyze_frame
from tools.structure.report import StructureReport

Chart = tuple[pd.DataFrame, StructureReport, PositionLines | None, ChartSource]


@functools.cache
def two_charts() -> list[Chart]:
    """Two different charts (analysed once for the module): one with a plan and a live price, one simulated."""
    a = frame(seed=1)
    ra = analyze_frame(a, "ETH/USDT", "1h")
    b = frame(seed=7, base=350.0)
    rb = analyze_frame(b, "ADA/USDT", "1h")
    plan = PositionLines(entry=ra.close, stop=ra.close - ra.atr, targets=[ra.close + 2 * ra.atr])
    return [(a, ra, plan, ChartSource("replay", False, ra.close)), (b, rb, None, ChartSource("simulated", True, None))]


def test_the_reused_canvas_draws_each_chart_as_a_fresh_figure_would() -> None:
    (a, ra, pa, sa), (b, rb, pb, sb) = two_charts()
    fresh_a = png_bytes(structure_figure(a, ra, pa, source=sa))
    fresh_b = png_bytes(structure_figure(b, rb, pb, source=sb))
    assert fresh_a != fresh_b
    # A, B, A on one thread's canvas: nothing of one chart (its plan lines, stamp, labels) stays for the next.
    assert render_structure_chart(a, ra, pa, source=sa) == fresh_a
    assert render_structure_chart(b, rb, pb, source=sb) == fresh_b
    assert render_structure_chart(a, ra, pa, source=sa) == fresh_a


def test_a_cleared_canvas_holds_only_its_panels() -> None:
    (a, ra, pa, sa), _ = two_charts()
    canvas = ChartCanvas()
    before = [len(ax.get_children()) for ax in canvas.fig.axes], len(canvas.fig.texts)
    render = structure_figure(a, ra, pa, source=sa)
    assert sum(len(ax.get_children()) for ax in render.axes) > sum(before[0])  # a drawn chart adds artists
    from tools.charts.structure_chart import draw_structure

    draw_structure(canvas, a, ra, pa, 240, sa)
    canvas.clear()
    assert ([len(ax.get_children()) for ax in canvas.fig.axes], len(canvas.fig.texts)) == before


def test_threads_render_side_by_side_without_mixing_their_charts() -> None:
    charts = two_charts()
    expected = [render_structure_chart(df, r, p, source=s) for df, r, p, s in charts]
    got: dict[int, list[bytes]] = {}

    def work(i: int) -> None:
        df, r, p, s = charts[i]
        got[i] = [render_structure_chart(df, r, p, source=s) for _ in range(2)]  # the second on a used canvas

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {0: [expected[0]] * 2, 1: [expected[1]] * 2}


def test_the_png_is_a_1280_by_720_palette_image_of_a_few_dozen_kilobytes() -> None:
    (a, ra, pa, sa), _ = two_charts()
    png = render_structure_chart(a, ra, pa, source=sa)
    image = Image.open(io.BytesIO(png))
    assert image.size == (1280, 720) and image.mode == "P"
    assert len(png) < 150_000
    # The palette keeps the chart's own colours: a rising candle's green is in it exactly.
    colours = {c for _, c in image.convert("RGB").getcolors(maxcolors=256) or []}
    assert (0x00, 0xB0, 0x60) in colours


def test_every_candle_and_volume_bar_is_drawn_in_its_colour() -> None:
    df = frame(seed=4)
    r = analyze_frame(df, "ETH/USDT", "1h")
    fig = structure_figure(df, r, bars=120)
    data = df.iloc[r.as_of + 1 - 120 : r.as_of + 1]
    rising = int((data["close"] >= data["open"]).sum())
    closes = data["close"].to_numpy()
    volume_up = 1 + int((closes[1:] >= closes[:-1]).sum())

    def shapes(ax_index: int, colour: str) -> int:
        ax = fig.axes[ax_index]
        patches = [p for p in ax.patches if isinstance(p, PathPatch) and p.get_fill()]
        want = to_rgb(colour)
        found = [p for p in patches if np.allclose(p.get_facecolor()[:3], want)]
        return sum(len(p.get_path().vertices) // 5 for p in found)  # a closed rectangle is 5 vertices

    assert shapes(0, UP_COLOR) == rising and shapes(0, DOWN_COLOR) == 120 - rising
    assert shapes(1, VOLUME_UP) == volume_up and shapes(1, VOLUME_DOWN) == 120 - volume_up


def test_tick_labels_read_as_prices_and_volumes() -> None:
    assert price_ticks([84_000.0, 88_000.0, 92_000.0]) == ["84,000", "88,000", "92,000"]
    assert price_ticks([0.052, 0.056, 0.06]) == ["0.052", "0.056", "0.060"]
    assert price_ticks([2.1, 2.15, 2.2]) == ["2.10", "2.15", "2.20"]
    assert [compact_number(v) for v in (0, 900, 4_000, 12_500, 3_250_000, 2e9)] == ["0", "900", "4k", "12k", "3.2M",
                                                                                    "2B"]  # fmt: skip
    assert compact_number(1_500) == "1.5k"


def test_daily_bars_are_labelled_with_dates_and_intraday_bars_with_times() -> None:
    df = frame(seed=4)
    r = analyze_frame(df, "ETH/USDT", "1h")
    texts = [t.get_text() for t in structure_figure(df, r).axes[1].texts]
    assert any(len(t) == 12 and t[6] == " " and ":" in t for t in texts), texts  # "Jan 18 03:00"
    daily = df.set_axis(pd.date_range("2023-01-01", periods=len(df), freq="1D", tz="UTC", name="time"))
    rd = analyze_frame(daily, "ETH/USDT", "1d")
    texts = [t.get_text() for t in structure_figure(daily, rd).axes[1].texts]
    assert any(len(t) == 10 and t[4] == "-" for t in texts), texts  # "2023-05-14"
    assert np.all([":" not in t for t in texts])
