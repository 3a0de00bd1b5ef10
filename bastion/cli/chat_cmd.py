"""`bastion chat`: the console channel. For now it greets, lists the commands and exits cleanly on EOF."""

from __future__ import annotations

import sys

import typer
from typer.main import get_command

from bastion import __version__
from bastion.cli.common import settings_or_exit

EXIT_WORDS = frozenset({"exit", "quit", "/exit", "/quit"})


def command_lines(app: typer.Typer) -> list[str]:
    """One line per CLI command, generated from the app itself so the list is never written twice."""
    root = get_command(app)
    lines: list[str] = []
    for name, cmd in sorted(getattr(root, "commands", {}).items()):
        subs = getattr(cmd, "commands", None)
        if subs:
            for sub_name, sub in sorted(subs.items()):
                lines.append(f"  {f'bastion {name} {sub_name}':<26} {sub.get_short_help_str(80)}")
        else:
            lines.append(f"  {f'bastion {name}':<26} {cmd.get_short_help_str(80)}")
    return lines


def register(app: typer.Typer) -> None:
    """Add the `chat` command."""

    @app.command("chat")
    def chat() -> None:
        """Talk to Bastion in this terminal (offline defaults; Ctrl-D to leave)."""
        settings = settings_or_exit()
        market = "simulated market" if settings.exchange.market_data == "simulated" else settings.exchange.market_data
        typer.echo(f"Bastion {__version__} — console chat ({market}, {settings.exchange.default_id} exchange).")
        typer.echo("Type /help for the commands, Ctrl-D or 'exit' to leave.")
        help_lines = command_lines(app)
        for raw in sys.stdin:
            text = raw.strip()
            if not text:
                continue
            if text.lower() in EXIT_WORDS:
                break
            if text.lower() in {"/help", "help", "/start"}:
                typer.echo("\n".join(help_lines))
                continue
            typer.echo("Free-text analysis is not available in this build yet. The commands are:")
            typer.echo("\n".join(help_lines))
        typer.echo("Bye.")
