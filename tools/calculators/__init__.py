"""Pre-trade calculator: position size, Kelly fraction, Monte Carlo of trade sequences."""

from tools.calculators.kelly import kelly_fraction
from tools.calculators.montecarlo import MonteCarloResult, monte_carlo
from tools.calculators.sizing import PositionSize, position_size

__all__ = ["MonteCarloResult", "PositionSize", "kelly_fraction", "monte_carlo", "position_size"]
