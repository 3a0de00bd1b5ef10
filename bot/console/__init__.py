"""Console channel: the analyst chat in a terminal (interactive or piped stdin)."""

from bot.console.adapter import ConsoleChat, ensure_console_user

__all__ = ["ConsoleChat", "ensure_console_user"]
