"""Confidence calibration: fitted on the earlier half of the bars only, checked on the later half."""

from __future__ import annotations

import numpy as np

from backtest.calibration import check, split_by_time


def test_per_rule_calibration_fixes_a_misleading_confidence_on_the_later_period() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    rules = rng.choice(["good", "bad"], n)
    hits = np.where(rules == "good", rng.random(n) < 0.8, rng.random(n) < 0.2)
    bars = np.arange(n)
    symbols = np.full(n, "X", dtype=object)
    confidence = np.where(rules == "good", 0.5, 0.9)  # the rarely right rule claims more: higher is less right
    c = check(list(rules), confidence, hits, symbols, bars)
    assert c.fit_n == c.check_n == n // 2
    assert abs(c.table["good"] - 0.8) < 0.05 and abs(c.table["bad"] - 0.2) < 0.05
    assert c.raw_ece > 0.4 and c.ece < 0.05 and c.monotone


def test_the_fit_never_sees_the_check_period() -> None:
    # A rule that is always right early and always wrong late: the fit says ~1.0, the check finds it wrong.
    n = 200
    bars = np.arange(n)
    hits = bars < n // 2
    c = check(["r"] * n, np.full(n, 0.5), hits, np.full(n, "X", dtype=object), bars)
    assert c.table["r"] > 0.9 and c.ece > 0.9
    early = split_by_time(np.array(["A"] * 4 + ["B"] * 2, dtype=object), np.array([1, 2, 3, 4, 10, 20]))
    assert early.tolist() == [True, True, False, False, True, False]
