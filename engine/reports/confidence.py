"""Confidence of a directional view: timeframe agreement times the quality of the MCF factors that have data."""

from __future__ import annotations

from collections.abc import Mapping

from tools.structure.score import McfScore
from tools.structure.targets import Side


def alignment_share(alignment: Mapping[str, int], side: Side) -> float:
    """Share of the analysed timeframes whose bias points the trade's way."""
    if not alignment:
        return 0.0
    d = 1 if side == "long" else -1
    return sum(v == d for v in alignment.values()) / len(alignment)


def factor_quality(score: McfScore) -> float:
    """Mean score (1-3 mapped onto 1/3..1) of the MCF factors that had any input.

    A factor without data says nothing either way; the MCF total already scores it 1 and the report lists it
    as not available, so it is left out here instead of dragging every view without a premium feed to "low".
    """
    present = [f for f in score.factors if f.votes or f.name == "structure"]
    return sum(f.score for f in present) / (3 * len(present))


def view_confidence(alignment: Mapping[str, int], score: McfScore) -> float:
    """0-1: `alignment_share` x `factor_quality` for the score's side."""
    return round(alignment_share(alignment, score.side) * factor_quality(score), 4)
