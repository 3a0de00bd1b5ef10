"""Plans a trader would take: the stop behind a holding graded level within a cap, T1 >= 1R, the live price."""

from __future__ import annotations

import numpy as np
import pytest

from tools.structure.analysis import analyze_arrays
from tools.structure.report import LevelOut
from tools.structure.targets import LevelRef, plan_from_report, plan_trade


def test_a_stop_beyond_the_cap_rejects_the_setup_with_its_reason() -> None:
    levels = [LevelRef(95.0, 3), LevelRef(110.0, 2)]
    plan = plan_trade("long", 100.0, 1.0, levels, max_stop_atr=3.0)
    # Stop under 95 (5.2 ATR): shown, but rejected.
    assert plan.stop == pytest.approx(94.8) and plan.stop_source == "structure"
    assert plan.rejected and len(plan.reasons) == 1
    assert "5.2 ATR" in plan.reasons[0] and "3 ATR cap" in plan.reasons[0] and "95.00" in plan.reasons[0]
    assert plan.reason == plan.reasons[0]
    # A wider cap (the setting) accepts the same setup: T1 110 pays 10 / 5.2 R.
    wide = plan_trade("long", 100.0, 1.0, levels, max_stop_atr=6.0)
    assert not wide.rejected and wide.reason is None and wide.rr_t1 == pytest.approx(10 / 5.2)


def test_t1_under_1r_rejects_the_setup() -> None:
    near_t1 = plan_trade("long", 100.0, 1.0, [LevelRef(98.5, 2), LevelRef(101.0, 3), LevelRef(106.0, 3)])
    assert near_t1.targets[0].price == pytest.approx(101.0) and near_t1.rr_t1 == pytest.approx(1 / 1.7)
    assert near_t1.rejected and near_t1.reasons == ["T1 101.0 (the first level in the way) pays 0.59R, under 1R"]
    # Nothing in the way: T1 at 2R, accepted.
    clear = plan_trade("long", 100.0, 1.0, [LevelRef(98.5, 2), LevelRef(106.0, 3)])
    assert not clear.rejected and clear.rr_t1 == pytest.approx(6 / 1.7)
    # The mirror short is rejected for the same reason.
    short = plan_trade("short", 100.0, 1.0, [LevelRef(101.5, 2), LevelRef(99.0, 3), LevelRef(94.0, 3)])
    assert short.rejected and "0.59R" in short.reasons[0]


def test_no_graded_level_behind_the_entry_is_rejected_and_broken_levels_never_anchor_a_stop() -> None:
    bare = plan_trade("long", 100.0, 1.0, [LevelRef(98.0, 1), LevelRef(105.0, 3)])
    assert bare.rejected and bare.stop_source == "atr" and "no holding level of grade 2+ below" in bare.reasons[0]

    def out(price: float, state: str, grade: int = 3) -> LevelOut:
        return LevelOut(
            price=price, zone_low=price - 0.2, zone_high=price + 0.2, touches=4, highs=2, lows=2, first_touch=0,
            last_touch=10, confirmed_at=10, grade=grade, role="support" if price < 100 else "resistance",
            state=state, distance_atr=price - 100.0,
        )  # fmt: skip

    plan = plan_trade("long", 100.0, 1.0, [out(99.0, "broken"), out(98.0, "holding"), out(104.0, "holding")])
    # Broken 99 is skipped; the stop goes under the zone of 98 (97.8) minus the 0.2 ATR buffer.
    assert plan.stop_level == 98.0 and plan.stop == pytest.approx(97.6) and not plan.rejected


def test_plans_start_from_the_live_price_not_the_last_close() -> None:
    t = np.arange(700)
    close = 100 + 5 * np.sin(t / 25)
    report = analyze_arrays(close + 0.3, close - 0.3, close, np.ones(len(close)), len(close) - 1, "T", "1h")
    live = report.close - 0.8 * report.atr
    plan = plan_from_report(report, "long", price=live)
    assert plan.entry == live != report.close
    assert plan.targets[0].rr == pytest.approx((plan.targets[0].price - live) / (live - plan.stop))
    at_close = plan_from_report(report, "long")
    assert at_close.entry == report.close
    # Same stop level, but the risk differs by exactly the move from the close to the live price.
    if plan.stop_level == at_close.stop_level and plan.risk_atr > 1.0 and at_close.risk_atr > 1.0:
        assert at_close.risk_per_unit - plan.risk_per_unit == pytest.approx(report.close - live)
    # A given entry still wins over the live price.
    assert plan_from_report(report, "long", entry=99.0, price=live).entry == 99.0


