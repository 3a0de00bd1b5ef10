"""Scores of one decision maker against the simulated outcomes: mean R, capture, accuracy, classes, calibration."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from backtest.config import CLASSES, HOLD, INVALID

CALIBRATION_BINS = 5


class GroupScore(BaseModel):
    """Headline figures over a subset of scenarios (one symbol, or all)."""

    n: int
    mean_r: float
    capture: float | None = Field(description="(R - R_hold) / (R_oracle - R_hold); None when the oracle = hold")
    accuracy: float = Field(description="Share of scenarios whose chosen class is in the best set")
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
    precision: dict[str, float | None] = Field(description="P(chosen class in best set | chose it)")
    recall: dict[str, float | None] = Field(description="P(chose the class | it is in the best set)")
    confusion: list[list[int]] = Field(description="Rows: oracle class; columns: chosen class, then INVALID")
    calibration: list[CalibrationBin] = Field(default_factory=list)
    ece: float | None = Field(default=None, description="Expected calibration error of confidence vs accuracy")


def realised(classes: np.ndarray, outcomes: np.ndarray) -> np.ndarray:
    """R of each scenario under the chosen class; an invalid answer leaves the plan in place (HOLD's R)."""
    idx = np.where(classes == INVALID, HOLD, classes)
    return outcomes[np.arange(len(idx)), idx]


def correct(classes: np.ndarray, best: np.ndarray) -> np.ndarray:
    """True where the chosen class is in the best set (an invalid answer is never correct)."""
    idx = np.where(classes == INVALID, 0, classes)
    return (classes != INVALID) & best[np.arange(len(idx)), idx]


def group_score(classes: np.ndarray, outcomes: np.ndarray, best: np.ndarray) -> GroupScore:
    """Mean realised R, capture ratio and accuracy over the given rows."""
    n = len(classes)
    if n == 0:
        return GroupScore(n=0, mean_r=0.0, capture=None, accuracy=0.0)
    r = float(realised(classes, outcomes).mean())
    hold, oracle = float(outcomes[:, HOLD].mean()), float(outcomes.max(axis=1).mean())
    capture = (r - hold) / (oracle - hold) if oracle - hold > 1e-12 else None
    return GroupScore(
        n=n,
        mean_r=r,
        capture=capture,
        accuracy=float(correct(classes, best).mean()),
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
    outcomes: np.ndarray,
    best: np.ndarray,
    symbols: np.ndarray,
    confidence: np.ndarray | None = None,
) -> MakerScore:
    """All metrics of one maker; `classes` holds a class index per scenario or INVALID (-1)."""
    oracle = outcomes.argmax(axis=1)
    hits = correct(classes, best)
    k = len(CLASSES)
    confusion = np.zeros((k, k + 1), dtype=np.int64)
    np.add.at(confusion, (oracle, np.where(classes == INVALID, k, classes)), 1)
    precision: dict[str, float | None] = {}
    recall: dict[str, float | None] = {}
    for c, label in enumerate(CLASSES):
        # Best sets overlap (PARTIAL lies between HOLD and EXIT), so recall is per class membership, not argmax.
        chose, good = classes == c, best[:, c]
        precision[label] = float(hits[chose].mean()) if chose.any() else None
        recall[label] = float(chose[good].mean()) if good.any() else None
    chosen = {label: int((classes == c).sum()) for c, label in enumerate(CLASSES)}
    chosen["INVALID"] = int((classes == INVALID).sum())
    per_symbol = {
        str(s): group_score(classes[m], outcomes[m], best[m])
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
        overall=group_score(classes, outcomes, best),
        per_symbol=per_symbol,
        chosen=chosen,
        precision=precision,
        recall=recall,
        confusion=confusion.tolist(),
        calibration=bins,
        ece=ece,
    )
