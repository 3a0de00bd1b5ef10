"""Batch orders: flatten the winners, close all, cancel all; one approval listing exactly what will be done.

The proposal stores every item with its absolute size (or order id); at the press the set is read again and, when
it changed (a position gone, resized or new, an order gone or new), nothing at all is placed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from storage.models import ExchangeAccount
from tools.agent_tools.base import ToolError, num
from tools.exchange.base import Account
from tools.exchange.models import IntentKind, Order, Position, qty_text
from tools.numbers import price_text

BATCH = "batch"
BATCH_ACTIONS = ("flatten_winners", "close_all", "cancel_all")
# How far a position's size may move before the set counts as changed (the executor's tolerance).
SIZE_TOLERANCE = Decimal("0.005")


def _position_item(p: Position, account_ref: str) -> dict[str, Any]:
    return {
        "account_ref": account_ref,
        "symbol": p.symbol,
        "kind": IntentKind.CLOSE.value,
        "side": p.side.closing_side.value,
        "reduce_only": True,
        "amount": qty_text(p.size),
        "position": {"side": p.side.value, "size": qty_text(p.size)},
    }


def _order_item(o: Order, account_ref: str) -> dict[str, Any]:
    return {"account_ref": account_ref, "symbol": o.symbol, "kind": IntentKind.CANCEL.value, "order_id": o.id}


def _pnl(p: Position) -> str:
    return f"{float(p.unrealised_pnl or 0):+,.2f} USDT"


def order_line(o: Order) -> str:
    """One open order as a line people read (symbol, side, type, size, price, role, id)."""
    at = o.trigger_price if o.trigger_price is not None else o.price
    where = f" at {price_text(num(at), o.symbol)}" if at is not None else ""
    size = f" {qty_text(o.amount)}" if o.amount is not None else " (whole position)"
    return f"- {o.symbol} {o.side.value} {o.type}{size}{where} ({o.role.value}, id {o.id})"


async def selection(account: Account, action: str) -> tuple[list[Position], list[Order]]:
    """The positions (winners or all) or the open orders an action covers, as the account reports them now."""
    if action == "cancel_all":
        return [], await account.open_orders()
    positions = await account.positions()
    if action == "flatten_winners":
        positions = [p for p in positions if (p.unrealised_pnl or 0) > 0]
    return positions, []


async def propose_batch(row: ExchangeAccount, account: Account, action: str) -> dict[str, Any]:
    """The approval of a batch action: the exact list of closes or cancels, with sizes and PnL at proposal."""
    positions, orders = await selection(account, action)
    ref = f"account:{row.id}"
    label = f"{row.label} ({row.exchange_id}{', simulated' if account.simulated else ''})"
    if action == "cancel_all":
        if not orders:
            raise ToolError(f"There are no open orders on account {label}.")
        items = [_order_item(o, ref) for o in orders]
        lines = [f"Cancel all {len(orders)} open order(s) on account {label}:", *(order_line(o) for o in orders)]
    else:
        if not positions:
            what = "winning positions (none is in profit)" if action == "flatten_winners" else "open positions"
            raise ToolError(f"There are no {what} on account {label}.")
        items = [_position_item(p, ref) for p in positions]
        head = "Flatten the winners" if action == "flatten_winners" else "Close all positions"
        lines = [f"{head} on account {label}, at market ({len(positions)}):"]
        lines += [
            f"- {p.symbol} {p.side.value} {qty_text(p.size)} {p.symbol.split('/')[0]}, PnL {_pnl(p)} now"
            for p in positions
        ]
    lines.append("Nothing is placed if this set has changed when you press Approve.")
    return {
        "account_id": row.id,
        "account": row.label,
        "action": action,
        "intent": {"kind": BATCH, "action": action, "account_ref": ref, "items": items},
        "summary": "\n".join(lines),
    }


def changed_set(action: str, items: list[dict[str, Any]], positions: list[Position], orders: list[Order]) -> str | None:
    """Why the live set is not the one the approval showed (None when it is the same)."""
    if action == "cancel_all":
        shown = {i["order_id"] for i in items}
        live = {o.id for o in orders}
        if shown != live:
            gone, new = len(shown - live), len(live - shown)
            return f"the open orders changed since the proposal ({gone} gone, {new} new); nothing was placed"
        return None
    live_by_key = {(p.symbol, p.side.value): p for p in positions}
    shown_keys = {(i["symbol"], i["position"]["side"]) for i in items}
    for item in items:
        key = (item["symbol"], item["position"]["side"])
        size = Decimal(item["position"]["size"])
        now = live_by_key.get(key)
        if now is None:
            return f"the {key[0]} {key[1]} is no longer open; nothing was placed"
        if abs(now.size - size) > size * SIZE_TOLERANCE:
            return f"the {key[0]} {key[1]} is now {qty_text(now.size)}, not {qty_text(size)}; nothing was placed"
    # A position that now belongs to the set but was not shown (opened since, or turned into a winner).
    extra = [
        k
        for k, p in live_by_key.items()
        if k not in shown_keys and (action == "close_all" or (p.unrealised_pnl or 0) > 0)
    ]
    if extra:
        return f"the {extra[0][0]} {extra[0][1]} was not in the list you approved; nothing was placed"
    return None


async def propose_cancel(row: ExchangeAccount, account: Account, order_id: str | None) -> dict[str, Any]:
    """The approval of cancelling one open order, found by its id among the account's open orders."""
    orders = await account.open_orders()
    found = next((o for o in orders if order_id and o.id == order_id), None)
    if found is None:
        have = ", ".join(o.id for o in orders) or "none"
        raise ToolError(f"No open order {order_id!r} on account {row.label} (open: {have}).")
    intent = {
        "account_ref": f"account:{row.id}",
        "symbol": found.symbol,
        "kind": IntentKind.CANCEL.value,
        "order_id": found.id,
    }
    line = order_line(found).removeprefix("- ")
    return {
        "account_id": row.id,
        "account": row.label,
        "symbol": found.symbol,
        "action": "cancel",
        "intent": intent,
        "summary": f"Cancel {line} on account {row.label}",
    }
