"""The root Typer app: global options and the registration of every command module."""

from __future__ import annotations

import typer

from bastion import __version__
from bastion.cli import (
    analyze,
    backtest_cmd,
    chat_cmd,
    config_cmd,
    db_cmd,
    engine_cmd,
    keys_cmd,
    market,
    report_cmd,
    serve_cmd,
    size_cmd,
)

app = typer.Typer(
    name="bastion",
    help="Bastion — chat-first crypto trading assistant.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bastion {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Bastion command line."""


for module in (
    config_cmd,
    db_cmd,
    keys_cmd,
    engine_cmd,
    market,
    analyze,
    backtest_cmd,
    chat_cmd,
    serve_cmd,
    report_cmd,
    size_cmd,
):
    module.register(app)
