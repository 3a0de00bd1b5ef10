"""Pre-trade calculator: position size, Kelly fraction, Monte Carlo of trade sequences."""

from __future__ import annotations

import numpy as np
import pytest

from tools.calculators import kelly_fraction, monte_carlo, position_size


def test_position_size_known_answer() -> None:
    s = position_size(10_000, 2, entry=100, stop=95)
    assert (s.risk_amount, s.units, s.notional) == (200.0, 40.0, 4000.0)
    assert s.stop_distance_pct == 5.0 and not s.capped
    short = position_size(10_000, 2, entry=100, stop=104)
    assert short.units == 50.0


def test_position_size_respects_max_leverage() -> None:
    s = position_size(1_000, 2, entry=100, stop=99.9, max_leverage=5)
    assert s.capped and s.notional == pytest.approx(5_000) and s.risk_amount == pytest.approx(5.0)


@pytest.mark.parametrize("args", [(0, 2, 100, 95), (1000, 0, 100, 95), (1000, 2, 100, 100), (1000, 101, 100, 95)])
def test_position_size_rejects_nonsense(args: tuple[float, float, float, float]) -> None:
    with pytest.raises(ValueError):
        position_size(*args)


def test_kelly() -> None:
    assert kelly_fraction(0.5, 2.0) == pytest.approx(0.25)
    assert kelly_fraction(0.6, 1.0) == pytest.approx(0.2)
    assert kelly_fraction(0.3, 1.0) < 0  # no edge


def test_monte_carlo_degenerate_cases_are_exact() -> None:
    win = monte_carlo(1.0, 2.0, 1.0, trades=50, paths=1000, seed=1)
    assert win.return_pct["p5"] == pytest.approx(100 * (1.02**50 - 1))
    assert win.max_drawdown_pct["p95"] == pytest.approx(0.0)
    lose = monte_carlo(0.0, 2.0, 1.0, trades=50, paths=1000, seed=1)
    assert lose.return_pct["p50"] == pytest.approx(100 * (0.99**50 - 1))
    assert lose.max_drawdown_pct["p50"] == pytest.approx(100 * (1 - 0.99**50))
    assert lose.prob_loss == 1.0


def test_monte_carlo_50k_paths_distribution() -> None:
    r = monte_carlo(0.5, 2.0, 1.0, trades=100, seed=7)
    assert r.paths == 50_000
    vals = list(r.return_pct.values())
    assert vals == sorted(vals) and list(r.max_drawdown_pct.values()) == sorted(r.max_drawdown_pct.values())
    # Expected log growth per trade: 0.5*ln(1.02) + 0.5*ln(0.99) -> median ~ exp(100 * that) - 1.
    median = 100 * (np.exp(100 * (0.5 * np.log(1.02) + 0.5 * np.log(0.99))) - 1)
    assert r.return_pct["p50"] == pytest.approx(median, abs=6)
    assert 0 < r.prob_loss < 0.05
    assert monte_carlo(0.5, 2.0, 1.0, trades=100, seed=7) == r  # seeded = reproducible
