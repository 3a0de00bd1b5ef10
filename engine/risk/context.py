"""Inputs of a risk evaluation: the position with its plan, and the market around it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from tools.structure.analysis import analyze_arrays
from tools.structure.config import DEFAULT_CONFIG, StructureConfig
from tools.structure.report import StructureReport

PositionSide = Literal["long", "short"]
# Price comparisons tolerate float noise so a long and its mirrored short always decide alike.
EPS = 1e-9
# Closed bars a risk context is built from, live and in the backtest alike: the structure window plus the ATR
# warmup before it, i.e. every bar the structure engine reads (more would change nothing, fewer would).
CONTEXT_BARS = DEFAULT_CONFIG.window + DEFAULT_CONFIG.atr_warmup
VOLUME_MEAN_BARS = 20  # MarketView.volume_ratio: last closed bar's volume / mean of the 20 closed bars before it


class RiskPosition(BaseModel):
    """An open position and its plan, in floats (analysis side; Decimals live at the order boundary)."""

    symbol: str
    side: PositionSide
    entry: float = Field(gt=0)
    size: float = Field(gt=0)
    leverage: float = Field(default=1.0, ge=1)
    stop: float | None = Field(default=None, gt=0, description="Current stop-loss, if any")
    initial_stop: float | None = Field(default=None, gt=0, description="Stop at entry; defines 1R")
    targets: list[float] = Field(default_factory=list, description="T1, T2, T3 in order")
    targets_hit: int = Field(default=0, ge=0, description="How many targets were already taken")
    opened_at: datetime | None = None
    style: Literal["scalp", "swing"] = "swing"

    @property
    def direction(self) -> int:
        """+1 for a long, -1 for a short: every rule is written once with it."""
        return 1 if self.side == "long" else -1


class MarketView(BaseModel):
    """What the market looks like now, for one position's symbol."""

    price: float = Field(gt=0, description="Mark or last price")
    close: float | None = Field(default=None, gt=0, description="Close of the last closed bar")
    atr: float = Field(gt=0, description="ATR(14) of the evaluation timeframe")
    volume_ratio: float | None = Field(
        default=None, ge=0, description="Last closed bar volume / mean of the 20 closed bars before it"
    )
    funding_rate: float | None = Field(default=None, description="Per 8h, as a fraction (0.0001 = 0.01%)")
    structure: StructureReport | None = None
    now: datetime
    timeframe: str = "1h"


class RiskParams(BaseModel):
    """Tunable constants of the rules (every one documented where it is used)."""

    hard_stop_atr: float = Field(default=2.0, description="Adverse move from entry that always exits (x ATR)")
    near_target_atr: float = Field(default=0.25, description="'Near T1' distance (x ATR)")
    near_target_min_leverage: float = Field(default=3.0, description="Leverage from which near-T1 takes profit")
    safety_net_volume_ratio: float = Field(default=1.5, description="Volume needed to confirm a break")
    guard_buffer_atr: float = Field(default=0.2, description="Stop placed this far beyond the guarding line")
    trail_atr: float = Field(default=1.5, description="Trailing distance behind price (x ATR)")
    trail_atr_hvn: float = Field(default=2.0, description="Slower trail inside a high-volume node")
    trail_atr_lvn: float = Field(default=1.0, description="Faster trail inside a low-volume node")
    trail_start_r: float = Field(default=1.0, description="Trail / breakeven only from this R multiple")
    min_stop_step_atr: float = Field(default=0.25, description="Smallest stop improvement worth an action")
    t1_share_pct: float = Field(default=40.0, description="Share taken at T1 when no level grade is known")
    t2_share_pct: float = Field(default=35.0, description="Share taken at T2 when no level grade is known")
    failed_entry_atr: float | None = Field(
        default=0.5, description="Exit a trade this far against its entry before any target (None: off)"
    )
    early_partial_r: float | None = Field(
        default=0.5, description="Bank part of a trade this far in profit before T1 (None: off)"
    )
    early_partial_pct: float = Field(default=50.0, description="Share banked by the early partial")
    calibrated_confidence: bool = Field(
        default=True, description="Report the backtest-calibrated confidence (engine/risk/calibration.py)"
    )
    max_hold_scalp: timedelta = timedelta(hours=24)
    max_hold_swing: timedelta = timedelta(days=14)


class RiskContext(BaseModel):
    """One evaluation's inputs, with the derived figures every rule uses."""

    position: RiskPosition
    market: MarketView
    params: RiskParams = Field(default_factory=RiskParams)

    @property
    def d(self) -> int:
        """Direction of the position (+1 long, -1 short)."""
        return self.position.direction

    @property
    def pnl_per_unit(self) -> float:
        """Signed profit per unit at the current price."""
        return self.d * (self.market.price - self.position.entry)

    @property
    def risk_per_unit(self) -> float | None:
        """Distance entry → initial stop (1R), when a stop was ever set."""
        stop = self.position.initial_stop or self.position.stop
        if stop is None:
            return None
        risk = self.d * (self.position.entry - stop)
        return risk if risk > 0 else None

    @property
    def r_multiple(self) -> float | None:
        """Current profit in R (None without a stop)."""
        risk = self.risk_per_unit
        # Rounded so a long and its mirrored short land on the same side of every threshold.
        return None if risk is None else round(self.pnl_per_unit / risk, 9)

    @property
    def adverse_atr(self) -> float:
        """How far price is against the entry, in ATRs (0 when in profit)."""
        return max(0.0, round(-self.pnl_per_unit / self.market.atr, 9))

    def beyond(self, price: float, level: float) -> bool:
        """True when `price` is past `level` against the position (below for a long, above for a short)."""
        return self.d * (price - level) < -EPS


def volume_ratio(volume: np.ndarray) -> float | None:
    """Last closed bar's volume over the mean of the 20 bars before it (the bar itself is not in its own mean)."""
    if len(volume) <= VOLUME_MEAN_BARS:
        return None
    mean = float(np.mean(volume[-VOLUME_MEAN_BARS - 1 : -1]))
    return float(volume[-1]) / mean if mean > 0 else None


def context_structure(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    ts_ms: np.ndarray,
    symbol: str,
    timeframe: str,
    config: StructureConfig = DEFAULT_CONFIG,
) -> StructureReport:
    """Structure report of the last of the closed bars given (the last CONTEXT_BARS of them are read)."""
    k = max(0, len(close) - CONTEXT_BARS)
    times = np.asarray(ts_ms[k:], dtype=np.int64)  # epoch ms: the report reads a few of them, no index is built
    return analyze_arrays(
        np.ascontiguousarray(high[k:], dtype=np.float64),
        np.ascontiguousarray(low[k:], dtype=np.float64),
        np.ascontiguousarray(close[k:], dtype=np.float64),
        np.ascontiguousarray(volume[k:], dtype=np.float64),
        len(close) - k - 1,
        symbol,
        timeframe,
        times,
        config,
    )


def build_market_view(
    *,
    price: float,
    close: np.ndarray,
    volume: np.ndarray,
    report: StructureReport,
    now: datetime,
    timeframe: str,
    funding_rate: float | None = None,
) -> MarketView:
    """The MarketView of closed bars (the monitor and the backtest both build it here, from CONTEXT_BARS bars)."""
    return MarketView(
        price=price,
        close=float(close[-1]),
        atr=report.atr,
        volume_ratio=volume_ratio(np.asarray(volume[-CONTEXT_BARS:], dtype=np.float64)),
        funding_rate=funding_rate,
        structure=report,
        now=now,
        timeframe=timeframe,
    )
