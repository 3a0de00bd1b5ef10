"""`bastion db upgrade | downgrade | current`: Alembic migrations of the application database."""

from __future__ import annotations

from collections.abc import Awaitable

import typer
from alembic.util import CommandError

from bastion.app import Services
from bastion.cli.common import console, run_with_services
from storage import migrate


async def _migrating(step: Awaitable[None], revision: str) -> None:
    """Run a migration step; an unknown revision becomes one clear MigrationError, not Alembic's traceback."""
    try:
        await step
    except CommandError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else "unknown revision"
        raise migrate.MigrationError(
            f"{detail}; use head, base, -1 or a revision id from `bastion db current`"
        ) from None


def register(app: typer.Typer) -> None:
    """Add the `db` command group."""
    group = typer.Typer(help="Database schema migrations.", no_args_is_help=True)

    @group.command("upgrade")
    def upgrade(revision: str = typer.Argument("head", help="Target revision (default: newest).")) -> None:
        """Create or update the schema (safe to run repeatedly)."""

        async def go(services: Services) -> str | None:
            await _migrating(migrate.upgrade(services.engine, revision), revision)
            return await migrate.current(services.engine)

        console.print(f"database at revision {run_with_services(go)}")

    @group.command("downgrade")
    def downgrade(
        revision: str = typer.Argument("-1", help="Target revision: -1 = one step back, base = empty."),
    ) -> None:
        """Undo migrations (base drops every table: data is lost)."""

        async def go(services: Services) -> str | None:
            await _migrating(migrate.downgrade(services.engine, revision), revision)
            return await migrate.current(services.engine)

        console.print(f"database at revision {run_with_services(go) or 'base (empty)'}")

    @group.command("current")
    def current() -> None:
        """Show the database's revision and the newest one this code ships."""

        async def go(services: Services) -> str | None:
            return await migrate.current(services.engine)

        rev = run_with_services(go)
        head = migrate.head_revision()
        state = "up to date" if rev == head else "needs `bastion db upgrade`"
        console.print(f"database: {rev or 'empty'}; code: {head} ({state})")

    app.add_typer(group, name="db")
