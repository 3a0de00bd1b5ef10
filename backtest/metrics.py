"""Scores of decision makers against the simulated outcomes: R statistics with standard errors clustered by
scenario group, CVaR, capture, regret, per-action precision/recall, calibration and per-rule attribution."""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, Field

from backtest.config import CLASSES, INVALID

CALIBRATION_BINS = 5
CVAR_Q = 0.05


def clustered_se(x: np.ndarray, cluster: np.ndarray) -> float:
    """Standard error of mean(x) with rows of one cluster correlated (CR1: G/(G-1) small-sample factor)."""
    n = len(x)
    if n < 2:
        return math.nan
    _, inv = np.unique(cluster, return_inverse=True)
    g = int(inv.max()) + 1
    if g < 2:
        return math.nan
    resid = np.bincount(inv, weights=x - x.mean(), minlength=g)
    return float(math.sqrt(g / (g - 1) * float(np.sum(resid**2))) / n)


def cvar(x: np.ndarray, q: float = CVAR_Q) -> float:
    """Expected shortfall: the mean of the worst `q` share of outcomes (at least one)."""
    if len(x) == 0:
        return math.nan
    k = max(1, math.ceil(q * len(x)))
    return float(np.sort(x)[:k].mean())


class GroupScore(BaseModel):
    """Headline figures over a subset of scenarios (one symbol, or all)."""

    n: int
    mean_r: float
    se: float = Field(description="Standard error of mean_r, clustered by scenario group")
    median_r: float
    cvar5: float = Field(description="Mean R of the worst 5% of scenarios (expected shortfall)")
    win_rate: float = Field(description="Share of scenarios with R > 0")
    regret: float = Field(description="Mean R the oracle made more")
    capture: float | None = Field(description="(R - R_hold) / (R_oracle - R_hold); None when the oracle = hold")
    accuracy: float = Field(description="Share of scenarios whose decision is within tie_r of the oracle's R")
    invalid: int = 0


class CalibrationBin(BaseModel):
    """Scenarios whose confidence fell in [low, high)."""

    low: float
    high: float
    n: int
    mean_confidence: float | None
    accuracy: float | None


class MakerScore(BaseModel):
    """Every metric of one decision maker."""

    name: str
    overall: GroupScore
    per_symbol: dict[str, GroupScore]
    chosen: dict[str, int] = Field(description="How often each class (and 'INVALID') was chosen")
    precision: dict[str, float | None] = Field(description="P(decision within tie_r of the best | chose the class)")
    recall: dict[str, float | None] = Field(description="P(chose the class | a candidate of it is in the best set)")
    calibration: list[CalibrationBin] = Field(default_factory=list)
    ece: float | None = Field(default=None, description="Expected calibration error of confidence vs accuracy")


class Difference(BaseModel):
    """Paired mean difference of two makers' R over the same scenarios, with its clustered SE."""

    mean: float
    se: float


class RuleScore(BaseModel):
    """One rule: how often it fired (acting), how often it decided, its own decision's R against HOLD and EXIT."""

    rule: str
    fired: int
    won: int
    vs_hold: Difference
    vs_exit: Difference


def correct(classes: np.ndarray, r: np.ndarray, oracle_r: np.ndarray, tie_r: float) -> np.ndarray:
    """True where the decision's R is within `tie_r` of the best candidate's (an invalid answer never is)."""
    return (classes != INVALID) & (r >= oracle_r - tie_r - 1e-12)


def difference(a: np.ndarray, b: np.ndarray, cluster: np.ndarray) -> Difference:
    """mean(a - b) and its clustered standard error."""
    x = np.asarray(a) - np.asarray(b)
    return Difference(mean=float(x.mean()) if len(x) else math.nan, se=clustered_se(x, cluster))


