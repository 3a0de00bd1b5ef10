"""Read-only account tools: positions, balance, evaluation of a position."""

from __future__ import annotations

from typing import Any

from tools.agent_tools.base import ToolContext, ToolDeps, ToolError, num, symbol_of, user_account
from tools.agent_tools.schemas import AccountArgs, EvaluateArgs
from tools.exchange.base import Account
from tools.exchange.models import Position
from tools.exchange.paper import DEFAULT_SOURCE


def venue(exchange_id: str, account: Account) -> str:
    """The exchange id, with the market a paper account trades on when it is not the default simulated one."""
    source = getattr(account, "market_source", None)
    if source and source != DEFAULT_SOURCE:
        # A separate paper account per source: say which one, so a fresh balance after a switch is not a surprise.
        return f"{exchange_id}, {source} market"
    return exchange_id


def account_label(label: str, exchange_id: str, account: Account) -> str:
    """How an account is named in a proposal: label, venue and whether its money is simulated."""
    return f"{label} ({venue(exchange_id, account)}{', simulated' if account.simulated else ''})"


def position_json(p: Position) -> dict[str, Any]:
    """One position with every figure an answer may cite."""
    mark = float(p.mark_price) if p.mark_price is not None else None
    entry = float(p.entry_price)
    d = 1 if p.side.value == "long" else -1
    return {
        "symbol": p.symbol,
        "side": p.side.value,
        "size": num(p.size),
        "entry": num(entry),
        "mark": num(mark),
        "notional_usd": num(float(p.size) * mark) if mark is not None else None,
        "pnl_pct": round(d * 100 * (mark - entry) / entry, 2) if mark is not None else None,
        "unrealised_pnl": num(p.unrealised_pnl),
        "leverage": num(p.leverage),
        "liquidation": num(p.liquidation_price),
        "stop": num(p.stop_loss),
        "take_profit": num(p.take_profit),
        "risk_to_stop_usd": risk_to_stop(p),
    }


def risk_to_stop(p: Position) -> float | None:
    """USDT lost from the entry if the stop fills (0 once the stop is past the entry); None without a stop."""
    if p.stop_loss is None:
        return None
    d = 1 if p.side.value == "long" else -1
    return num(max(0.0, d * (float(p.entry_price) - float(p.stop_loss))) * float(p.size))


async def get_positions(deps: ToolDeps, ctx: ToolContext, args: AccountArgs) -> dict[str, Any]:
    """Open positions of the user's account."""
    row, account = await user_account(deps, ctx, args.account)
    positions = await account.positions()
    rows = [position_json(p) for p in positions]
    risks = [r["risk_to_stop_usd"] for r in rows if r["risk_to_stop_usd"] is not None]
    return {
        "account": row.label,
        "exchange": venue(row.exchange_id, account),
        "simulated": account.simulated,
        "positions": rows,
        # Totals here so an answer can cite them (the grounding check does not add up more than two figures).
        "unrealised_pnl_total": num(sum(float(p.unrealised_pnl or 0) for p in positions)),
        "risk_to_stops_usd": num(sum(risks)) if risks else None,
    }


async def get_balance(deps: ToolDeps, ctx: ToolContext, args: AccountArgs) -> dict[str, Any]:
    """Margin balance of the user's account."""
    row, account = await user_account(deps, ctx, args.account)
    b = await account.balance()
    return {
        "account": row.label,
        "exchange": venue(row.exchange_id, account),
        "simulated": account.simulated,
        "currency": b.currency,
        "total": num(b.total),
        "free": num(b.free),
        "used": num(b.used),
        "unrealised_pnl": num(b.unrealised_pnl),
    }


async def find_position(account: Any, symbol: str, side: str | None = None) -> Position:
    """The open position on `symbol` (and `side`), or ToolError naming what is open."""
    positions = [p for p in await account.positions() if p.symbol == symbol]
    if side is not None:
        positions = [p for p in positions if p.side.value == side]
    if not positions:
        open_ = ", ".join(f"{p.symbol} {p.side.value}" for p in await account.positions()) or "none"
        wanted = f"{symbol} {side}" if side else symbol
        raise ToolError(f"There is no open {wanted} position (open positions: {open_}).")
    return positions[0]


async def evaluate_position(deps: ToolDeps, ctx: ToolContext, args: EvaluateArgs) -> dict[str, Any]:
    """The risk engine's decision for one open position (exit hierarchy and hard rules)."""
    if deps.evaluate is None:
        raise ToolError("Position evaluation is not available here.")
    _, account = await user_account(deps, ctx, args.account)
    position = await find_position(account, symbol_of(args.symbol))
    result = await deps.evaluate(position, args.timeframe)
    return {"position": position_json(position), **result}
