"""Trade tools: the pre-trade calculator, preferences, and `propose_order` (validation only, never execution)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from tools.agent_tools.account_tools import account_label, find_position
from tools.agent_tools.base import (
    PREFS_KEY,
    ToolContext,
    ToolDeps,
    ToolError,
    load_preferences,
    num,
    prefs_namespace,
    symbol_of,
    user_account,
)
from tools.agent_tools.batch import BATCH_ACTIONS, propose_batch, propose_cancel
from tools.agent_tools.entries import propose_entry
from tools.agent_tools.schemas import MonteCarloArgs, PreferencesArgs, ProposeOrderArgs, SizeArgs
from tools.calculators import kelly_fraction, monte_carlo, position_size
from tools.exchange.models import IntentKind, PositionSide, qty_text
from tools.numbers import SizeBelowStep, price_text, size_down

# A live price older than this is not a basis for an order.
MAX_PRICE_AGE_S = 120.0
# Amounts to close are cut to this quantum (the paper account's), never rounded up past what is held.
_QUANTUM = Decimal("1e-12")


MAX_RISK_PCT = 10.0  # the calculator's ceiling per trade: more is a typo, not a plan


def _positive(value: float, what: str) -> float:
    if value <= 0:
        raise ToolError(f"{what} {value:g} is not a price (a price is above 0); nothing was sized.")
    return value


async def _risk_and_capital(
    deps: ToolDeps, ctx: ToolContext, risk_pct: float | None, capital: float | None, *, need_capital: bool = True
) -> tuple[float, str, float | None, str | None]:
    """(risk %, its source, capital, its source): typed values are used or refused, never replaced."""
    prefs = await load_preferences(ctx)
    if risk_pct is not None:
        if risk_pct <= 0:
            raise ToolError(
                f"A risk of {risk_pct:g}% sizes nothing: give the % of capital you accept to lose at the stop "
                "(e.g. 1%); nothing was sized."
            )
        if risk_pct > MAX_RISK_PCT:
            raise ToolError(f"A risk of {risk_pct:g}% per trade is above the calculator's {MAX_RISK_PCT:g}% limit.")
        risk_source = "typed"
    elif prefs.get("risk_pct"):
        risk_pct, risk_source = float(prefs["risk_pct"]), "your settings"
    else:
        risk_pct, risk_source = float(deps.default_risk_pct), "default"
    if not need_capital:
        return risk_pct, risk_source, None, None
    if capital is not None:
        if capital <= 0:
            raise ToolError(f"A capital of {capital:g} cannot be sized from: give the USDT you trade with (e.g. 20k).")
        return risk_pct, risk_source, capital, "typed"
    if prefs.get("capital"):
        return risk_pct, risk_source, float(prefs["capital"]), "your settings"
    try:
        _, account = await user_account(deps, ctx, None)
        return risk_pct, risk_source, float((await account.balance()).total), "account balance"
    except ToolError:
        return risk_pct, risk_source, deps.default_capital, "default"


def _edge(win_rate: float | None, payoff: float | None) -> tuple[float, float] | None:
    if win_rate is None and payoff is None:
        return None
    if win_rate is None or payoff is None:
        raise ToolError("Kelly needs both a win rate and a payoff (e.g. kelly win rate 55% payoff 2).")
    if not 0 < win_rate < 1:
        raise ToolError(f"A win rate of {win_rate * 100:g}% is not a probability: give one between 0% and 100%.")
    if payoff <= 0:
        raise ToolError(f"A payoff of {payoff:g} is not one: the average win over the average loss is above 0.")
    return win_rate, payoff


def _units_at_step(units: float, symbol: str | None) -> Decimal:
    """Units rounded down to the instrument's step, as the order would be placed (never more risk than asked)."""
    try:
        return size_down(Decimal(str(units)), symbol_of(symbol) if symbol else None)
    except SizeBelowStep as exc:
        raise ToolError(exc.user_message) from None


