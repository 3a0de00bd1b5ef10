"""Risk-engine commands: the engine's check of a position and the kill switches of automated orders."""

from __future__ import annotations

from bot.core.commands.args import KillArgs, SymbolTfArgs
from bot.core.commands.deps import CommandDeps, read
from bot.core.messages import Outbound
from bot.core.registry import Command, CommandCall, CommandRegistry, Permission
from storage.repositories import audit
from storage.repositories import engine as engine_repo


def register(reg: CommandRegistry, deps: CommandDeps) -> None:
    """Add /risk, /kill and /killall."""

    async def kill_switch(call: CommandCall, scope: str) -> Outbound:
        killed = call.args.action == "on"
        async with deps.sessions.begin() as session:
            who = f"{call.inbound.platform}:{call.inbound.user_ref}"  # as people name users, not the row id
            await engine_repo.set_kill_switch(session, scope, killed, f"chat command by {who}")
            await audit.record(session, "kill_switch", user_id=call.user_id, data={"scope": scope, "killed": killed})
        shown = who if scope != engine_repo.GLOBAL else scope  # the user as people name them, not "user:<row id>"
        if killed:
            return Outbound(f"Kill switch {shown} ENGAGED: no automated orders until `/kill release`.")
        return Outbound(f"Kill switch {shown} released.")

    async def kill(call: CommandCall) -> Outbound:
        return await kill_switch(call, engine_repo.user_scope(call.user_id))

    async def killall(call: CommandCall) -> Outbound:
        return await kill_switch(call, engine_repo.GLOBAL)

    T = Permission.TRADER
    for c in (
        Command("risk", "Risk engine check of one of your positions", read(deps, "evaluate", private=True),
                SymbolTfArgs, "<symbol> [timeframe]", "/risk sol", permission=T),
        Command("kill", "Stop all automated orders on your accounts (/kill release undoes it)", kill, KillArgs,
                "[release]", permission=T),
        Command("killall", "Admin: stop automated orders for everyone", killall, KillArgs, "[release]",
                permission=Permission.ADMIN),
    ):
        reg.add(c)
