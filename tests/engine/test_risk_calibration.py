"""The live risk engine reports the backtest-calibrated confidence; the shipped table was fitted on the earlier
period and is calibrated and monotone on the later one; the fit pools rules whose order does not hold."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np

from backtest.calibration import check, fit_table, pool_adjacent_violators
from backtest.metrics import calibration
from engine.risk.calibration import CALIBRATION_FILE, ConfidenceTable, calibrate, shipped_table
from engine.risk.context import MarketView, RiskContext, RiskParams, RiskPosition
from engine.risk.decision import Decision
from engine.risk.evaluate import evaluate

NOW = datetime(2026, 1, 5, tzinfo=UTC)


def _breached() -> RiskContext:
    position = RiskPosition(symbol="BTC/USDT", side="long", entry=100.0, size=1.0, stop=97.0, initial_stop=97.0)
    return RiskContext(position=position, market=MarketView(price=96.5, close=96.5, atr=2.0, now=NOW))


def test_live_evaluate_reports_the_shipped_calibrated_confidence() -> None:
    table = shipped_table()
    assert table is not None, f"{CALIBRATION_FILE} missing: run python -m backtest.fit_calibration"
    decision = evaluate(_breached())
    p = table.confidence("stop_breached")
    assert decision.rule == "stop_breached" and decision.calibrated_confidence == p != 1.0
    assert decision.confidence == 1.0  # the rule's own figure (the guards compare the calibrated one)
    assert f"among the best {100 * p:.0f}% of the time" in decision.reasoning  # what the trader reads
    # The same evaluation with calibration off reports no measured figure.
    ctx = _breached().model_copy(update={"params": RiskParams(calibrated_confidence=False)})
    raw = evaluate(ctx)
    assert raw.calibrated_confidence is None and raw.action == decision.action and "Backtest" not in raw.reasoning


def test_calibrate_uses_the_overall_accuracy_for_unseen_rules_and_leaves_model_decisions_alone() -> None:
    table = ConfidenceTable(table={"a": 0.7}, default=0.4, produced_by="test")
    rule = Decision(action="HOLD", confidence=0.6, reasoning="x", rule="never_seen")
    once = calibrate(rule, table)
    assert once.calibrated_confidence == 0.4 and once.confidence == 0.6
    assert calibrate(once, table) == once  # calibrating twice changes nothing
    assert (
        calibrate(Decision(action="HOLD", confidence=0.6, reasoning="x", rule="a"), table).calibrated_confidence == 0.7
    )
    model = Decision(action="HOLD", confidence=0.9, reasoning="x", rule="model", source="model")
    assert calibrate(model, table) == model
    assert calibrate(rule, None) == rule


def test_the_shipped_table_is_calibrated_and_monotone_on_its_later_period() -> None:
    table = shipped_table()
    assert table is not None and table.check_n > 1000 and table.fit_n > 1000
    assert table.ece is not None and table.raw_ece is not None and table.ece <= 0.05 < table.raw_ece
    judged = [b.accuracy for b in table.bins if b.n >= 30 and b.accuracy is not None]
    assert len(judged) >= 2 and all(b >= a for a, b in itertools.pairwise(judged))
    assert table.monotone
    assert 0 < table.default < 1 and all(0 <= v <= 1 for v in table.table.values())


def test_pool_adjacent_violators() -> None:
    assert pool_adjacent_violators([1.0, 3.0, 2.0, 4.0], [1.0, 1.0, 1.0, 1.0]) == [[0], [1, 2], [3]]
    assert pool_adjacent_violators([3.0, 2.0, 1.0], [1.0, 1.0, 1.0]) == [[0, 1, 2]]


def test_a_rule_whose_order_the_fit_period_does_not_confirm_is_pooled_so_the_later_period_stays_monotone() -> None:
    rng = np.random.default_rng(1)
    n = 16000
    bars = np.arange(n)
    rules = rng.choice(["a", "b"], n)
    quarter = bars // (n // 4)
    # Rule a was right 70% of the time in the first quarter only, 30% after; rule b 45% throughout.
    p = np.where(rules == "a", np.where(quarter == 0, 0.7, 0.3), 0.45)
    hits = rng.random(n) < p
    symbols = np.full(n, "X", dtype=object)
    early = bars < n // 2
    # The plain per-rule fit ranks a above b, and the later period finds a less often right: not monotone.
    plain = fit_table(rules[early], hits[early])
    assert plain["a"] > plain["b"]
    conf = np.array([plain[r] for r in rules[~early]])
    bins, _ = calibration(conf, hits[~early], bins=10)
    judged = [b.accuracy for b in bins if b.n >= 30 and b.accuracy is not None]
    assert judged != sorted(judged)
    c = check(list(rules), np.full(n, 0.9), hits, symbols, bars)
    assert c.table["a"] == c.table["b"] and c.monotone