async def size_trade(deps: ToolDeps, ctx: ToolContext, args: SizeArgs) -> dict[str, Any]:
    """Size from capital, risk % and stop distance; typed values are used or refused, the rest filled and labelled."""
    entry, stop = _positive(args.entry, "Entry"), _positive(args.stop, "Stop")
    if entry == stop:
        raise ToolError(f"The stop {stop:g} is the entry: it must be below it for a long or above it for a short.")
    edge = _edge(args.win_rate, args.payoff)
    risk_pct, risk_source, capital, capital_source = await _risk_and_capital(deps, ctx, args.risk_pct, args.capital)
    assert capital is not None
    size = position_size(float(capital), risk_pct, entry, stop, args.max_leverage)
    out: dict[str, Any] = {
        "symbol": symbol_of(args.symbol) if args.symbol else None,
        "side": "long" if stop < entry else "short",
        "capital": num(size.capital),
        "capital_source": capital_source,
        "risk_pct": num(size.risk_pct),
        "risk_source": risk_source,
        "risk_amount": num(size.risk_amount),
        "entry": num(size.entry),
        "entry_source": "typed" if args.levels_from == "typed" else "market",
        "stop": num(size.stop),
        "stop_source": "typed" if args.levels_from == "typed" else "structure plan",
        "stop_distance": num(size.stop_distance),
        "stop_distance_pct": round(size.stop_distance_pct, 3),
        "units": float(_units_at_step(size.units, args.symbol)),
        "notional_usd": num(size.notional),
        "leverage_needed": round(size.leverage_needed, 2),
        "capped": size.capped,
    }
    if edge is not None:
        f = kelly_fraction(*edge)
        out |= {
            "win_rate": edge[0],
            "win_rate_pct": round(edge[0] * 100, 4),
            "payoff": edge[1],
            "kelly_fraction": round(f, 4),
            "kelly_risk_pct": round(max(f, 0.0) * 100, 2),
            "half_kelly_risk_pct": round(max(f, 0.0) * 50, 2),
        }
    return out


async def run_monte_carlo(deps: ToolDeps, ctx: ToolContext, args: MonteCarloArgs) -> dict[str, Any]:
    """Monte Carlo of N trades at a fixed risk (SPEC: 50,000 paths by default): return and drawdown percentiles."""
    edge = _edge(args.win_rate, args.payoff)
    assert edge is not None
    risk_pct, risk_source, _, _ = await _risk_and_capital(deps, ctx, args.risk_pct, None, need_capital=False)
    result = monte_carlo(edge[0], edge[1], risk_pct, trades=args.trades, paths=args.paths, seed=args.seed)
    return {
        **result.model_dump(),
        "win_rate_pct": round(edge[0] * 100, 4),
        "risk_source": risk_source,
        "kelly_fraction": round(kelly_fraction(*edge), 4),
    }


async def update_preferences(deps: ToolDeps, ctx: ToolContext, args: PreferencesArgs) -> dict[str, Any]:
    """Save the user's risk %, capital or watchlist for later answers."""
    if ctx.store is None:
        raise ToolError("Preferences cannot be saved here.")
    prefs = await load_preferences(ctx)
    changes = args.model_dump(exclude_none=True)
    if "watchlist" in changes:
        changes["watchlist"] = [symbol_of(s) for s in changes["watchlist"]]
    prefs.update(changes)
    await ctx.store.aput(prefs_namespace(ctx.user_id), PREFS_KEY, prefs)
    return {"saved": changes, "preferences": prefs}


def _check_side(direction: int, price: float, trigger: float, what: str, side: str) -> None:
    # A long's stop sits below price, its target above; a short mirrors it (SPEC hard rule).
    wrong = direction * (trigger - price) >= 0 if what == "stop" else direction * (trigger - price) <= 0
    if wrong:
        where = ("below" if direction == 1 else "above") if what == "stop" else ("above" if direction == 1 else "below")
        raise ToolError(f"A {side}'s {what} must be {where} the current price {num(price)}; {num(trigger)} is not.")


