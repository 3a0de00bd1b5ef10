"""Trading commands: entries, closes, stops, targets, cancels and the batch actions; each asks for confirmation.

Their validated arguments enter the analyst graph at the risk check, then the approval interrupt: the same guards,
buttons and execution as free text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from agents.offline.intents import ENTRY_USAGE
from bot.core.commands.args import (
    CancelArgs,
    CloseArgs,
    EntryArgs,
    PriceArgs,
    SideArgs,
    entry_parser,
    parse_close,
    parse_trigger,
)
from bot.core.commands.deps import CommandDeps, propose
from bot.core.messages import Outbound
from bot.core.registry import Command, CommandCall, CommandRegistry, Permission


def register(reg: CommandRegistry, deps: CommandDeps) -> None:
    """Add the order commands (trader permission)."""

    async def cancel(call: CommandCall) -> Outbound:
        a: CancelArgs = call.args
        if a.order_id.lower() == "all":
            return await propose(deps, call, {"symbol": "*", "action": "cancel_all"})
        return await propose(deps, call, {"symbol": "*", "action": "cancel", "order_id": a.order_id})

    def order(action: str) -> Callable[[CommandCall], Awaitable[Outbound]]:
        async def handler(call: CommandCall) -> Outbound:
            a = call.args
            args: dict[str, Any] = {"symbol": getattr(a, "symbol", "*"), "action": action}
            if action == "open":
                args |= a.model_dump(exclude_none=True, exclude={"symbol"})
            if action == "close":
                args["close_pct"] = a.pct
            if action in ("set_stop", "set_take_profit"):
                args["price"] = a.price
            if getattr(a, "side", None):
                args["side"] = a.side
            return await propose(deps, call, args)

        return handler

    T = Permission.TRADER
    for c in (
        Command("long", "Open a long with a stop (asks for confirmation)", order("open"), EntryArgs, ENTRY_USAGE,
                "/long sol 0.1 stop auto", permission=T, parse=entry_parser("long")),
        Command("short", "Open a short with a stop (asks for confirmation)", order("open"), EntryArgs, ENTRY_USAGE,
                "/short btc 1% stop 97000 tp 93000,91000 lev 3", permission=T, parse=entry_parser("short")),
        Command("close", "Close all or part of a position (asks for confirmation)", order("close"), CloseArgs,
                "<symbol> [half|25%|all] [long|short]", "/close sol half", permission=T, parse=parse_close),
        Command("stop", "Set the stop of a position (asks for confirmation)", order("set_stop"), PriceArgs,
                "<symbol> <price> [long|short]", "/stop sol 140", permission=T, parse=parse_trigger),
        Command("tp", "Set the take-profit of a position (asks for confirmation)", order("set_take_profit"),
                PriceArgs, "<symbol> <price> [long|short]", "/tp sol 260", permission=T, parse=parse_trigger),
        Command("breakeven", "Move a position's stop to its entry (asks for confirmation)",
                order("move_stop_breakeven"), SideArgs, "<symbol> [long|short]", "/breakeven btc", permission=T,
                aliases=("be",)),
        Command("cancel", "Cancel an open order (asks for confirmation)", cancel, CancelArgs, "<order id|all>",
                "/cancel all", permission=T),
        Command("flatten", "Close every position in profit (one confirmation listing them)",
                order("flatten_winners"), permission=T),
        Command("closeall", "Close every open position (one confirmation listing them)", order("close_all"),
                permission=T),
        Command("cancelall", "Cancel every open order (one confirmation listing them)", order("cancel_all"),
                permission=T),
    ):
        reg.add(c)
