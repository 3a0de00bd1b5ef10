"""Typed arguments of the agent tools (what the model sees as each tool's JSON schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Timeframe = Literal["15m", "1h", "4h", "1d"]
OrderAction = Literal[
    "open",
    "close",
    "set_stop",
    "set_take_profit",
    "move_stop_breakeven",
    "cancel",
    "flatten_winners",
    "close_all",
    "cancel_all",
]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SymbolArgs(_Args):
    """A market symbol in any common spelling."""

    symbol: str = Field(min_length=1, max_length=40, description="e.g. BTC, ETH, SOLUSDT, BTC/USDT:USDT")


class StructureArgs(SymbolArgs):
    """Structure of one symbol on one timeframe."""

    timeframe: Timeframe = Field(default="1h", description="15m, 1h, 4h or 1d")


class ChartArgs(StructureArgs):
    """A candlestick chart with the structure drawn on it."""

    with_position: bool = Field(default=True, description="Draw the user's open position (entry/stop/targets)")


class AccountArgs(_Args):
    """Which of the user's exchange accounts (the first one when omitted)."""

    account: str | None = Field(default=None, max_length=64, description="Account label, e.g. 'paper'")


class EvaluateArgs(AccountArgs):
    """Risk evaluation of one open position."""

    symbol: str = Field(min_length=1, max_length=40)
    timeframe: Timeframe = "1h"


class SizeArgs(_Args):
    """Pre-trade calculator inputs: the typed values are checked by the calculator (refused with the reason)."""

    entry: float = Field(allow_inf_nan=False, description="Entry price (above 0)")
    stop: float = Field(allow_inf_nan=False, description="Stop-loss price (above 0, not the entry)")
    symbol: str | None = Field(default=None, max_length=40)
    risk_pct: float | None = Field(
        default=None, allow_inf_nan=False, description="Risk per trade in % of capital, above 0 and at most 10 "
        "(default: saved preference, else the deployment's default)"
    )  # fmt: skip
    capital: float | None = Field(default=None, allow_inf_nan=False, description="Capital in USDT (default: saved "
                                  "preference, else the account balance)")  # fmt: skip
    max_leverage: float | None = Field(default=None, ge=1, le=125)
    win_rate: float | None = Field(default=None, allow_inf_nan=False, description="Win probability 0-1, for Kelly")
    payoff: float | None = Field(default=None, allow_inf_nan=False, description="Average win / average loss")
    levels_from: Literal["typed", "plan"] = Field(
        default="typed", description="Where entry and stop came from: typed by the user, or the structure plan"
    )


class MonteCarloArgs(_Args):
    """A Monte Carlo of N trades at a fixed risk per trade: the distribution of return and maximum drawdown."""

    win_rate: float = Field(allow_inf_nan=False, description="Win probability 0-1")
    payoff: float = Field(allow_inf_nan=False, description="Average win / average loss (R multiple of a win)")
    risk_pct: float | None = Field(default=None, allow_inf_nan=False, description="Risk per trade in % (default: "
                                   "saved preference, else the deployment's default)")  # fmt: skip
    trades: int = Field(default=100, ge=1, le=1000, description="Trades per path")
    paths: int = Field(default=50_000, ge=100, le=200_000, description="Simulated paths")
    seed: int | None = Field(default=None, description="Random seed (same seed, same result)")


class PreferencesArgs(_Args):
    """Preferences to save for the user; omitted fields are unchanged."""

    risk_pct: float | None = Field(default=None, gt=0, le=10)
    capital: float | None = Field(default=None, gt=0)
    watchlist: list[str] | None = Field(default=None, max_length=30)


class ProposeOrderArgs(AccountArgs):
    """An order to propose to the user; it is only executed after the user confirms it."""

    symbol: str = Field(min_length=1, max_length=40)
    action: OrderAction = Field(
        description="open (a new long/short: side, amount or risk_pct, stop_price or auto_stop), close (all or "
        "close_pct), set_stop, set_take_profit, move_stop_breakeven; flatten_winners, close_all, cancel_all (every "
        "position in profit, every position, every open order: symbol may be '*')"
    )
    close_pct: float | None = Field(default=None, gt=0, le=100, description="Percent of the position to close")
    price: float | None = Field(default=None, gt=0, description="Trigger price for set_stop / set_take_profit")
    side: Literal["long", "short"] | None = Field(default=None, description="Which position, when it matters")
    reason: str | None = Field(default=None, max_length=300)
    # Entries (action "open") only: the stop is mandatory, given or the structural stop of the plan.
    amount: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="Entry size in base units")
    risk_pct: float | None = Field(
        default=None, gt=0, le=10, allow_inf_nan=False, description="Size the entry to risk this % of capital"
    )
    stop_price: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="Stop of the entry")
    auto_stop: bool = Field(default=False, description="Use the structural stop of the plan as the entry's stop")
    targets: list[float] | None = Field(default=None, max_length=3, description="Take-profit prices T1[, T2]")
    leverage: int | None = Field(default=None, ge=1, le=125)
    limit_price: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="Limit entry price")
    expiry_hours: float | None = Field(
        default=None, gt=0, le=720, allow_inf_nan=False, description="Cancel a limit entry still resting after this"
    )
    order_id: str | None = Field(default=None, max_length=64, description="The open order to cancel (action cancel)")
    timeframe: Timeframe | None = Field(
        default=None, description="Timeframe of the plan behind an automatic stop (default: 1h, then 4h, then 15m)"
    )
