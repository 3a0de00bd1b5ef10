"""The `bastion` command line: one Typer app, one module per command group."""

from __future__ import annotations

import logging
import sys

from rich.console import Console

from bastion.cli.root import app


def main() -> None:
    """Console-script entry point: an error no command expected is still one line, never a traceback."""
    try:
        app()
    except Exception as exc:
        logging.getLogger("bastion.cli").debug("unexpected failure", exc_info=True)
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        Console(stderr=True, soft_wrap=True, highlight=False).print(
            f"Error: unexpected {type(exc).__name__}{': ' + detail if detail else ''}", markup=False
        )
        sys.exit(1)


__all__ = ["app", "main"]
