"""Numbers as people read them, in one place: prices at the instrument's precision, sizes, money, counted nouns.

Every figure an answer shows keeps at least 4 significant digits: the grounding check matches figures against the
tool data within 0.1 %, so "0.02" for a PnL of -0.0240527 would be removed as unsupported.
"""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

# Price tick of the instruments the simulated and replayed markets carry (the USDT perpetuals' ticks on the large
# venues). A live venue's own tick, when known, is registered with `register_tick` and wins.
SIM_TICKS: dict[str, Decimal] = {
    "BTC": Decimal("0.1"),
    "ETH": Decimal("0.01"),
    "SOL": Decimal("0.01"),
    "BNB": Decimal("0.01"),
    "LTC": Decimal("0.01"),
    "AAVE": Decimal("0.01"),
    "XRP": Decimal("0.0001"),
    "ADA": Decimal("0.0001"),
    "POL": Decimal("0.0001"),
    "TON": Decimal("0.0001"),
    "SUI": Decimal("0.0001"),
    "ARB": Decimal("0.0001"),
    "OP": Decimal("0.0001"),
    "AVAX": Decimal("0.001"),
    "LINK": Decimal("0.001"),
    "DOT": Decimal("0.001"),
    "APT": Decimal("0.001"),
    "NEAR": Decimal("0.001"),
    "ATOM": Decimal("0.001"),
    "UNI": Decimal("0.001"),
    "DOGE": Decimal("0.00001"),
    "TRX": Decimal("0.00001"),
    "PEPE": Decimal("0.0000000001"),
    "SHIB": Decimal("0.000000001"),
}
_TICKS: dict[str, Decimal] = {}
# Amount step and minimum order size in base units, from a live venue's market list (the simulated and replayed
# markets have none: the paper exchange trades at MAX_SIZE_DECIMALS).
_STEPS: dict[str, Decimal] = {}
_MINIMUMS: dict[str, Decimal] = {}
SIG_DIGITS = 4  # the fewest significant digits a shown figure keeps (see the module docstring)
MAX_SIZE_DECIMALS = 8  # the paper exchange's step; venues' steps are coarser


def base_of(symbol: str | None) -> str:
    """BTC of "BTC/USDT:USDT", "btcusdt" or "BTC"."""
    if not symbol:
        return ""
    up = symbol.upper().split("/")[0].split(":")[0]
    for quote in ("USDT", "USDC"):
        if up.endswith(quote) and len(up) > len(quote):
            return up[: -len(quote)]
    return up


class SizeBelowStep(ValueError):
    """A size that rounds down to nothing at the instrument's step, or below the venue's minimum order size."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.user_message = message


def _positive(value: float | Decimal | str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return None
    return number if number.is_finite() and number > 0 else None


def register_tick(symbol: str, tick: float | Decimal) -> None:
    """Record a venue's price tick for `symbol` (from its market list), used by every later `price_text`."""
    if (value := _positive(tick)) is not None:
        _TICKS[base_of(symbol)] = value


def register_step(symbol: str, step: float | Decimal | None, minimum: float | Decimal | None = None) -> None:
    """Record a venue's amount step (and minimum order size), in base units, for `symbol`."""
    base = base_of(symbol)
    if (value := _positive(step)) is not None:
        _STEPS[base] = value.normalize()
    if (low := _positive(minimum)) is not None:
        _MINIMUMS[base] = low.normalize()


def precision_step(value: float | int | str | None, decimal_places: bool) -> Decimal | None:
    """A ccxt market precision as a step: 0.1 in TICK_SIZE mode, or 10^-value in DECIMAL_PLACES mode."""
    if value is None:
        return None
    if decimal_places:
        return Decimal(1).scaleb(-int(float(value)))
    return _positive(value)


def tick_of(symbol: str | None) -> Decimal | None:
    """The price tick known for `symbol`, or None."""
    base = base_of(symbol)
    return _TICKS.get(base) or SIM_TICKS.get(base)


