"""Charts read at a glance: no two labels overlap, the title says what and when, the drawn plan is named."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from tools.charts import ChartSource, PositionLines, structure_figure
from tools.charts.labels import PriceLabel, place_labels
from tools.charts.structure_chart import WATERMARK_GID, level_label
from tools.structure.analysis import analyze_frame


def frame(n: int = 500, seed: int = 4, base: float = 2000.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = base + np.cumsum(rng.normal(0, base * 0.004, n))
    idx = pd.date_range("2025-01-01", periods=n, freq="1h", tz="UTC", name="time")
    return pd.DataFrame(
        {
            "open": np.r_[close[0], close[:-1]],
            "high": close + rng.uniform(0.1, base * 0.006, n),
            "low": close - rng.uniform(0.1, base * 0.006, n),
            "close": close,
            "volume": rng.uniform(10, 100, n),
        },
        index=idx,
    )


def label_boxes(fig: Figure) -> list[tuple[str, object]]:
    """Window extents of every visible, non-empty text of the figure except the SIMULATED stamp."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    out = []
    for text in fig.findobj(Text):
        if not text.get_visible() or not text.get_text().strip() or text.get_gid() == WATERMARK_GID:
            continue
        out.append((text.get_text(), text.get_window_extent(renderer)))
    return out


def overlaps(fig: Figure) -> list[tuple[str, str]]:
    boxes = label_boxes(fig)
    return [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2) if ba.overlaps(bb)]


@pytest.mark.parametrize("seed", [1, 4, 7])
def test_no_two_labels_overlap_with_a_position_crowding_the_levels(seed: int) -> None:
    df = frame(seed=seed)
    r = analyze_frame(df, "ETH/USDT", "1h")
    # Entry, stop and targets placed right on the levels: the crowding that drew "T1 2,005" over "2,005 g3 t2".
    prices = [lv.price for lv in r.levels] or [r.close]
    pos = PositionLines(entry=r.close, stop=min(prices), targets=[max(prices), r.close + 0.1], side="long",
                        size=0.5, pnl=12.3, liquidation=r.close * 0.8)  # fmt: skip
    fig = structure_figure(df, r, pos, source=ChartSource("replay", False, r.close * 1.0005))
    assert overlaps(fig) == []


def test_labels_of_many_close_levels_are_spread_or_dropped_never_stacked() -> None:
    placed = place_labels([PriceLabel(100 + i * 0.01, f"L{i}", "k", priority=i % 3) for i in range(50)], 99, 101, 0.2)
    ys = [p.y for p in placed]
    assert len(placed) == 11  # (101 - 99) / 0.2 + 1 fit; the rest (lowest priority) are left out
    assert all(b - a >= 0.2 - 1e-9 for a, b in itertools.pairwise(ys))
    assert all(99 <= y <= 101 for y in ys)
    assert [p.label.text for p in placed] == sorted((p.label.text for p in placed), key=lambda t: int(t[1:]))


def test_title_names_symbol_timeframe_source_and_time_and_simulated_is_stamped() -> None:
    df = frame()
    r = analyze_frame(df, "ETH/USDT", "1h")
    fig = structure_figure(df, r, None, source=ChartSource("simulated", True, r.close))
    title = fig._suptitle.get_text()  # type: ignore[union-attr]
    assert "ETH/USDT 1h" in title and "simulated" in title
    assert r.as_of_time is not None and f"as of {r.as_of_time:%Y-%m-%d %H:%M} UTC" in title
    texts = [t.get_text() for t in fig.findobj(Text)]
    assert "SIMULATED" in texts
    assert any(t.startswith("price ") for t in texts)  # the current-price marker
    assert "SIMULATED" not in [t.get_text() for t in structure_figure(df, r, None).findobj(Text)]


def test_plan_and_position_are_named_in_words() -> None:
    df = frame()
    r = analyze_frame(df, "ETH/USDT", "1h")
    plan = PositionLines(entry=2000, stop=1950, targets=[2100], side="short")
    assert plan.summary() == "Short plan: entry 2,000, stop 1,950, T1 2,100, R:R 2.0"
    held = PositionLines(entry=2000, stop=1950, targets=[2100], side="long", size=0.5, pnl=-3.2, liquidation=1700)
    assert held.summary() == ("Long position 0.5: entry 2,000, stop 1,950, T1 2,100, R:R 2.0, PnL -3.20 USDT, "
                              "liquidation 1,700")  # fmt: skip
    near = PositionLines(entry=r.close, stop=r.close - r.atr, targets=[r.close + 2 * r.atr], side="long", size=0.5,
                         pnl=1.0, liquidation=r.close - 1.5 * r.atr)  # fmt: skip
    texts = [t.get_text() for t in structure_figure(df, r, near).findobj(Text)]
    assert near.summary() in texts
    assert any(t.startswith("liq ") for t in texts) and any(t.startswith("stop ") for t in texts)


def test_level_labels_are_words() -> None:
    df = frame()
    r = analyze_frame(df, "ETH/USDT", "1h")
    lv = r.levels[0]
    text = level_label(lv)
    kind = "S" if lv.role == "support" else "R"
    assert text.startswith(f"{kind} ") and f"grade {lv.grade}" in text
    one = lv.model_copy(update={"touches": 1})
    assert level_label(one).endswith("1 touch") or "1 touch ·" in level_label(one)
    assert "1 touches" not in level_label(one)
