"""Vectorised forward simulation of decisions on the real path from bar t+1, in R net of fees and slippage.

Prices are handled in "signed" space (price x direction) so a long and a short run through one code path:
for both, a higher signed price is better, the stop is hit when the adverse extreme falls to it and a
target when the favourable extreme rises to it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from backtest.config import CLASSES, EXIT, HOLD, PARTIAL, TIGHTEN, BacktestConfig


@dataclass(frozen=True, slots=True)
class Path:
    """The bars after the decision, shape (N, H): open, high, low, close, and the funding rate a position still
    open at each bar's close pays (longs pay a positive rate, shorts receive it; None: no funding data)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    funding: np.ndarray | None = None

    @classmethod
    def take(
        cls,
        o: np.ndarray,
        h: np.ndarray,
        lo: np.ndarray,
        c: np.ndarray,
        start: np.ndarray,
        bars: int,
        funding: np.ndarray | None = None,
    ) -> Path:
        """Bars start[i] .. start[i]+bars-1 of full-series arrays, one row per scenario (indices must exist);
        `funding` is the full series' per-bar funding rate (FundingRates.per_bar), or None."""
        idx = np.asarray(start, dtype=np.int64)[:, None] + np.arange(bars, dtype=np.int64)[None, :]
        return cls(o[idx], h[idx], lo[idx], c[idx], None if funding is None else funding[idx])

    def rows(self, idx: np.ndarray) -> Path:
        """The paths of rows `idx`."""
        return Path(
            self.open[idx], self.high[idx], self.low[idx], self.close[idx],
            None if self.funding is None else self.funding[idx],
        )  # fmt: skip

    @classmethod
    def concat(cls, parts: list[Path]) -> Path:
        """Paths of several runs one after the other (funding 0 in the rows of a part without funding data)."""
        funded = any(p.funding is not None for p in parts)
        return cls(
            np.concatenate([p.open for p in parts]),
            np.concatenate([p.high for p in parts]),
            np.concatenate([p.low for p in parts]),
            np.concatenate([p.close for p in parts]),
            np.concatenate([np.zeros_like(p.close) if p.funding is None else p.funding for p in parts])
            if funded
            else None,
        )


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
    slippage: float = 0.0,
    time_exit: bool = True,
    length: np.ndarray | None = None,
) -> WalkResult:
    """Keep the plan over `path`: stop, T1 (take `t1_take` of what is open, stop to breakeven), T2 for the rest.

    Intrabar ambiguity resolves against the trader: the stop is checked before a target in the same bar, and a
    bar that takes T1 and also trades back to entry closes the rest at breakeven. A gap through the stop fills
    at the open; a gap through a target fills at the (better) open. With `time_exit` the rest closes at the
    close of the last bar; `length` limits each row to its first `length[i]` bars. Market fills (stops, the time
    exit) lose `slippage` (a fraction of price); targets are resting limit orders and fill at their price.
    With `path.funding`, what is still open at a bar's close after its fills (the time exit's share included:
    the close is the funding instant) pays that bar's rate on its value at the close (receives it when short).
    """
    n, bars = path.open.shape
    dd = d.astype(np.float64)[:, None]
    opens, closes = dd * path.open, dd * path.close
    # Funding in signed space: a long (d=+1) pays rate x close, a short (d=-1) receives it.
    paid = None if path.funding is None or not path.funding.any() else path.funding * path.close
    sign = dd[:, 0]
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
    out = (pnl, rem, k, s, closed_at)  # the full-length state; the loop works on the rows still open
    rows: np.ndarray | None = None  # original row of each working row (None: the working arrays are `out`)

    def close(mask: np.ndarray, price: np.ndarray, share: np.ndarray, j: int, market: bool = True) -> None:
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return
        px, q = price[idx], share[idx]
        if market and slippage:
            px = px - slippage * np.abs(px)  # signed space: slippage always lowers what the fill is worth
        pnl[idx] += q * (px - e[idx]) - fee * q * np.abs(px)
        rem[idx] -= q
        done = idx[rem[idx] <= 1e-12]
        rem[done] = 0.0
        closed_at[done] = j

    alive = (rem > 0) & (limit > 0)
    for j in range(bars):
        live = np.count_nonzero(alive)
        if not live:
            break
        if live < len(alive) // 2:
            # Rows flat or past their length never change again: write them back, keep walking the others only
            # (per row the same operations in the same order, so the results are the same to the bit).
            keep = np.flatnonzero(alive)
            if rows is not None:
                for full, cur in zip(out, (pnl, rem, k, s, closed_at), strict=True):
                    full[rows] = cur
            rows = keep if rows is None else rows[keep]
            pnl, rem, k, s, closed_at = pnl[keep], rem[keep], k[keep], s[keep], closed_at[keep]
            e, g1, g2, limit, alive = e[keep], g1[keep], g2[keep], limit[keep], alive[keep]
            opens, closes, fav, adv = opens[keep], closes[keep], fav[keep], adv[keep]
            if paid is not None:
                paid, sign = paid[keep], sign[keep]
        o, f, a = opens[:, j], fav[:, j], adv[:, j]
        close(alive & (a <= s), np.minimum(o, s), rem, j)
        alive &= rem > 0
        hit1 = alive & (k == 0) & (f >= g1)
        close(hit1, np.maximum(o, g1), rem * t1_take, j, market=False)
        k[hit1] = 1
        s[hit1] = np.maximum(s[hit1], e[hit1])
        close(hit1 & (rem > 0) & (a <= s), s, rem, j)
        alive &= rem > 0
        close(alive & (k == 1) & (f >= g2), np.maximum(o, g2), rem, j, market=False)
        k[alive & (k == 1) & (rem == 0)] = 2
        if paid is not None:
            held = np.flatnonzero(alive & (rem > 0))
            pnl[held] -= sign[held] * paid[held, j] * rem[held]
        if time_exit:
            last = (rem > 0) & (limit - 1 == j)
            close(last, closes[:, j], rem, j)
        alive = (rem > 0) & (j + 1 < limit)
    if rows is not None:
        for full, cur in zip(out, (pnl, rem, k, s, closed_at), strict=True):
            full[rows] = cur
    pnl, rem, k, s, closed_at = out
    stop_out = np.where(np.isfinite(s), d * s, np.nan)
    return WalkResult(pnl=pnl, remaining=rem, targets_hit=k, stop=stop_out, closed_at=closed_at)


