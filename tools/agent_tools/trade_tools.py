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
from tools.agent_tools.schemas import PreferencesArgs, ProposeOrderArgs, SizeArgs
from tools.calculators import kelly_fraction, position_size
from tools.exchange.models import IntentKind, PositionSide, qty_text

# A live price older than this is not a basis for an order.
MAX_PRICE_AGE_S = 120.0
# Amounts to close are cut to this quantum (the paper account's), never rounded up past what is held.
_QUANTUM = Decimal("1e-12")


async def size_trade(deps: ToolDeps, ctx: ToolContext, args: SizeArgs) -> dict[str, Any]:
    """Size from capital, risk % and stop distance (saved preferences fill what is not given)."""
    prefs = await load_preferences(ctx)
    risk_pct = args.risk_pct or float(prefs.get("risk_pct") or deps.default_risk_pct)
    capital = args.capital or prefs.get("capital")
    capital_source = "given" if args.capital else "preferences" if capital else "balance"
    if not capital:
        try:
            _, account = await user_account(deps, ctx, None)
            capital = float((await account.balance()).total)
        except ToolError:
            capital, capital_source = deps.default_capital, "default"
    size = position_size(float(capital), risk_pct, args.entry, args.stop, args.max_leverage)
    out: dict[str, Any] = {
        "symbol": symbol_of(args.symbol) if args.symbol else None,
        "side": "long" if args.stop < args.entry else "short",
        "capital": num(size.capital),
        "capital_source": capital_source,
        "risk_pct": num(size.risk_pct),
        "risk_amount": num(size.risk_amount),
        "entry": num(size.entry),
        "stop": num(size.stop),
        "stop_distance": num(size.stop_distance),
        "stop_distance_pct": round(size.stop_distance_pct, 3),
        "units": num(size.units),
        "notional_usd": num(size.notional),
        "leverage_needed": round(size.leverage_needed, 2),
        "capped": size.capped,
    }
    if args.win_rate is not None and args.payoff is not None:
        out["kelly_fraction"] = round(kelly_fraction(args.win_rate, args.payoff), 4)
    return out


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
        summary = f"Set the {what} of the {symbol} {side_name} to {num(args.price)}"
    else:
        _check_side(direction, price, entry, "stop", side_name)
        intent |= {"kind": IntentKind.SET_STOP.value, "stop_price": str(Decimal(str(num(entry))))}
        summary = f"Move the stop of the {symbol} {side_name} to breakeven ({num(entry)})"
    intent["position"] = {"side": side_name, "size": qty_text(position.size)}
    label = account_label(row.label, row.exchange_id, account)
    summary += f" on account {label}. Price now {num(price):g}."
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
