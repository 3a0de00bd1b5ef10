"""Kelly fraction from win rate and payoff."""

from __future__ import annotations


def kelly_fraction(win_rate: float, payoff: float) -> float:
    """Full Kelly f* = p - (1 - p) / b for win probability p and win/loss ratio b; negative = no edge."""
    if not 0 <= win_rate <= 1:
        raise ValueError("win_rate must be in [0, 1]")
    if payoff <= 0:
        raise ValueError("payoff (average win / average loss) must be positive")
    return win_rate - (1.0 - win_rate) / payoff