async def propose_order(deps: ToolDeps, ctx: ToolContext, args: ProposeOrderArgs) -> dict[str, Any]:
    """Validate an order against the account, the position and a fresh price; return the exact proposal."""
    row, account = await user_account(deps, ctx, args.account)
    if row.read_only:
        raise ToolError(f"Account {row.label!r} is read-only: arm it before orders can be proposed.")
    if row.mode == "off":
        raise ToolError(f"Account {row.label!r} is switched off.")
    if args.action in BATCH_ACTIONS:
        return {**await propose_batch(row, account, args.action), "reason": args.reason}
    if args.action == "cancel":
        return {**await propose_cancel(row, account, args.order_id), "reason": args.reason}
    symbol = symbol_of(args.symbol)
    if args.action != "open":
        position = await find_position(account, symbol, args.side)
    ticker = await deps.market.ticker(symbol)
    age = (datetime.now(UTC) - ticker.timestamp).total_seconds()
    if not ticker.simulated and age > MAX_PRICE_AGE_S:
        raise ToolError(f"The latest {symbol} price is {age:.0f} s old; try again when data is fresh.")
    if args.action == "open":
        return {**await propose_entry(deps, ctx, args, row, account, ticker.last), "simulated": ticker.simulated}
    price, entry = ticker.last, float(position.entry_price)
    direction = 1 if position.side is PositionSide.LONG else -1
    side_name = position.side.value
    base = symbol.split("/")[0]
    intent: dict[str, Any] = {
        "account_ref": f"account:{row.id}",
        "symbol": symbol,
        "side": position.side.closing_side.value,
        "reduce_only": True,
    }
    if args.action == "close":
        pct = args.close_pct or 100.0
        # Absolute sizes: the approval shows and carries the amount to close and the size it was computed from;
        # the executor refuses the press when the live position no longer matches what was shown.
        held = position.size
        amount = held if pct >= 100 else (held * Decimal(str(round(pct, 4))) / 100).quantize(_QUANTUM, ROUND_DOWN)
        if amount <= 0:
            raise ToolError(f"{pct:g}% of {qty_text(held)} {base} is too small to close.")
        if amount < held:  # a part: at the venue's step, rounded down (the whole position closes as it is)
            try:
                amount = size_down(amount, symbol)
            except SizeBelowStep as exc:
                too_small = f"{pct:g}% of {qty_text(held)} {base} is too small to close"
                raise ToolError(f"{too_small}: {exc.user_message}") from None
        intent |= {"kind": IntentKind.CLOSE.value, "amount": qty_text(amount)}
        what = "Close all" if pct >= 100 else f"Close {pct:g}%"
        summary = f"{what} of the {symbol} {side_name} ({qty_text(amount)} of {qty_text(held)} {base}) at market"
    elif args.action in ("set_stop", "set_take_profit"):
        if args.price is None:
            raise ToolError(f"{args.action} needs a price.")
        what = "stop" if args.action == "set_stop" else "take-profit"
        _check_side(direction, price, args.price, "stop" if what == "stop" else "target", side_name)
        key = "stop_price" if what == "stop" else "take_profit_price"
        kind = IntentKind.SET_STOP if what == "stop" else IntentKind.SET_TAKE_PROFIT
        intent |= {"kind": kind.value, key: str(Decimal(str(num(args.price))))}
        # The exact price that will be placed (what executes is what was shown), not rounded for display.
        summary = f"Set the {what} of the {symbol} {side_name} to {num(args.price)}"
    else:
        _check_side(direction, price, entry, "stop", side_name)
        intent |= {"kind": IntentKind.SET_STOP.value, "stop_price": str(Decimal(str(num(entry))))}
        summary = f"Move the stop of the {symbol} {side_name} to breakeven ({num(entry)})"
    intent["position"] = {"side": side_name, "size": qty_text(position.size)}
    label = account_label(row.label, row.exchange_id, account)
    summary += f" on account {label}. Price now {price_text(num(price), symbol)}."
    return {
        "account_id": row.id,
        "account": row.label,
        "symbol": symbol,
        "action": args.action,
        "position": {"side": side_name, "size": num(position.size), "entry": num(entry)},
        "price": num(price),
        "simulated": ticker.simulated,
        "intent": intent,
        "summary": summary,
        "reason": args.reason,
    }
