"""Entries: a new long or short with a mandatory stop, sized from the user's capital and risk, shown with its plan.

`propose_entry` only validates and describes: the order is placed after the user's press, through the executor.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

from storage.exchange_ids import PAPER
from storage.models import ExchangeAccount
from tools.agent_tools.account_tools import account_label
from tools.agent_tools.base import ToolContext, ToolDeps, ToolError, load_preferences, num, symbol_of
from tools.agent_tools.schemas import ProposeOrderArgs
from tools.agent_tools.structure_data import structure_of
from tools.calculators import position_size
from tools.exchange.base import Account
from tools.exchange.models import IntentKind, OrderType, PositionSide, qty_text
from tools.numbers import SizeBelowStep, price_text, size_down
from tools.structure.targets import TradePlan, plan_from_report

# Significant digits an entry size sized from risk keeps (rounded down, so the risk is never exceeded).
SIZE_DIGITS = 4
MIN_T1_R = 1.0
# Where an automatic stop is looked for when no timeframe is typed, in this order.
AUTO_TIMEFRAMES = ("1h", "4h", "15m")


def _round_down(value: float, digits: int = SIZE_DIGITS) -> Decimal:
    exact = Decimal(str(value))
    if exact <= 0:
        return Decimal(0)
    quantum = Decimal(1).scaleb(exact.adjusted() - digits + 1)
    return exact.quantize(quantum, ROUND_DOWN)


def _at_step(amount: Decimal, symbol: str) -> Decimal:
    """The size the venue takes: rounded down to the instrument's step (what is shown is what is placed)."""
    try:
        return size_down(amount, symbol)
    except SizeBelowStep as exc:
        raise ToolError(exc.user_message) from None


def _price(value: float) -> str:
    """A price as a decimal string with the tool outputs' significant digits."""
    return qty_text(Decimal(str(num(value))))


def _fmt(value: float | None, symbol: str) -> str:
    """A price of the proposal at the instrument's tick (the intent keeps the exact value)."""
    return price_text(None if value is None else num(value), symbol)


def _plan_rejection(plan: TradePlan) -> str | None:
    # The structure engine may mark a plan as rejected (its owner is adding it); honour it when present.
    if getattr(plan, "rejected", False):
        return str(getattr(plan, "reason", None) or getattr(plan, "rejection", None) or "the plan is rejected")
    return None


async def _plan(deps: ToolDeps, symbol: str, side: str, entry: float, timeframe: str) -> TradePlan:
    report, _ = await structure_of(deps, symbol, timeframe)
    try:
        return plan_from_report(report, side, entry=entry)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ToolError(f"No structural plan for a {symbol} {side} on {timeframe}: {exc}.") from None


def liquidation_estimate(account: Account, side: PositionSide, entry: float, leverage: int) -> float | None:
    """Isolated-margin liquidation price of a new position on accounts that model it (the paper one), else None."""
    config = getattr(account, "config", None)
    mmr = getattr(config, "maintenance_margin", None)
    if mmr is None:
        return None
    inv = 1.0 / leverage
    if side is PositionSide.LONG:
        return max(0.0, entry * (1 - inv + float(mmr)))
    return entry * (1 + inv - float(mmr))


def _duration(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:g} min"
    return f"{hours / 24:g} days" if hours >= 48 and hours % 24 == 0 else f"{hours:g} h"


def _limit_expiry(deps: ToolDeps, args: ProposeOrderArgs, row: ExchangeAccount, account: Account) -> float | None:
    """Hours a limit entry rests before it is cancelled: as typed, else the settings' default; paper accounts only."""
    if args.limit_price is None:
        if args.expiry_hours is not None:
            raise ToolError("Only a limit entry can expire: add `limit PRICE`, or drop the `for ...`.")
        return None
    if account.exchange_id != PAPER:
        if args.expiry_hours is not None:
            # The paper account keeps expiries at market time; an exchange order would silently rest forever.
            raise ToolError(
                f"A limit on {row.exchange_id} rests until you cancel it: expiries are kept by the paper account "
                "only. Send it without `for ...` and cancel it with /cancel when you want."
            )
        return None
    return args.expiry_hours if args.expiry_hours is not None else deps.default_limit_expiry_h