def group_score(
    classes: np.ndarray, r: np.ndarray, hold_r: np.ndarray, oracle_r: np.ndarray, cluster: np.ndarray, tie_r: float
) -> GroupScore:
    """Mean (with SE), median, CVaR, win rate, regret, capture and accuracy over the given rows."""
    n = len(r)
    if n == 0:
        nan = math.nan
        return GroupScore(
            n=0, mean_r=nan, se=nan, median_r=nan, cvar5=nan, win_rate=nan, regret=nan, capture=None, accuracy=nan
        )
    mean, hold, oracle = float(r.mean()), float(hold_r.mean()), float(oracle_r.mean())
    return GroupScore(
        n=n,
        mean_r=mean,
        se=clustered_se(r, cluster),
        median_r=float(np.median(r)),
        cvar5=cvar(r),
        win_rate=float((r > 0).mean()),
        regret=oracle - mean,
        capture=(mean - hold) / (oracle - hold) if oracle - hold > 1e-12 else None,
        accuracy=float(correct(classes, r, oracle_r, tie_r).mean()),
        invalid=int((classes == INVALID).sum()),
    )


def calibration(
    confidence: np.ndarray, hits: np.ndarray, bins: int = CALIBRATION_BINS
) -> tuple[list[CalibrationBin], float]:
    """Reliability bins of confidence against accuracy, and the expected calibration error."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    out, ece = [], 0.0
    for b in range(bins):
        m = which == b
        k = int(m.sum())
        conf = float(confidence[m].mean()) if k else None
        acc = float(hits[m].mean()) if k else None
        if k:
            ece += k / len(confidence) * abs(conf - acc)  # type: ignore[operator]
        out.append(
            CalibrationBin(low=float(edges[b]), high=float(edges[b + 1]), n=k, mean_confidence=conf, accuracy=acc)
        )
    return out, float(ece)


def score_maker(
    name: str,
    classes: np.ndarray,
    r: np.ndarray,
    hold_r: np.ndarray,
    oracle_r: np.ndarray,
    best: np.ndarray,
    symbols: np.ndarray,
    cluster: np.ndarray,
    tie_r: float,
    confidence: np.ndarray | None = None,
) -> MakerScore:
    """All metrics of one maker; `classes` holds a class index per scenario or INVALID (-1), `r` its R as given,
    `best` (N, 4) which classes have a candidate in the best set."""
    hits = correct(classes, r, oracle_r, tie_r)
    precision: dict[str, float | None] = {}
    recall: dict[str, float | None] = {}
    for c, label in enumerate(CLASSES):
        chose, good = classes == c, best[:, c]
        precision[label] = float(hits[chose].mean()) if chose.any() else None
        recall[label] = float(chose[good].mean()) if good.any() else None
    chosen = {label: int((classes == c).sum()) for c, label in enumerate(CLASSES)}
    chosen["INVALID"] = int((classes == INVALID).sum())
    per_symbol = {
        str(s): group_score(classes[m], r[m], hold_r[m], oracle_r[m], cluster[m], tie_r)
        for s in dict.fromkeys(symbols.tolist())
        if (m := symbols == s).any()
    }
    bins: list[CalibrationBin] = []
    ece = None
    if confidence is not None:
        valid = (classes != INVALID) & np.isfinite(confidence)
        if valid.any():
            bins, ece = calibration(confidence[valid], hits[valid])
    return MakerScore(
        name=name,
        overall=group_score(classes, r, hold_r, oracle_r, cluster, tie_r),
        per_symbol=per_symbol,
        chosen=chosen,
        precision=precision,
        recall=recall,
        calibration=bins,
        ece=ece,
    )


def rule_attribution(
    fired_row: np.ndarray,
    fired_rule: list[str],
    fired_r: np.ndarray,
    winner_rule: list[str],
    hold_r: np.ndarray,
    exit_r: np.ndarray,
    cluster: np.ndarray,
) -> list[RuleScore]:
    """Per rule, over the scenarios where it fired: its own decision's R minus HOLD's and minus EXIT's."""
    names = np.array(fired_rule, dtype=object)
    winners = np.array(winner_rule, dtype=object)
    out = []
    for rule in dict.fromkeys(fired_rule):
        m = names == rule
        rows = fired_row[m]
        out.append(
            RuleScore(
                rule=rule,
                fired=int(m.sum()),
                won=int((winners == rule).sum()),
                vs_hold=difference(fired_r[m], hold_r[rows], cluster[rows]),
                vs_exit=difference(fired_r[m], exit_r[rows], cluster[rows]),
            )
        )
    return sorted(out, key=lambda s: -s.fired)
