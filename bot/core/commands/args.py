"""Argument models and parsers of the slash commands: what a typed number, symbol, price or entry may be."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from agents.offline.intents import parse_entry
from bot.core.registry import UsageError, number_token
from tools.market.base import UnknownSymbolError
from tools.market.symbols import normalise_symbol

FRACTIONS = {"all": 100.0, "full": 100.0, "half": 50.0, "third": 33.33, "quarter": 25.0}
SIDES = ("long", "short")
# What a typed number may look like: 60000, 0.00001234, 1e6, 1.5e-8 (and inf / nan, so they are refused by
# name instead of being mistaken for a symbol).
_NUMBER_TOKEN = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?|[+-]?(?:inf|infinity|nan)", re.IGNORECASE)
# Plausible magnitudes: a price or an amount outside these is a typo (or an attack), never a real order.
MIN_PRICE, MAX_PRICE = 1e-12, 1e12
MAX_CAPITAL = 1e12


def _symbol(value: str) -> str:
    try:
        return normalise_symbol(value)
    except (ValueError, UnknownSymbolError):
        raise ValueError(f"{value!r} is not a symbol (try BTC, ETH or SOLUSDT)") from None


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _plausible_price(value: float) -> float:
    if not MIN_PRICE <= value <= MAX_PRICE:
        raise ValueError(f"{value:g} is not a plausible price (between {MIN_PRICE:g} and {MAX_PRICE:g})")
    return value


def _plausible_capital(value: float) -> float:
    if value > MAX_CAPITAL:
        raise ValueError(f"{value:g} is not a plausible amount (at most {MAX_CAPITAL:g})")
    return value


def exact(value: float) -> str:
    """The shortest text that reads back as exactly `value` (1000000, 1.234e-05), never `:g`'s six digits."""
    text = repr(float(value))
    return text.removesuffix(".0")


def is_number(token: str) -> bool:
    """Whether a token is a number as typed (plain, scientific, inf or nan; commas and $ already removed)."""
    return _NUMBER_TOKEN.fullmatch(token) is not None


Symbol = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_symbol)]
# Finite (inf and nan are refused by pydantic with "Input should be a finite number") and plausible.
Price = Annotated[float, Field(gt=0, allow_inf_nan=False), AfterValidator(_plausible_price)]
Percent = Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)]
Timeframe = Annotated[Literal["15m", "1h", "4h", "1d"], BeforeValidator(_lower)]
Side = Annotated[Literal["long", "short"] | None, BeforeValidator(_lower)]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SymbolArgs(_Args):
    """One symbol."""

    symbol: Symbol


class SymbolTfArgs(SymbolArgs):
    """A symbol and a timeframe."""

    timeframe: Timeframe = "1h"


class SizeArgs(_Args):
    """Pre-trade calculator."""

    symbol: Symbol
    entry: Price
    stop: Price
    risk: float | None = Field(default=None, gt=0, le=10, allow_inf_nan=False, description="risk % per trade")


class CloseArgs(_Args):
    """What to close."""

    symbol: Symbol
    pct: Percent = 100.0
    side: Side = None


class PriceArgs(_Args):
    """A trigger price on a position."""

    symbol: Symbol
    price: Price
    side: Side = None


class SideArgs(_Args):
    """A position."""

    symbol: Symbol
    side: Side = None


class ConnectArgs(_Args):
    """Exchange credentials."""

    exchange: Annotated[str, BeforeValidator(_lower)]
    api_key: str | None = Field(default=None, min_length=4, max_length=256)
    secret: str | None = Field(default=None, min_length=4, max_length=512)
    passphrase: str | None = Field(default=None, max_length=256)


class LabelArgs(_Args):
    """An account label (the first account when omitted)."""

    label: str | None = Field(default=None, max_length=64)


class ArmArgs(_Args):
    """Arm an account in a mode."""

    mode: Annotated[Literal["advise", "auto"], BeforeValidator(_lower)] = "advise"
    label: str | None = Field(default=None, max_length=64)


