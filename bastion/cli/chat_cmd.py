"""`bastion chat`: the console channel — the analyst graph in this terminal (interactive or piped stdin)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys

import typer
from typer.main import get_command

from bastion import __version__
from bastion.app import Services
from bastion.cli.common import run_with_services, settings_or_exit
from bastion.cli.lazy import loaded_commands
from storage import migrate

EXIT_WORDS = frozenset({"exit", "quit", "/exit", "/quit"})


def command_lines(app: typer.Typer) -> list[str]:
    """One line per CLI command, generated from the app itself so the list is never written twice."""
    lines: list[str] = []
    for name, cmd in sorted(loaded_commands(get_command(app)).items()):
        subs = getattr(cmd, "commands", None)
        if subs:
            for sub_name, sub in sorted(subs.items()):
                lines.append(f"  {f'bastion {name} {sub_name}':<26} {sub.get_short_help_str(80)}")
        else:
            lines.append(f"  {f'bastion {name}':<26} {cmd.get_short_help_str(80)}")
    return lines


async def ensure_schema(services: Services) -> None:
    """Bring an embedded SQLite database to the current schema (PostgreSQL is migrated deliberately)."""
    # An embedded SQLite file is brought to the current schema so `bastion chat` works with zero setup;
    # a shared PostgreSQL database is migrated deliberately with `bastion db upgrade`.
    if services.settings.database.is_sqlite and await migrate.current(services.engine) != migrate.head_revision():
        await migrate.upgrade(services.engine)


def register(app: typer.Typer) -> None:
    """Add the `chat` command."""

    @app.command("chat")
    def chat() -> None:
        """Talk to Bastion in this terminal (offline defaults; Ctrl-D to leave)."""
        from agents.offline.render import COMMANDS
        from agents.wiring import open_chat
        from bot.console import ConsoleChat, ensure_console_user
        from bot.console.adapter import interruptible_reads, line_reader
        from bot.core.approvals import ApprovalsService

        settings = settings_or_exit()
        market = "simulated market" if settings.exchange.market_data == "simulated" else settings.exchange.market_data
        model = "offline model" if settings.model.offline else f"model {settings.model.analyst_model}"
        typer.echo(
            f"Bastion {__version__} — console chat ({market}, {settings.exchange.default_id} exchange, {model})."
        )
        typer.echo("Type /help for the commands, Ctrl-D or 'exit' to leave.")
        from bastion.cli.root import app as root  # the whole CLI, not the holder this module registered into

        help_text = "\n".join([COMMANDS, "", "CLI commands:", *command_lines(root)])
        interactive = sys.stdin.isatty()

        def write(text: str) -> None:
            typer.echo(text)

        def prompt(text: str) -> None:
            typer.echo(text, nl=False)

        async def main(services: Services) -> None:
            await ensure_schema(services)
            user_id = await ensure_console_user(services.sessions)
            async with open_chat(services) as analyst:
                gc.collect()
                gc.freeze()  # the start-up heap is permanent; later collections need not walk it
                try:
                    console = ConsoleChat(analyst, user_id, write, help_text)
                    lines = line_reader(sys.stdin)
                    # Orders a killed run left behind are settled by client order id before anything else; another
                    # process (a running `serve` on the same database) gets its in-flight window to finish its own.
                    approvals = ApprovalsService(services.sessions, analyst, services.executor, services.open_account)
                    settled = await approvals.settle(older_than=services.executor.in_flight)
                    await console.settled(settled, lines, prompt if interactive else None)
                    await console.run(lines, prompt if interactive else None)
                finally:
                    gc.unfreeze()  # a chat run in a longer-lived process (the tests) leaves its collector as it was

        with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError), interruptible_reads():
            run_with_services(main, settings)
        typer.echo("Bye.")
