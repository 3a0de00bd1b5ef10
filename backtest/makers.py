"""Decision makers scored side by side: the baselines, the rules engine, and (see model_maker) a served model."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backtest.config import ACTION_CLASS, CLASSES, EXIT, HOLD, INVALID

BASELINES = ("always-HOLD", "always-EXIT", "random", "oracle")


@dataclass(slots=True)
class Choices:
    """One maker's answer per scenario: a class index (INVALID = -1), its confidence, and the raw action."""

    name: str
    classes: np.ndarray
    confidence: np.ndarray | None = None  # NaN where unknown
    actions: list[str] = field(default_factory=list)


def classes_of(actions: list[str | None]) -> np.ndarray:
    """Class index of each action name; INVALID for None or a name outside the vocabulary."""
    return np.array([ACTION_CLASS.get(a, INVALID) if a else INVALID for a in actions], dtype=np.int64)


def baselines(outcomes: np.ndarray, seed: int) -> list[Choices]:
    """always-HOLD, always-EXIT, uniform random (seeded) and the oracle (the best class in hindsight)."""
    n = len(outcomes)
    rng = np.random.default_rng([seed, 0xBA5E])
    return [
        Choices("always-HOLD", np.full(n, HOLD, dtype=np.int64)),
        Choices("always-EXIT", np.full(n, EXIT, dtype=np.int64)),
        Choices("random", rng.integers(0, len(CLASSES), n).astype(np.int64)),
        Choices("oracle", outcomes.argmax(axis=1).astype(np.int64)),
    ]


def rules_choices(actions: list[str], confidence: np.ndarray, name: str = "rules") -> Choices:
    """The rules engine's decisions as classes."""
    return Choices(name, classes_of(list(actions)), np.asarray(confidence, dtype=np.float64), list(actions))
