"""Confidence calibration of the rules engine, fitted on an earlier period and checked on a later one.

The calibrated confidence of a decision is the fit period's accuracy of the rule that made it (shrunk towards
the overall accuracy by PRIOR pseudo-scenarios, so a rare rule is not trusted on a handful of cases). The check
period never informs the fit: the split is by evaluation bar, per symbol, at the median bar.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from pydantic import BaseModel, Field

from backtest.metrics import CalibrationBin, calibration

PRIOR = 20.0
BINS = 10
MIN_BIN = 30  # bins with fewer check scenarios are too noisy to judge monotonicity on


class CalibrationCheck(BaseModel):
    """Calibration of the raw and the fitted confidence on the later (check) period."""

    fit_n: int
    check_n: int
    table: dict[str, float] = Field(description="Rule -> calibrated confidence (fit-period accuracy, shrunk)")
    raw_ece: float
    ece: float
    bins: list[CalibrationBin]
    monotone: bool = Field(description="Accuracy never falls as calibrated confidence rises (bins with >= 30)")


def split_by_time(symbols: np.ndarray, bars: np.ndarray) -> np.ndarray:
    """True for the earlier half of each symbol's scenarios (evaluation bar below the symbol's median)."""
    early = np.zeros(len(bars), dtype=bool)
    for s in dict.fromkeys(symbols.tolist()):
        m = symbols == s
        early[m] = bars[m] < np.median(bars[m])
    return early


def fit_table(rules: np.ndarray, hits: np.ndarray, prior: float = PRIOR) -> dict[str, float]:
    """Per-rule accuracy on the given rows, shrunk towards the overall accuracy."""
    overall = float(hits.mean()) if len(hits) else 0.5
    return {
        str(r): float((hits[m].sum() + prior * overall) / (m.sum() + prior))
        for r in dict.fromkeys(rules.tolist())
        if (m := rules == r).any()
    } | {"": overall}


def check(
    rules: list[str], confidence: np.ndarray, hits: np.ndarray, symbols: np.ndarray, bars: np.ndarray
) -> CalibrationCheck:
    """Fit on the earlier half, report ECE (raw and calibrated) and monotonicity on the later half."""
    names = np.array(rules, dtype=object)
    early = split_by_time(symbols, bars)
    late = ~early
    table = fit_table(names[early], hits[early])
    calibrated = np.array([table.get(r, table[""]) for r in names[late]], dtype=np.float64)
    _, raw_ece = calibration(confidence[late], hits[late], bins=BINS)
    bins, ece = calibration(calibrated, hits[late], bins=BINS)
    judged = [b.accuracy for b in bins if b.n >= MIN_BIN and b.accuracy is not None]
    monotone = all(b >= a - 1e-12 for a, b in pairwise(judged))
    return CalibrationCheck(
        fit_n=int(early.sum()),
        check_n=int(late.sum()),
        table={k: v for k, v in table.items() if k},
        raw_ece=raw_ece,
        ece=ece,
        bins=bins,
        monotone=monotone,
    )
