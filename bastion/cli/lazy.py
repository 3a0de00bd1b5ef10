"""A root command group that imports a command's module only when that command runs.

Importing every command module at start-up pulls in pandas, ccxt, LangGraph, openai and matplotlib: seconds
before `bastion --version` can answer. The root knows each command by name and one-line help (`COMMANDS`), shows
them in `--help` from that table, and imports a module when one of its commands is resolved to run (or asks for
its own `--help`). tests/test_cli_startup.py checks that the table says what the modules say.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer import _click  # typer's own click: its Context and Command are what TyperGroup's methods take
from typer.core import TyperCommand, TyperGroup

# Command name → (module of bastion.cli that registers it, one-line help shown by `bastion --help`).
COMMANDS: dict[str, tuple[str, str]] = {
    "price": ("market", "Show the last price, 24h change and spread of a symbol."),
    "candles": ("market", "Show the last candles of a symbol (live: the newest may still be forming)."),
    "analyze": ("analyze", "Market structure: levels, trendlines, volume profile, auto-support, stops and targets."),
    "size": ("size_cmd", "Position size from capital, risk % and stop distance (optional Kelly fraction)."),
    "montecarlo": (
        "size_cmd",
        "Monte Carlo of N trades at a fixed risk: return and drawdown distribution (50,000 paths).",
    ),
    "backtest": (
        "backtest_cmd",
        "Score exit decisions (rules engine, baselines, optionally a served model) on real candles.",
    ),
    "report": ("report_cmd", "Build a market-structure report now, store it, print it (and write it and its chart)."),
    "scan": ("report_cmd", "Run the elite scan over the watchlist, store it and print the top setups."),
    "chat": ("chat_cmd", "Talk to Bastion in this terminal (offline defaults; Ctrl-D to leave)."),
    "serve": (
        "serve_cmd",
        "Run the enabled channels (Telegram, Discord), the API, the position monitor and message delivery.",
    ),
    "config": ("config_cmd", "Inspect the configuration."),
    "db": ("db_cmd", "Database schema migrations."),
    "keys": ("keys_cmd", "Exchange accounts and their encrypted credentials."),
    "engine": ("engine_cmd", "Arm, disarm and stop automated execution; answer the monitor's proposals."),
    "risk": ("engine_cmd", "Ask the risk engine about a position."),
}


def load_module(name: str) -> TyperGroup:
    """The commands `bastion.cli.<name>` registers, as a click group."""
    module = importlib.import_module(f"bastion.cli.{name}")
    holder = typer.Typer()
    module.register(holder)
    return typer.main.get_group(holder)


class LazyGroup(TyperGroup):
    """The root group: commands from `COMMANDS`, each module imported on first use."""

    def list_commands(self, ctx: _click.Context) -> list[str]:
        """Every command, in the table's order."""
        return [*COMMANDS, *(n for n in self.commands if n not in COMMANDS)]

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        """The loaded command, else a stand-in carrying the table's help (enough for the root's `--help`)."""
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name in COMMANDS:
            # typer carries its own click: the stand-in must be its Command type, not the click package's.
            return TyperCommand(cmd_name, help=COMMANDS[cmd_name][1], short_help=COMMANDS[cmd_name][1])
        return None

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        """Import the module of the command about to run, then resolve as usual."""
        if args and args[0] in COMMANDS:
            self.load(args[0])
        return super().resolve_command(ctx, args)

    def load(self, cmd_name: str) -> None:
        """Import the module behind `cmd_name` and add all the commands it registers."""
        if cmd_name in self.commands:
            return
        for name, command in load_module(COMMANDS[cmd_name][0]).commands.items():
            self.add_command(command, name)

    def load_all(self) -> dict[str, _click.Command]:
        """Every command, imported (for listings that show sub-commands, e.g. the console's help)."""
        for name in COMMANDS:
            self.load(name)
        return dict(self.commands)


def loaded_commands(root: Any) -> dict[str, _click.Command]:
    """All commands of `root` (a LazyGroup loads them first)."""
    if isinstance(root, LazyGroup):
        return root.load_all()
    return dict(getattr(root, "commands", {}))
