"""The root Typer app: global options; the commands come from `bastion.cli.lazy.COMMANDS`, loaded on use."""

from __future__ import annotations

import typer

from bastion import __version__
from bastion.cli.lazy import LazyGroup

app = typer.Typer(
    name="bastion",
    help="Bastion — chat-first crypto trading assistant.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=LazyGroup,  # each command's module is imported when it runs: `--version` and `--help` stay instant
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