def test_the_analyst_answer_uses_the_same_live_plans_and_shows_why_a_setup_is_rejected() -> None:
    from agents.offline import render
    from tools.agent_tools.structure_data import structure_json

    t = np.arange(700)
    close = 100 + 5 * np.sin(t / 25)
    report = analyze_arrays(close + 0.3, close - 0.3, close, np.ones(len(close)), len(close) - 1, "T", "1h")
    live = report.close - 0.8 * report.atr
    data = structure_json(report, False, price=live)
    long = plan_from_report(report, "long", price=live)
    assert data["plans"]["long"]["entry"] == pytest.approx(live, rel=1e-5)
    assert data["plans"]["long"]["reasons"] == long.reasons and long.rejected
    text = render.analysis(data, None, None, "long")
    assert f"price {render.p(live)} (last close {render.p(report.close)})" in text
    verdict = text.split("**5. Verdict**")[1]
    assert "Setup rejected: " in verdict and all(reason in verdict for reason in long.reasons)
    assert "beyond the 3 ATR cap" in verdict


@pytest.mark.data
def test_on_real_candles_displayed_levels_hold_and_every_plan_is_taken_or_rejected_for_its_rule(candles) -> None:
    from tools.structure.analysis import frame_arrays
    from tools.structure.config import DEFAULT_CONFIG as cfg
    from tools.structure.levels import NODE_ATR, PROVEN_BOUND, QUIET_VOLUME, respect_bound

    df = candles("BTC", "4h").iloc[-2200:]
    high, low, close, volume = frame_arrays(df)
    accepted = rejected = grade3 = 0
    for t in range(1200, 2200, 20):
        r = analyze_arrays(high, low, close, volume, t, "BTC/USDT", "4h")
        assert all(lv.state == "holding" and lv.touches >= 2 for lv in r.levels)
        assert all(lv.price < r.close for lv in r.supports()) and all(lv.price >= r.close for lv in r.resistances())
        for lv in r.levels:
            if lv.grade == 3:  # at a volume node and retested quietly, or respected 6 of 6 or better
                grade3 += 1
                decided = np.array([round(lv.reactions / lv.respect) if lv.respect else 0])
                proven = respect_bound(np.array([lv.reactions]), decided)[0] >= PROVEN_BOUND
                at_node = lv.node_atr is not None and lv.node_atr <= NODE_ATR and lv.volume_ratio < QUIET_VOLUME
                assert lv.touches >= 3 and (proven or at_node)
        for side in ("long", "short"):
            p = plan_from_report(r, side)
            d = 1 if side == "long" else -1
            no_level = p.stop_source == "atr"
            too_far = p.stop_source == "structure" and p.risk_atr > cfg.max_stop_atr
            thin_t1 = p.rr_t1 < cfg.min_rr_t1
            # Each broken rule gives its reason, and only broken rules do.
            assert p.rejected == (no_level or too_far or thin_t1) and len(p.reasons) == no_level + too_far + thin_t1
            assert no_level == any("no holding level of grade 2+" in x for x in p.reasons)
            assert too_far == any("ATR cap" in x for x in p.reasons)
            assert thin_t1 == any("under 1R" in x for x in p.reasons)
            if p.rejected:
                rejected += 1
                continue
            accepted += 1
            behind = [lv for lv in r.levels if lv.grade >= 2 and d * (p.entry - lv.price) > 0]
            far_edge = {id(lv): lv.zone_low if d > 0 else lv.zone_high for lv in behind}
            anchor = min(behind, key=lambda lv: d * (p.entry - far_edge[id(lv)]))  # the nearest holding grade 2+
            assert p.stop_level == anchor.price and d * (far_edge[id(anchor)] - p.stop) > 0
            assert p.rr_t1 >= 1.0 and p.risk_atr <= cfg.max_stop_atr
    assert accepted >= 10 and rejected >= 10 and grade3 >= 5
