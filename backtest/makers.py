"""Decision makers scored side by side: the baselines, the rules engine, and (see model_maker) a served model.

Every maker's decision is simulated as given (its close %, its new stop); a maker is its classes (for the
per-action tables), its R per scenario and, where it has one, its confidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from backtest.config import ACTION_CLASS, INVALID
from backtest.outcomes import CAND_EXIT, CAND_HOLD, CANDIDATE_CLASS
from engine.risk.decision import FULL_CLOSE_ACTIONS, Decision

BASELINES = ("always-HOLD", "always-EXIT", "random", "oracle")
# A closing action that names no share (never the rules; a model may) closes what the executor would close.
DEFAULT_PARTIAL_PCT = 50.0


@dataclass(slots=True)
class Choices:
    """One maker's answer per scenario: class index (INVALID = -1), realised R, confidence and the raw action."""

    name: str
    classes: np.ndarray
    r: np.ndarray
    confidence: np.ndarray | None = None  # NaN where unknown
    actions: list[str] = field(default_factory=list)


def classes_of(actions: Sequence[str | None]) -> np.ndarray:
    """Class index of each action name; INVALID for None or a name outside the vocabulary."""
    return np.array([ACTION_CLASS.get(a, INVALID) if a else INVALID for a in actions], dtype=np.int64)


def decision_terms(decisions: Sequence[Decision | None], current_stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(share closed at t, stop kept for the rest) of each decision exactly as given; None (no usable answer)
    leaves the position as it is."""
    close = np.zeros(len(decisions))
    stop = np.asarray(current_stop, dtype=np.float64).copy()
    for i, d in enumerate(decisions):
        if d is None:
            continue
        if d.action in FULL_CLOSE_ACTIONS:
            close[i] = 1.0
        elif d.closes:
            close[i] = (d.close_pct if d.close_pct is not None else DEFAULT_PARTIAL_PCT) / 100.0
        if d.new_stop is not None:
            stop[i] = d.new_stop
    return close, stop


def baselines(candidates: np.ndarray, available: np.ndarray, seed: int) -> list[Choices]:
    """always-HOLD, always-EXIT, random (uniform over the available candidates, seeded) and the oracle (the best
    candidate in hindsight)."""
    n, k = candidates.shape
    rows = np.arange(n)
    rng = np.random.default_rng([seed, 0xBA5E])
    # Uniform over the available candidates: a random score per candidate, unavailable ones never chosen.
    pick = np.where(available, rng.random((n, k)), -1.0).argmax(axis=1)
    best = np.where(available, candidates, -np.inf).argmax(axis=1)
    hold, ex = np.full(n, CAND_HOLD), np.full(n, CAND_EXIT)
    return [
        Choices("always-HOLD", CANDIDATE_CLASS[hold], candidates[rows, hold]),
        Choices("always-EXIT", CANDIDATE_CLASS[ex], candidates[rows, ex]),
        Choices("random", CANDIDATE_CLASS[pick], candidates[rows, pick]),
        Choices("oracle", CANDIDATE_CLASS[best], candidates[rows, best]),
    ]


def rules_choices(actions: list[str], confidence: np.ndarray, r: np.ndarray, name: str = "rules") -> Choices:
    """The rules engine's decisions as classes, with their R simulated as given."""
    return Choices(name, classes_of(list(actions)), np.asarray(r), np.asarray(confidence, dtype=np.float64), actions)
