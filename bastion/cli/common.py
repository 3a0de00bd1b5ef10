"""Shared plumbing of CLI commands: settings loading, async running, clean error exits."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import typing
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pydantic_settings
import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.exc import DBAPIError

from bastion.app import Services, build_services
from bastion.logs import configure_logging
from bastion.settings import ENV_PREFIX, Settings, SettingsError, iter_env_vars, load_settings
from storage.errors import StorageError
from storage.migrate import MigrationError
from storage.secrets import SecretsError
from tools.exchange.errors import AccountError
from tools.market.base import MarketDataError

T = TypeVar("T")

console = Console(soft_wrap=True)  # a line is one line in a pipe too (scripts grep it)
err_console = Console(stderr=True, soft_wrap=True)
log = logging.getLogger("bastion.cli")

# Errors whose message is written for people: shown as is, no traceback.
USER_ERRORS: tuple[type[Exception], ...] = (StorageError, SecretsError, MigrationError, MarketDataError, AccountError)


def read_settings() -> Settings:
    """`load_settings`, with a value the environment cannot even parse (bad JSON) reported like any bad setting."""
    try:
        return load_settings()
    except pydantic_settings.SettingsError as exc:
        raise SettingsError(unparsable_settings(exc)) from None


def unparsable_settings(exc: pydantic_settings.SettingsError) -> list[tuple[str, str]]:
    """(variable, problem) for a list/object setting whose value is not JSON (pydantic-settings names only the
    top-level field, e.g. "scheduler": the variables under it are checked to name the culprit)."""
    field = str(exc).split('"')[1] if str(exc).count('"') >= 2 else ""
    prefix = ENV_PREFIX + field.upper()
    env = {k.upper(): v for k, v in os.environ.items()}
    problems: list[tuple[str, str]] = []
    for var, info in iter_env_vars():
        if var != prefix and not var.startswith(prefix + "__"):
            continue
        container = typing.get_origin(info.annotation) or info.annotation
        raw = env.get(var)
        if raw is None or container not in (list, dict, set, tuple):
            continue
        try:
            json.loads(raw)
        except ValueError as err:
            example = '["telegram:123"]' if var.endswith("_USERS") else '["BTC", "ETH"]'
            if container is dict:
                example = '{"key": "value"}'
            problems.append((var, f"not valid JSON ({err}); write it as JSON, e.g. {example}"))
    return problems or [(prefix if field else ENV_PREFIX + "*", "cannot be parsed; list and object settings take JSON")]


def describe_settings_error(exc: SettingsError) -> str:
    """Every bad variable and its problem on one line."""
    return "invalid configuration: " + "; ".join(f"{var}: {msg}" for var, msg in exc.problems)


def settings_or_exit() -> Settings:
    """Load settings and configure logging, or print what is wrong (one line) and exit with status 2."""
    try:
        settings = read_settings()
    except SettingsError as exc:
        raise fail(describe_settings_error(exc), 2) from None
    configure_logging(settings.logging.level, settings.logging.format, settings.secret_values())
    return settings


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error for the operator and return the Exit to raise."""
    err_console.print(f"[red]Error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def describe_db_error(exc: DBAPIError) -> str:
    """A one-line explanation of a database failure, pointing at the likely fix."""
    detail = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
    if "no such table" in detail or ("does not exist" in detail and "relation" in detail):
        return f"the database schema is missing or outdated ({detail}); run `bastion db upgrade`"
    return f"database error: {detail}"


def run_with_services(fn: Callable[[Services], Awaitable[T]], settings: Settings | None = None) -> T:
    """Build services, run `fn` on one event loop, and turn user-facing errors into a clean exit."""
    settings = settings or settings_or_exit()

    async def runner() -> T:
        async with build_services(settings) as services:
            return await fn(services)

    try:
        return asyncio.run(runner())
    except USER_ERRORS as exc:
        raise fail(getattr(exc, "user_message", str(exc))) from None
    except DBAPIError as exc:
        log.debug("database failure", exc_info=True)
        raise fail(describe_db_error(exc)) from None
    except OSError as exc:
        # Database unreachable, disk full, permission denied: say which, keep the traceback in the log.
        log.debug("I/O failure", exc_info=True)
        raise fail(f"{type(exc).__name__}: {exc.strerror or exc}") from None
    except ValidationError as exc:
        # A value the command passed on was refused by a model: its first complaint, without pydantic's layout.
        log.debug("invalid value", exc_info=True)
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or exc.title
        raise fail(f"invalid {where}: {first['msg']}") from None
