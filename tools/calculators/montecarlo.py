"""Monte Carlo of trade sequences (vectorised): distribution of return and maximum drawdown."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

PERCENTILES: tuple[int, ...] = (5, 25, 50, 75, 95)


class MonteCarloResult(BaseModel):
    """Percentiles (keys "p5".."p95") of total return % and maximum drawdown % over the paths."""

    paths: int
    trades: int
    win_rate: float
    payoff: float
    risk_pct: float
    return_pct: dict[str, float]
    max_drawdown_pct: dict[str, float]
    mean_return_pct: float
    prob_loss: float = Field(description="share of paths ending below the start")
    prob_drawdown_over: dict[str, float] = Field(description="share of paths whose drawdown exceeded 10/20/50%")


def monte_carlo(
    win_rate: float,
    payoff: float,
    risk_pct: float,
    trades: int = 100,
    paths: int = 50_000,
    seed: int | None = None,
    chunk: int = 10_000,
) -> MonteCarloResult:
    """Fixed-fractional sequences: each trade wins `payoff` x risk or loses the risk, compounded.

    Paths run in chunks so memory stays bounded (chunk x trades floats) for long sequences.
    """
    if not 0 <= win_rate <= 1 or payoff <= 0 or not 0 < risk_pct < 100 or trades < 1 or paths < 1:
        raise ValueError("need 0<=win_rate<=1, payoff>0, 0<risk_pct<100, trades>=1, paths>=1")
    rng = np.random.default_rng(seed)
    r = risk_pct / 100.0
    up, down = np.log1p(r * payoff), np.log1p(-r)
    finals, dds = [], []
    for start in range(0, paths, chunk):
        m = min(chunk, paths - start)
        steps = np.where(rng.random((m, trades)) < win_rate, up, down)
        log_eq = np.cumsum(steps, axis=1)
        peak = np.maximum(np.maximum.accumulate(log_eq, axis=1), 0.0)  # the start (0) is a peak too
        dds.append(1.0 - np.exp((log_eq - peak).min(axis=1)))
        finals.append(np.expm1(log_eq[:, -1]))
    ret = 100.0 * np.concatenate(finals)
    dd = 100.0 * np.maximum(np.concatenate(dds), 0.0)
    return MonteCarloResult(
        paths=paths,
        trades=trades,
        win_rate=win_rate,
        payoff=payoff,
        risk_pct=risk_pct,
        return_pct={f"p{q}": float(v) for q, v in zip(PERCENTILES, np.percentile(ret, PERCENTILES), strict=True)},
        max_drawdown_pct={f"p{q}": float(v) for q, v in zip(PERCENTILES, np.percentile(dd, PERCENTILES), strict=True)},
        mean_return_pct=float(ret.mean()),
        prob_loss=float((ret < 0).mean()),
        prob_drawdown_over={f"{x}%": float((dd > x).mean()) for x in (10, 20, 50)},
    )
