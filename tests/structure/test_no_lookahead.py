"""Zero lookahead on real candles: what is reported at bar t never changes when later bars arrive.

The only documented way the analysis moves forward is a new confirmation: a pivot at bar i
appears at bar i + 15 (and levels/trendlines built on it from then on).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tools.structure.analysis import analyze_arrays, analyze_frame, frame_arrays
from tools.structure.pivots import find_pivots, pivot_labels
from tools.structure.replaycheck import count_rewrites

pytestmark = pytest.mark.data


def test_replay_1000_bars_bar_by_bar(candles) -> None:
    df = candles("BTC", "1h").iloc[-2500:]
    high, low, close, volume = frame_arrays(df)
    t0 = 1500
    prev_pivots = find_pivots(high, low, as_of=t0 - 1)
    for t in range(t0, t0 + 1000):
        live = analyze_frame(df.iloc[: t + 1], "BTC/USDT", "1h")  # all a live system had at t
        later = analyze_arrays(high, low, close, volume, t, "BTC/USDT", "1h", df.index)  # future bars present
        assert live == later, f"report for bar {t} changed once later bars existed"
        assert live.as_of == t and live.as_of_time == df.index[t]
        assert all(lv.confirmed_at <= t and lv.last_touch <= t for lv in live.levels)
        assert all(ln.confirmed_at <= t for ln in live.trendlines)
        assert all(pv.confirmed_at <= t and pv.confirmed_at == pv.bar + 15 for pv in live.recent_pivots)
        assert all(z.last_touch <= t for z in live.auto_support)
        # Pivots only grow, and only by pivots confirmed exactly now.
        now = find_pivots(high, low, as_of=t)
        new = ~np.isin(now.bar * 2 + (now.kind > 0), prev_pivots.bar * 2 + (prev_pivots.kind > 0))
        assert np.all(now.confirmed[new] == t)
        assert len(now) == len(prev_pivots) + int(new.sum())
        prev_pivots = now


def test_replay_check_counts_zero_rewrites_for_ours_and_catches_a_centred_window(candles) -> None:
    df = candles("ETH", "1h").iloc[-900:]
    high, low, _, _ = frame_arrays(df)

    def ours(t: int) -> np.ndarray:
        lab, _ = pivot_labels(t + 1, find_pivots(high, low, as_of=t))
        return lab.astype(float)

    def centred(t: int) -> np.ndarray:
        # The classic mistake: a centred rolling max that "sees" whatever future the data holds.
        h = pd.Series(high[: t + 1])
        return (h == h.rolling(31, center=True, min_periods=1).max()).astype(float).to_numpy()

    mine = count_rewrites(ours, 400, 900)
    theirs = count_rewrites(centred, 400, 900)
    assert mine.rewritten == 0 and mine.added > 10
    assert theirs.rewritten > 10
