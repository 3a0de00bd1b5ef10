"""Commands about the bot itself: /start and /help, generated from the registry."""

from __future__ import annotations

from bot.core.commands.deps import CommandDeps
from bot.core.messages import Outbound
from bot.core.registry import Command, CommandCall, CommandRegistry


def register(reg: CommandRegistry, deps: CommandDeps) -> None:
    """Add /start and /help."""

    async def start(call: CommandCall) -> Outbound:
        name = call.inbound.display_name or "there"
        return Outbound(
            f"Hi {name}. I am Bastion: market structure, position risk and confirmed exits.\n"
            "Ask me anything in plain words, or use a command. Orders are only placed after you press Approve.\n"
            "`/connect paper` gives you a paper account to try everything safely.\n\n"
            + reg.help_text(call.permission)
        )

    async def help_(call: CommandCall) -> Outbound:
        return Outbound(reg.help_text(call.permission))

    reg.add(Command("start", "Welcome and the list of commands", start))
    reg.add(Command("help", "What I can do", help_))
