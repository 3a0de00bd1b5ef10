"""The bot's slash commands, defined once by domain: arguments, help, permission and handler of each.

A command calls its tool with its validated arguments and renders the result (the offline model's renderers, so
answers read the same as in free text). Read-only commands never touch LangGraph or the checkpointer. Orders enter
the analyst graph at the risk check, then the approval interrupt. Each module adds its commands with
`register(registry, deps)`; the order here is the order of the help text and the platforms' menus.
"""

from __future__ import annotations

from bot.core.commands import account, admin, alerts, connect, engine, general, market, reports, sizing, trading
from bot.core.commands.deps import CommandDeps
from bot.core.registry import CommandRegistry

__all__ = ["CommandDeps", "build_registry"]

DOMAINS = (general, market, sizing, account, trading, connect, engine, alerts, admin, reports)


def build_registry(deps: CommandDeps) -> CommandRegistry:
    """Every command of the bot."""
    reg = CommandRegistry()
    for domain in DOMAINS:
        domain.register(reg, deps)
    return reg
