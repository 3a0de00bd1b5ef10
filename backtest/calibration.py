"""Confidence calibration of the rules engine, fitted on an earlier period and checked on a later one.

The calibrated confidence of a decision is the fit period's accuracy of the rule that made it (shrunk towards
the overall accuracy by PRIOR pseudo-scenarios, so a rare rule is not trusted on a handful of cases), made
monotone in a way that holds out of sample: the rules are ordered by their accuracy in the first half of the fit
period, rules whose order the second half does not confirm are pooled (pool-adjacent-violators on the second
half's accuracies), and each pool gets its accuracy over the whole fit period. The check period never informs the
fit: the split is by evaluation bar, per symbol, at the median bar.
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
    default: float = Field(default=0.5, description="Overall fit-period accuracy: the confidence of unseen rules")
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


def pool_adjacent_violators(values: list[float], weights: list[float]) -> list[list[int]]:
    """Blocks of consecutive indices whose weighted means never decrease (isotonic regression's pools)."""
    blocks: list[tuple[list[int], float, float]] = []  # (indices, weighted sum, weight)
    for i, (v, w) in enumerate(zip(values, weights, strict=True)):
        blocks.append(([i], v * w, w))
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] > blocks[-1][1] / blocks[-1][2] + 1e-12:
            (ia, sa, wa), (ib, sb, wb) = blocks[-2], blocks[-1]
            blocks[-2:] = [(ia + ib, sa + sb, wa + wb)]
    return [b[0] for b in blocks]


def fit_monotone(
    rules: np.ndarray, hits: np.ndarray, symbols: np.ndarray, bars: np.ndarray, prior: float = PRIOR
) -> dict[str, float]:
    """Rule -> calibrated confidence from the fit rows only: ordered on their first half, pooled where the second
    half disagrees, each pool's shrunk accuracy over all the rows, then made non-decreasing along that order."""
    first = split_by_time(symbols, bars)
    t1, t2 = fit_table(rules[first], hits[first], prior), fit_table(rules[~first], hits[~first], prior)
    names = sorted((str(r) for r in dict.fromkeys(rules.tolist())), key=lambda r: (t1.get(r, t1[""]), r))
    second = [t2.get(r, t2[""]) for r in names]
    counts = [float((rules[~first] == r).sum()) + prior for r in names]
    overall = float(hits.mean()) if len(hits) else 0.5
    values, weights, pools = [], [], pool_adjacent_violators(second, counts)
    for pool in pools:
        m = np.isin(rules, [names[i] for i in pool])
        values.append(float((hits[m].sum() + prior * overall) / (m.sum() + prior)))
        weights.append(float(m.sum()) + prior)
    table: dict[str, float] = {}
    for block in pool_adjacent_violators(values, weights):
        mean = sum(values[b] * weights[b] for b in block) / sum(weights[b] for b in block)
        table |= {names[i]: mean for b in block for i in pools[b]}
    return table | {"": overall}


def check(
    rules: list[str], confidence: np.ndarray, hits: np.ndarray, symbols: np.ndarray, bars: np.ndarray
) -> CalibrationCheck:
    """Fit on the earlier half, report ECE (raw and calibrated) and monotonicity on the later half."""
    names = np.array(rules, dtype=object)
    early = split_by_time(symbols, bars)
    late = ~early
    table = fit_monotone(names[early], hits[early], symbols[early], bars[early])
    calibrated = np.array([table.get(r, table[""]) for r in names[late]], dtype=np.float64)
    _, raw_ece = calibration(confidence[late], hits[late], bins=BINS)
    bins, ece = calibration(calibrated, hits[late], bins=BINS)
    judged = [b.accuracy for b in bins if b.n >= MIN_BIN and b.accuracy is not None]
    monotone = all(b >= a - 1e-12 for a, b in pairwise(judged))
    return CalibrationCheck(
        fit_n=int(early.sum()),
        check_n=int(late.sum()),
        table={k: v for k, v in table.items() if k},
        default=table[""],
        raw_ece=raw_ece,
        ece=ece,
        bins=bins,
        monotone=monotone,
    )
