"""Stops and targets (known answers, long/short mirror property) and the MCF score."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tools.structure.analysis import analyze_arrays
from tools.structure.score import DerivativesInputs, OnChainInputs, OrderFlowInputs, band_of, mcf_score
from tools.structure.targets import LevelRef, plan_trade

LEVELS = [LevelRef(95.0, 3), LevelRef(98.0, 1), LevelRef(104.0, 2), LevelRef(108.0, 3), LevelRef(100.2, 2)]


def test_long_plan_known_answer() -> None:
    plan = plan_trade("long", 100.0, 2.0, LEVELS, k_atr=1.5, buffer_atr=0.2, min_stop_grade=2)
    # Nearest grade>=2 support below: 95 (98 is grade 1) -> 95 - 0.4 = 94.6, beyond 1.5 ATR (97).
    assert plan.stop == pytest.approx(94.6) and plan.stop_source == "structure" and plan.stop_level == 95.0
    assert plan.risk_per_unit == pytest.approx(5.4)
    # 100.2 is closer than 0.5 ATR: not a target. T1 104 (g2), T2 108 (g3), T3 = 2R = 110.8.
    assert [t.price for t in plan.targets] == pytest.approx([104.0, 108.0, 110.8])
    assert [t.source for t in plan.targets] == ["level", "level", "r_multiple"]
    assert [t.take_pct for t in plan.targets] == [40.0, 40.0, 20.0]
    assert plan.rr_t1 == pytest.approx(4 / 5.4)
    assert plan.rr_weighted == pytest.approx(0.4 * 4 / 5.4 + 0.4 * 8 / 5.4 + 0.2 * 2)


def test_stop_is_at_least_k_atr_and_falls_back_to_atr() -> None:
    near = plan_trade("long", 100.0, 2.0, [LevelRef(99.5, 3)], k_atr=1.5)
    assert near.stop == pytest.approx(97.0) and near.stop_source == "structure"
    none = plan_trade("short", 100.0, 2.0, [LevelRef(90.0, 3)], k_atr=2.0)
    assert none.stop == pytest.approx(104.0) and none.stop_source == "atr" and none.stop_level is None
    assert [t.price for t in none.targets] == pytest.approx([90.0, 88.0, 84.0])  # level at 2.5R, then 3R, 4R


level_lists = st.lists(st.tuples(st.floats(50, 150), st.integers(1, 3)), max_size=12)


@settings(max_examples=100, deadline=None)
@given(level_lists, st.floats(80, 120), st.floats(0.1, 5), st.floats(0.5, 3))
def test_long_short_mirror_symmetry(levels: list[tuple[float, int]], entry: float, atr: float, k: float) -> None:
    c = 200.0  # reflect every price around 100: p -> 200 - p
    long = plan_trade("long", entry, atr, [LevelRef(p, g) for p, g in levels], k_atr=k)
    # Prices cannot go below zero, so the mirror holds where the long's targets reflect to positive prices.
    assume(all(c - t.price > 0 for t in long.targets))
    short = plan_trade("short", c - entry, atr, [LevelRef(c - p, g) for p, g in levels], k_atr=k)
    assert short.stop == pytest.approx(c - long.stop, abs=1e-9)
    assert short.stop_source == long.stop_source
    assert (short.rejected, len(short.reasons)) == (long.rejected, len(long.reasons))
    assert short.risk_per_unit == pytest.approx(long.risk_per_unit, abs=1e-9)
    assert [c - t.price for t in short.targets] == pytest.approx([t.price for t in long.targets], abs=1e-9)
    assert [t.take_pct for t in short.targets] == [t.take_pct for t in long.targets]
    assert [t.rr for t in short.targets] == pytest.approx([t.rr for t in long.targets], rel=1e-9)
    assert long.stop < long.entry < long.targets[0].price  # stop direction rule
    assert sum(t.take_pct for t in long.targets) == pytest.approx(100.0)
    assert long.risk_per_unit >= k * atr - 1e-9


def _report(close_path: np.ndarray):
    high, low = close_path + 0.5, close_path - 0.5
    return analyze_arrays(high, low, close_path, np.ones(len(close_path)), len(close_path) - 1, "T", "1h")


def test_bands() -> None:
    assert [band_of(t) for t in (4, 6, 7, 9, 10, 12)] == ["low", "low", "medium", "medium", "high", "high"]


def test_missing_inputs_lower_confidence_explicitly() -> None:
    t = np.arange(600)
    report = _report(100 + 5 * np.sin(t / 15))
    bare = mcf_score(report, "long")
    assert [f.name for f in bare.factors] == ["structure", "order_flow", "derivatives", "onchain"]
    assert [f.score for f in bare.factors[1:]] == [1, 1, 1]
    assert bare.coverage == pytest.approx(0.1)
    assert len(bare.missing) == 9 and "derivatives.funding_rate" in bare.missing
    assert bare.band == "low" and not bare.tradeable

    bullish = dict(
        order_flow=OrderFlowInputs(cvd_divergence=1, volume_ratio=2.0, book_imbalance=0.3),
        derivatives=DerivativesInputs(funding_rate=-0.0001, oi_change_pct=5, price_change_pct=2, long_short_ratio=0.5),
        onchain=OnChainInputs(whale_net_flow=1e7, exchange_net_flow=-1e7, stablecoin_net_mint=1e8),
    )
    full = mcf_score(report, "long", **bullish)
    assert [f.score for f in full.factors[1:]] == [3, 3, 3]
    assert full.coverage == 1.0 and full.missing == []
    assert full.total == full.factors[0].score + 9
    assert full.confidence == round(full.total / 12, 4)  # the score reports confidence to 4 decimals
    assert full.confidence > bare.confidence
    # The same readings argue against a short (volume confirms either way, so order flow is mixed).
    short = mcf_score(report, "short", **bullish)
    assert [f.score for f in short.factors[1:]] == [1, 1, 1]


def test_oi_needs_price_direction_and_is_reported_missing_without_it() -> None:
    report = _report(100 + 5 * np.sin(np.arange(600) / 15))
    s = mcf_score(report, "long", derivatives=DerivativesInputs(oi_change_pct=5.0))
    assert "derivatives.oi_direction" in s.missing
    assert s.factors[2].score == 1 and s.factors[2].votes == {}


def test_structure_factor_rewards_graded_level_with_confluence() -> None:
    t = np.arange(900)
    # Repeated bounces off 100 with a bigger range: a graded support level under the price.
    report = _report(100 + 5 * np.abs(np.sin(t / 25)) + 0.0001 * t)
    f = mcf_score(report, "long").factors[0]
    assert report.supports() and f.votes["grade"] == report.supports()[0].grade
    assert f.score >= 2
