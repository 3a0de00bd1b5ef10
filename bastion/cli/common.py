"""Shared plumbing of CLI commands: settings loading, async running, clean error exits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console
from sqlalchemy.exc import DBAPIError

from bastion.app import Services, build_services
from bastion.logs import configure_logging
from bastion.settings import Settings, SettingsError, load_settings
from storage.errors import StorageError
from storage.migrate import MigrationError
from storage.secrets import SecretsError
from tools.exchange.errors import AccountError
from tools.market.base import MarketDataError

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True, soft_wrap=True)
log = logging.getLogger("bastion.cli")

# Errors whose message is written for people: shown as is, no traceback.
USER_ERRORS: tuple[type[Exception], ...] = (StorageError, SecretsError, MigrationError, MarketDataError, AccountError)


def settings_or_exit() -> Settings:
    """Load settings and configure logging, or print what is wrong and exit with status 2."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        err_console.print(f"[red]{exc}[/red]", markup=True, highlight=False)
        raise typer.Exit(2) from None
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