@dataclass(frozen=True, slots=True)
class Position:
    """What the simulation needs of each scenario at the decision bar t (arrays of shape (N,))."""

    d: np.ndarray
    entry: np.ndarray
    stop: np.ndarray  # current stop (after every bar up to and including t), NaN = none
    t1: np.ndarray
    t2: np.ndarray
    targets_hit: np.ndarray
    price: np.ndarray  # close of bar t: every action decided at t fills here
    atr: np.ndarray  # ATR at t
    risk: np.ndarray  # 1R per unit (initial risk, or no_stop_risk_atr x ATR at entry)


def simulate(
    pos: Position, path: Path, cfg: BacktestConfig, close_frac: np.ndarray, new_stop: np.ndarray
) -> np.ndarray:
    """R per unit still open at t of closing `close_frac` at t's close and keeping the plan with `new_stop` (NaN =
    no stop) for the rest from t+1: entry fee, the fee and slippage of every market fill, targets at their price.

    Linear in the fraction: closing 30% scores 0.3 x EXIT + 0.7 x (the rest held with the same stop).
    """
    fee, take, slip = cfg.fee, cfg.t1_take_pct / 100.0, cfg.slippage
    d = pos.d.astype(np.float64)
    c = np.clip(np.asarray(close_frac, dtype=np.float64), 0.0, 1.0)
    signed_now = d * pos.price - slip * pos.price  # a market close at t pays the slippage
    now_pnl = signed_now - d * pos.entry - fee * pos.price
    rest = walk_plan(
        path, pos.d, pos.entry, new_stop, pos.t1, pos.t2, pos.targets_hit, 1.0 - c, t1_take=take, fee=fee,
        slippage=slip,
    ).pnl  # fmt: skip
    return (c * now_pnl + rest - fee * pos.entry) / pos.risk