async def propose_entry(
    deps: ToolDeps, ctx: ToolContext, args: ProposeOrderArgs, row: ExchangeAccount, account: Account, price: float
) -> dict[str, Any]:
    """Validate an entry (stop side, risk within the user's maximum, T1 at least 1R) and describe it exactly."""
    symbol = symbol_of(args.symbol)
    if args.side is None:
        raise ToolError("Long or short? For example: long 0.1 sol stop auto")
    side = PositionSide(args.side)
    d = 1 if side is PositionSide.LONG else -1
    base = symbol.split("/")[0]
    held = [p for p in await account.positions(symbol) if p.side is not side]
    if held:
        raise ToolError(
            f"You hold a {symbol} {held[0].side.value} of {qty_text(held[0].size)} {base}: close it first "
            f"(an opposite entry would net against it instead of opening a {args.side})."
        )
    limit = args.limit_price
    entry = limit if limit is not None else price
    if args.stop_price is None and not args.auto_stop:
        raise ToolError(
            f"An entry always has a stop: add `stop PRICE`, or `stop auto` for the structural stop "
            f"(e.g. {args.side} {base.lower()} 1% stop auto)."
        )
    plan: TradePlan | None = None
    timeframe = args.timeframe or AUTO_TIMEFRAMES[0]
    if args.auto_stop or not args.targets:
        # A typed timeframe is the only one asked; otherwise the first plan the structure engine accepts, 1h first.
        refusals: list[str] = []
        for tf in (args.timeframe,) if args.timeframe else AUTO_TIMEFRAMES:
            candidate = await _plan(deps, symbol, args.side, entry, tf)
            why = _plan_rejection(candidate)
            if plan is None or (why is None and _plan_rejection(plan) is not None):
                plan, timeframe = candidate, tf
            if why is None:
                break
            refusals.append(f"{tf}: {why}")
        if args.auto_stop and plan is not None and _plan_rejection(plan) is not None:
            raise ToolError(
                f"No entry with an automatic stop: the structure plan for a {symbol} {args.side} is rejected "
                f"({'; '.join(refusals)}). Give a stop yourself (`stop PRICE`) if you still want the trade."
            )
    # Sized and checked with the stop exactly as it will be placed (the plan's is rounded to the tools' digits).
    stop = args.stop_price if args.stop_price is not None else float(_price(plan.stop))  # type: ignore[union-attr]
    stop_source = "given" if args.stop_price is not None else f"structural, {timeframe} plan"
    where = "below" if d == 1 else "above"
    for ref_name, ref in (("entry", entry), ("current price", price)):
        if d * (ref - stop) <= 0:
            raise ToolError(
                f"A {args.side}'s stop must be {where} the {ref_name} {_fmt(ref, symbol)}; {_fmt(stop, symbol)} is not."
            )
    risk_per_unit = abs(entry - stop)

    prefs = await load_preferences(ctx)
    max_risk = float(prefs.get("risk_pct") or deps.default_risk_pct)
    capital = prefs.get("capital")
    capital_source = "your settings" if capital else "account balance"
    if not capital:
        capital = float((await account.balance()).total)
    capital = float(capital)
    if capital <= 0:
        raise ToolError("The account has no capital to size an entry from.")
    leverage = args.leverage or 1
    if args.amount is not None:
        amount = _at_step(Decimal(str(args.amount)), symbol)
        sized = "given"
    else:
        risk_pct = args.risk_pct or max_risk
        if risk_pct > max_risk:
            raise ToolError(
                f"Risk too high: {risk_pct:g}% of {capital:,.2f} USDT is above your maximum of {max_risk:g}% per trade "
                "(`/settings risk` changes it)."
            )
        size = position_size(capital, risk_pct, entry, stop, max_leverage=leverage)
        amount = _round_down(size.units)
        capped = f", capped by {leverage}x leverage" if size.capped else ""
        sized = f"{risk_pct:g}% risk of {capital:,.2f} USDT{capped}"
        if amount <= 0:
            raise ToolError(f"{risk_pct:g}% of {capital:,.2f} USDT buys less than the smallest size of {base}.")
        amount = _at_step(amount, symbol)
    risk_usd = float(amount) * risk_per_unit
    risk_pct_of_capital = 100.0 * risk_usd / capital
    if risk_pct_of_capital > max_risk * (1 + 1e-9):
        raise ToolError(
            f"Risk too high: {qty_text(amount)} {base} with the stop at {_fmt(stop, symbol)} risks "
            f"{risk_usd:,.2f} USDT = "
            f"{risk_pct_of_capital:.2f}% of {capital:,.2f} USDT, above your maximum of {max_risk:g}% per trade "
            "(`/settings risk` changes it). Use a smaller size or a closer stop."
        )

    targets: list[tuple[str, float, float]] = []  # (name, price, R multiple)
    if args.targets:
        for i, t in enumerate(sorted(args.targets, key=lambda t: d * (t - entry))):
            if d * (t - entry) <= 0:
                tw = "above" if d == 1 else "below"
                raise ToolError(
                    f"A {args.side}'s targets must be {tw} the entry {_fmt(entry, symbol)}; {_fmt(t, symbol)} is not."
                )
            targets.append((f"T{i + 1}", t, d * (t - entry) / risk_per_unit))
    elif plan is not None:
        # The plan's levels measured against this entry's stop; targets closer than 1R are not worth the trade.
        ahead = [(t.price, d * (t.price - entry) / risk_per_unit) for t in plan.targets if d * (t.price - entry) > 0]
        targets = [(f"T{i + 1}", p, r) for i, (p, r) in enumerate([x for x in ahead if x[1] >= MIN_T1_R][:2])]
    if targets and targets[0][2] < MIN_T1_R:
        raise ToolError(
            f"Bad setup: T1 at {_fmt(targets[0][1], symbol)} is only {targets[0][2]:.2f}R from the entry "
            f"{_fmt(entry, symbol)} "
            f"with the stop at {_fmt(stop, symbol)}; T1 must be at least {MIN_T1_R:g}R."
        )
    liquidation = liquidation_estimate(account, side, entry, leverage)
    if liquidation is not None and d * (stop - liquidation) <= 0:
        raise ToolError(
            f"At {leverage}x the position would be liquidated near {_fmt(liquidation, symbol)}, before the stop "
            f"{_fmt(stop, symbol)}: lower the leverage or move the stop."
        )
    notional = float(amount) * entry
    balance = await account.balance()
    margin = notional / leverage
    if margin > float(balance.free):
        raise ToolError(
            f"Not enough margin: {qty_text(amount)} {base} at {leverage}x needs {margin:,.2f} USDT, "
            f"{float(balance.free):,.2f} USDT is free. Use more leverage (`lev N`) or a smaller size."
        )

    expiry_h = _limit_expiry(deps, args, row, account)
    order_type = OrderType.LIMIT if limit is not None else OrderType.MARKET
    intent: dict[str, Any] = {
        "account_ref": f"account:{row.id}",
        "symbol": symbol,
        "kind": IntentKind.OPEN.value,
        "side": side.opening_side.value,
        "amount": qty_text(amount),
        "order_type": order_type.value,
        "stop_price": _price(stop),
        "leverage": leverage,
    }
    if limit is not None:
        intent["price"] = _price(limit)
    if expiry_h is not None:
        intent["expires_after_s"] = max(1, round(expiry_h * 3600))
    # One take-profit order closes what is left at the last target; earlier targets are the monitor's partials.
    if targets:
        intent["take_profit_price"] = _price(targets[-1][1])
    label = account_label(row.label, row.exchange_id, account)
    how = f"limit {_fmt(limit, symbol)}" if limit is not None else "market"
    lines = [
        f"Open a {symbol} {args.side} of {qty_text(amount)} {base} at {how} on account {label}, {leverage}x "
        f"(size: {sized}). Price now {_fmt(price, symbol)}.",
        f"Entry {_fmt(entry, symbol)}, stop {_fmt(stop, symbol)} ({stop_source}), "
        + (", ".join(f"{n} {_fmt(p, symbol)} ({r:.2f}R)" for n, p, r in targets) if targets else "no target")
        + (f"; R:R {targets[0][2]:.2f}" if targets else "")
        + ".",
        f"Risk {risk_usd:,.2f} USDT = {risk_pct_of_capital:.2f}% of {capital:,.2f} USDT ({capital_source}); "
        f"notional {notional:,.2f} USDT"
        + (f"; liquidation near {_fmt(liquidation, symbol)}" if liquidation is not None else "")
        + ".",
        (
            f"The stop and a take-profit at {_fmt(targets[-1][1], symbol)} are placed as reduce-only trigger orders"
            if targets
            else "The stop is placed as a reduce-only trigger order"
        )
        + " with the entry.",
    ]
    if expiry_h is not None:
        default = "" if args.expiry_hours is not None else " (your default)"
        lines.append(f"The limit rests {_duration(expiry_h)}{default} after it is placed, then is cancelled unfilled.")
    elif limit is not None:
        lines.append("The limit rests until it fills or you cancel it (/orders, /cancel).")
    return {
        "account_id": row.id,
        "account": row.label,
        "symbol": symbol,
        "action": "open",
        "side": args.side,
        "amount": float(amount),
        "entry": num(entry),
        "stop": num(stop),
        "stop_source": stop_source,
        "targets": [{"name": n, "price": num(p), "rr": round(r, 2)} for n, p, r in targets],
        "risk_usd": round(risk_usd, 2),
        "risk_pct": round(risk_pct_of_capital, 3),
        "capital": round(capital, 2),
        "leverage": leverage,
        "liquidation": num(liquidation),
        "expires_after_h": expiry_h,
        "price": num(price),
        "intent": intent,
        "summary": "\n".join(lines),
        "reason": args.reason,
    }
