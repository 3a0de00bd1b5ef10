"""Vectorised forward simulation of the four action classes on the real path, in R net of fees.

Prices are handled in "signed" space (price x direction) so a long and a short run through one code path:
for both, a higher signed price is better, the stop is hit when the adverse extreme falls to it and a
target when the favourable extreme rises to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backtest.config import CLASSES, EXIT, HOLD, PARTIAL, TIGHTEN, BacktestConfig


@dataclass(frozen=True, slots=True)
class Path:
    """The bars after the decision, shape (N, H): open, high, low, close."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray

    @classmethod
    def take(cls, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, start: np.ndarray, bars: int) -> Path:
        """Bars start[i] .. start[i]+bars-1 of full-series arrays, one row per scenario (indices must exist)."""
        idx = np.asarray(start, dtype=np.int64)[:, None] + np.arange(bars, dtype=np.int64)[None, :]
        return cls(o[idx], h[idx], lo[idx], c[idx])


@dataclass(slots=True)
class WalkResult:
    """Outcome of walking a plan over a path: realised P&L per unit, the state left, and when it closed."""

    pnl: np.ndarray  # signed price units per unit of the position at the start (entry-relative, fees paid)
    remaining: np.ndarray  # fraction still open
    targets_hit: np.ndarray
    stop: np.ndarray  # in price units; NaN = no stop
    closed_at: np.ndarray  # bar offset where the position became flat, -1 if still open


def walk_plan(
    path: Path,
    d: np.ndarray,
    entry: np.ndarray,
    stop: np.ndarray,
    t1: np.ndarray,
    t2: np.ndarray,
    targets_hit: np.ndarray,
    fraction: np.ndarray | float,
    *,
    t1_take: float = 0.5,
    fee: float = 0.0,
    time_exit: bool = True,
    length: np.ndarray | None = None,
) -> WalkResult:
    """Keep the plan over `path`: stop, T1 (take `t1_take` of what is open, stop to breakeven), T2 for the rest.

    Intrabar ambiguity resolves against the trader: the stop is checked before a target in the same bar, and a
    bar that takes T1 and also trades back to entry closes the rest at breakeven. A gap through the stop fills
    at the open; a gap through a target fills at the (better) open. With `time_exit` the rest closes at the
    close of the last bar; `length` limits each row to its first `length[i]` bars.
    """
    n, bars = path.open.shape
    dd = d.astype(np.float64)[:, None]
    opens, closes = dd * path.open, dd * path.close
    fav = np.where(dd > 0, path.high, -path.low)
    adv = np.where(dd > 0, path.low, -path.high)
    e = d * entry
    s = np.where(np.isnan(stop), -np.inf, d * stop)
    g1, g2 = d * t1, d * t2
    k = np.asarray(targets_hit, dtype=np.int64).copy()
    rem = np.broadcast_to(np.asarray(fraction, dtype=np.float64), (n,)).copy()
    pnl = np.zeros(n)
    closed_at = np.full(n, -1, dtype=np.int64)
    limit = np.full(n, bars) if length is None else np.asarray(length)

    def close(mask: np.ndarray, price: np.ndarray, share: np.ndarray, j: int) -> None:
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return
        px, q = price[idx], share[idx]
        pnl[idx] += q * (px - e[idx]) - fee * q * np.abs(px)
        rem[idx] -= q
        done = idx[rem[idx] <= 1e-12]
        rem[done] = 0.0
        closed_at[done] = j

    for j in range(bars):
        alive = (rem > 0) & (j < limit)
        if not alive.any():
            break
        o, f, a = opens[:, j], fav[:, j], adv[:, j]
        close(alive & (a <= s), np.minimum(o, s), rem, j)
        alive &= rem > 0
        hit1 = alive & (k == 0) & (f >= g1)
        close(hit1, np.maximum(o, g1), rem * t1_take, j)
        k[hit1] = 1
        s[hit1] = np.maximum(s[hit1], e[hit1])
        close(hit1 & (rem > 0) & (a <= s), s, rem, j)
        alive &= rem > 0
        close(alive & (k == 1) & (f >= g2), np.maximum(o, g2), rem, j)
        k[alive & (k == 1) & (rem == 0)] = 2
        if time_exit:
            last = (rem > 0) & (limit - 1 == j)
            close(last, closes[:, j], rem, j)
    stop_out = np.where(np.isfinite(s), d * s, np.nan)
    return WalkResult(pnl=pnl, remaining=rem, targets_hit=k, stop=stop_out, closed_at=closed_at)


@dataclass(frozen=True, slots=True)
class Position:
    """What the simulation needs of each scenario at the decision bar t (arrays of shape (N,))."""

    d: np.ndarray
    entry: np.ndarray
    stop: np.ndarray  # current stop, NaN = none
    t1: np.ndarray
    t2: np.ndarray
    targets_hit: np.ndarray
    price: np.ndarray  # close of bar t: every action at t fills here
    atr: np.ndarray  # ATR at t
    risk: np.ndarray  # 1R per unit (initial risk, or no_stop_risk_atr x ATR at entry)


def simulate_actions(pos: Position, path: Path, cfg: BacktestConfig) -> np.ndarray:
    """R of each action class for each scenario, shape (N, 4) in CLASSES order, net of entry and exit fees."""
    fee, take = cfg.fee, cfg.t1_take_pct / 100.0
    d = pos.d.astype(np.float64)

    def hold(stop: np.ndarray, fraction: float) -> np.ndarray:
        res = walk_plan(path, pos.d, pos.entry, stop, pos.t1, pos.t2, pos.targets_hit, fraction, t1_take=take, fee=fee)
        return res.pnl

    now_pnl = d * (pos.price - pos.entry) - fee * pos.price  # closing one unit at t
    out = np.empty((len(d), len(CLASSES)))
    out[:, HOLD] = hold(pos.stop, 1.0)
    p = cfg.partial_pct / 100.0
    out[:, PARTIAL] = p * now_pnl + hold(pos.stop, 1.0 - p)
    out[:, EXIT] = now_pnl
    out[:, TIGHTEN] = hold(tightened_stop(pos, cfg.tighten_atr), 1.0)
    out -= (fee * pos.entry)[:, None]
    return out / pos.risk[:, None]


def tightened_stop(pos: Position, atr_mult: float) -> np.ndarray:
    """TIGHTEN's stop: breakeven when in profit, else `atr_mult` ATR behind price; never looser than the current."""
    d = pos.d.astype(np.float64)
    in_profit = d * (pos.price - pos.entry) > 0
    proposed = np.where(in_profit, pos.entry, pos.price - d * atr_mult * pos.atr)
    current = np.where(np.isnan(pos.stop), -np.inf, d * pos.stop)
    return d * np.maximum(current, d * proposed)


def best_sets(r: np.ndarray, tie_r: float) -> np.ndarray:
    """Boolean (N, 4): every class within `tie_r` R of the best one."""
    return r >= r.max(axis=1, keepdims=True) - tie_r - 1e-12