# The oracle's menu at t (label, class, share closed, stop): what a trader could do with one decision. The best-action
# set is every available candidate within tie_r of the best, so partial closes and stop changes can be best.
CANDIDATES: tuple[tuple[str, int, float, str], ...] = (
    ("HOLD", HOLD, 0.0, "keep"),
    ("PARTIAL 30%", PARTIAL, 0.3, "keep"),
    ("PARTIAL 50%", PARTIAL, 0.5, "keep"),
    ("EXIT", EXIT, 1.0, "keep"),
    ("STOP to breakeven", TIGHTEN, 0.0, "breakeven"),
    ("TRAIL 1.5 ATR", TIGHTEN, 0.0, "trail"),
)
CANDIDATE_CLASS = np.array([c[1] for c in CANDIDATES], dtype=np.int64)
CAND_HOLD, CAND_EXIT = 0, 3


def tighter(pos: Position, proposed: np.ndarray) -> np.ndarray:
    """True where `proposed` is on the protective side of price and tighter than the current stop (or none)."""
    d = pos.d.astype(np.float64)
    below_price = d * (pos.price - proposed) > 0
    current = np.where(np.isnan(pos.stop), -np.inf, d * pos.stop)
    return below_price & (d * proposed > current)


def candidate_terms(pos: Position, cfg: BacktestConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(share closed, stop kept) of every candidate for every row, candidate-major (shape K*N: candidate j of row i
    at j*N + i), and available (N, K); an unavailable stop move (not tighter, or on the wrong side of price)
    keeps the current stop."""
    n = len(pos.d)
    d = pos.d.astype(np.float64)
    stops = {
        "keep": pos.stop,
        "breakeven": pos.entry.astype(np.float64),
        "trail": pos.price - d * cfg.trail_atr * pos.atr,
    }
    k = len(CANDIDATES)
    close = np.repeat(np.array([c[2] for c in CANDIDATES]), n)
    stop = np.empty(k * n)
    avail = np.ones((n, k), dtype=bool)
    for j, (_, _, _, kind) in enumerate(CANDIDATES):
        proposed = stops[kind]
        if kind != "keep":
            ok = tighter(pos, proposed)
            avail[:, j] = ok
            proposed = np.where(ok, proposed, pos.stop)
        stop[j * n : (j + 1) * n] = proposed
    return close, stop, avail


def simulate_rows(
    pos: Position,
    path: Path,
    cfg: BacktestConfig,
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> list[np.ndarray]:
    """simulate() of several decision sets in one walk: each part is (rows of pos/path, share closed, new stop)
    and gets its R per row back. A row's outcome depends on its own terms only, so one walk over every part
    gives each the R of its own simulate() (bit for bit) at a fraction of the per-bar cost."""
    idx = np.concatenate([p[0] for p in parts]).astype(np.int64)
    sub = Position(*(getattr(pos, f.name)[idx] for f in fields(Position)))
    bars = path.rows(idx)
    r = simulate(sub, bars, cfg, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]))
    return np.split(r, np.cumsum([len(p[0]) for p in parts])[:-1].tolist())


def candidate_outcomes(pos: Position, path: Path, cfg: BacktestConfig) -> tuple[np.ndarray, np.ndarray]:
    """(R, available) of every candidate, shape (N, len(CANDIDATES)); an unavailable stop move changes nothing,
    so its R is HOLD's and it is not in the best set."""
    n, k = len(pos.d), len(CANDIDATES)
    close, stop, avail = candidate_terms(pos, cfg)
    (r,) = simulate_rows(pos, path, cfg, [(np.tile(np.arange(n), k), close, stop)])
    return r.reshape(k, n).T, avail


def best_of(r: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """Best R over the available candidates (HOLD and EXIT are always available)."""
    return np.where(avail, r, -np.inf).max(axis=1)


def best_sets(r: np.ndarray, avail: np.ndarray, tie_r: float) -> np.ndarray:
    """Boolean (N, 4) per class: some available candidate of the class is within `tie_r` R of the best."""
    good = avail & (r >= best_of(r, avail)[:, None] - tie_r - 1e-12)
    out = np.zeros((len(r), len(CLASSES)), dtype=bool)
    for j, c in enumerate(CANDIDATE_CLASS):
        out[:, c] |= good[:, j]
    return out
