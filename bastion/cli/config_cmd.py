"""`bastion config show`: the effective settings, secrets masked."""

from __future__ import annotations

import json
from typing import Any

import typer
from pydantic import BaseModel, SecretStr

from bastion.cli.common import console, settings_or_exit
from bastion.cli.output import JSON_OPTION, Column, print_json, print_table
from bastion.settings import iter_env_vars

MASK = "**********"


def _value_at(settings: BaseModel, env_var: str) -> Any:
    node: Any = settings
    for part in env_var.removeprefix("BASTION_").lower().split("__"):
        node = getattr(node, part)
    return node


def masked(value: Any) -> Any:
    """Secrets as a fixed mask (empty ones as ""), everything else JSON-friendly."""
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return str(value)


def register(app: typer.Typer) -> None:
    """Add the `config` command group."""
    group = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)

    @group.command("show")
    def show(as_json: bool = JSON_OPTION) -> None:
        """Print every setting with its environment variable; secrets are masked."""
        settings = settings_or_exit()
        rows = [(var, masked(_value_at(settings, var))) for var, _ in iter_env_vars()]
        if as_json:
            print_json(console, dict(rows))
            return
        cells = [[var, json.dumps(value) if not isinstance(value, str) else value] for var, value in rows]
        print_table(console, [Column("variable", numeric=False), Column("value", numeric=False)], cells)

    app.add_typer(group, name="config")
