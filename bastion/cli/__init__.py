"""The `bastion` command line: one Typer app, one module per command group."""

from __future__ import annotations

from bastion.cli.root import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