class KillArgs(_Args):
    """Engage or release a kill switch."""

    action: Annotated[Literal["on", "release"], BeforeValidator(_lower)] = "on"


class SettingsArgs(_Args):
    """Show or change a preference."""

    key: Annotated[Literal["risk", "capital"] | None, BeforeValidator(_lower)] = None
    value: Annotated[float, Field(gt=0, allow_inf_nan=False), AfterValidator(_plausible_capital)] | None = None


class GrantArgs(_Args):
    """A role for a user of this platform."""

    user: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_:.-]+$")
    role: Annotated[Literal["trader", "admin"], BeforeValidator(_lower)]


def parse_close(tokens: list[str]) -> dict[str, Any]:
    """`/close sol half long`, `/close 25% btc`: a symbol, an optional amount and an optional side, any order."""
    out: dict[str, Any] = {}
    for tok in tokens:
        low = tok.lower()
        if low in SIDES:
            out["side"] = low
        elif low in FRACTIONS:
            out["pct"] = FRACTIONS[low]
        elif is_number(number_token(low)):
            out["pct"] = number_token(low)
        elif "symbol" not in out:
            out["symbol"] = tok
        else:
            raise UsageError(f"I do not understand {tok!r}")
    return out


def parse_trigger(tokens: list[str]) -> dict[str, Any]:
    """`/stop sol 140 long` or `/stop 140 sol`: a symbol, a price and an optional side."""
    out: dict[str, Any] = {}
    for tok in tokens:
        low, num = tok.lower(), number_token(tok)
        if low in SIDES:
            out["side"] = low
        elif is_number(num) and "price" not in out:
            out["price"] = num
        elif "symbol" not in out:
            out["symbol"] = tok
        else:
            raise UsageError(f"I do not understand {tok!r}")
    return out


CONNECT_FIELDS = ("exchange", "api_key", "secret", "passphrase")


def parse_connect(tokens: list[str]) -> dict[str, Any]:
    """`/connect <exchange> [key secret [passphrase]]`; a mistake is explained without repeating any value."""
    if len(tokens) > len(CONNECT_FIELDS):
        raise UsageError(
            f"too many arguments ({len(tokens)}; at most exchange, key, secret and passphrase); nothing was stored"
        )
    return dict(zip(CONNECT_FIELDS, tokens, strict=False))


class CancelArgs(_Args):
    """One open order by its id, or all of them."""

    order_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_:.-]+$")


class EntryArgs(_Args):
    """A new position, in the shared entry grammar (`agents.offline.intents.ENTRY_USAGE`)."""

    symbol: Symbol
    side: Annotated[Literal["long", "short"], BeforeValidator(_lower)]
    amount: Annotated[float, Field(gt=0, allow_inf_nan=False), AfterValidator(_plausible_capital)] | None = None
    risk_pct: float | None = Field(default=None, gt=0, le=10, allow_inf_nan=False)
    stop_price: Price | None = None
    auto_stop: bool = False
    targets: list[Price] | None = Field(default=None, max_length=3)
    leverage: int | None = Field(default=None, ge=1, le=125)
    limit_price: Price | None = None
    expiry_hours: float | None = Field(default=None, gt=0, le=720, allow_inf_nan=False)
    timeframe: Timeframe | None = None

    @model_validator(mode="after")
    def _complete(self) -> EntryArgs:
        if self.stop_price is None and not self.auto_stop:
            raise ValueError("an entry always has a stop: add `stop <price>` or `stop auto` (the structural stop)")
        if self.amount is None and self.risk_pct is None:
            raise ValueError("give a size (0.1) or a risk in % of your capital (1%)")
        return self


def entry_parser(side: str) -> Callable[[list[str]], dict[str, Any]]:
    """`/long sol 0.1 stop auto tp 160,170 lev 3`: the free-text entry grammar, with the side fixed."""

    def parse(tokens: list[str]) -> dict[str, Any]:
        return parse_entry(" ".join(tokens), side)

    return parse