def step_of(symbol: str | None) -> Decimal:
    """The amount step of `symbol`: the venue's when registered, else the paper exchange's 10^-8."""
    return _STEPS.get(base_of(symbol), Decimal(1).scaleb(-MAX_SIZE_DECIMALS))


def size_down(size: float | Decimal, symbol: str | None) -> Decimal:
    """`size` rounded DOWN to the instrument's step (never more risk than asked); SizeBelowStep when nothing or
    less than the venue's minimum order size is left."""
    step = step_of(symbol)
    value = Decimal(str(size))
    rounded = (value / step).to_integral_value(rounding=ROUND_DOWN) * step
    minimum = _MINIMUMS.get(base_of(symbol))
    if rounded <= 0 or (minimum is not None and rounded < minimum):
        floor = f" (minimum order {size_text(minimum)})" if minimum is not None else ""
        raise SizeBelowStep(
            f"The size {size_text(value)} rounds down to {size_text(max(rounded, Decimal(0)))} at the "
            f"{base_of(symbol) or 'instrument'} step of {size_text(step)}{floor}: too small to place."
        )
    return rounded.normalize()


def _decimals(step: Decimal) -> int:
    return max(0, -step.normalize().as_tuple().exponent)  # type: ignore[operator]


def _sig_decimals(x: float, digits: int = SIG_DIGITS) -> int:
    """Decimals that keep `digits` significant digits of x."""
    if x == 0 or not math.isfinite(x):
        return 0
    return max(0, digits - 1 - math.floor(math.log10(abs(x))))


def price_text(x: float | Decimal | None, symbol: str | None = None) -> str:
    """A price for people: 129,084.1 (BTC, tick 0.1), 4,811.50 (ETH), 3.2012 (XRP); "n/a" when unknown.

    With a known tick: exactly the tick's decimals. Without: by magnitude (67,234 / 184.3 / 24.05 / 3.201 /
    0.0001234), never in exponent form.
    """
    if x is None:
        return "n/a"
    value = float(x)
    if not math.isfinite(value):
        return "n/a"
    tick = tick_of(symbol)
    if tick is not None:
        places = _decimals(tick)
    else:
        a = abs(value)
        if a < 1:  # 0.0001234, 0.5: significant digits, trailing zeros dropped
            return f"{value:.{_sig_decimals(value)}f}".rstrip("0").rstrip(".") or "0"
        places = 0 if a >= 1000 else 1 if a >= 100 else 2 if a >= 10 else 3
    return f"{value:,.{places}f}"


def size_text(x: float | Decimal | None, step: float | Decimal | None = None, symbol: str | None = None) -> str:
    """A size as people write it: 0.025, 1.5, 0.0841744 (never "0.025000000000" or "1E+1"); at `step` when given,
    else at the venue step registered for `symbol`."""
    if x is None:
        return "n/a"
    value = Decimal(str(x))
    if step is None and symbol is not None:
        step = _STEPS.get(base_of(symbol))
    places = _decimals(Decimal(str(step))) if step else MAX_SIZE_DECIMALS
    # Enough significant digits that a computed size (0.084174412...) is not shown to 12 places, few enough
    # that it still matches its source within 0.1 %.
    places = min(places, max(_sig_decimals(float(value), 6), 0))
    shown = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN) if places else value.to_integral()
    text = format(shown.normalize(), "f")
    return "0" if text in ("-0", "") else text


def money_text(x: float | Decimal | None, currency: str = "", signed: bool = False) -> str:
    """An amount of money: 2 decimals with thousands separators, more below 10 so 4 digits stay (-0.02405)."""
    if x is None:
        return "n/a"
    value = float(x)
    places = max(2, _sig_decimals(value)) if abs(value) < 10 else 2
    text = f"{value:+,.{places}f}" if signed else f"{value:,.{places}f}"
    return f"{text} {currency}".rstrip()


def plural(n: int, noun: str, many: str | None = None) -> str:
    """ "1 touch", "2 touches", "1 bar", "3 bars"."""
    if n == 1:
        return f"{n} {noun}"
    return f"{n} {many or (noun + 'es' if noun.endswith(('ch', 'sh', 's', 'x')) else noun + 's')}"
