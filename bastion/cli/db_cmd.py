"""`bastion db upgrade | downgrade | current | prune`: Alembic migrations and retention of the application database."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta

import typer
from alembic.util import CommandError

from bastion.app import Services
from bastion.cli.common import console, run_with_services
from bastion.cli.output import JSON_OPTION, print_json
from storage import migrate
from storage.repositories import inbox as inbox_repo
from storage.repositories import outbox as outbox_repo
from storage.repositories import signal_nonces
from storage.types import utcnow


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
    def current(as_json: bool = JSON_OPTION) -> None:
        """Show the database's revision and the newest one this code ships."""

        async def go(services: Services) -> str | None:
            return await migrate.current(services.engine)

        rev = run_with_services(go)
        head = migrate.head_revision()
        if as_json:
            print_json(console, {"database": rev, "code": head, "up_to_date": rev == head})
            return
        state = "up to date" if rev == head else "needs `bastion db upgrade`"
        console.print(f"database: {rev or 'empty'}; code: {head} ({state})")

    @group.command("prune")
    def prune(
        days: int | None = typer.Option(
            None, "--older-than-days", min=1, help="Retention in days (default BASTION_DATABASE__RETENTION_DAYS)."
        ),
    ) -> None:
        """Delete what no longer serves: delivered outbox messages, handled webhook updates, old signal nonces."""

        async def go(services: Services) -> tuple[int, dict[str, int]]:
            keep = days or services.settings.database.retention_days
            cutoff = utcnow() - timedelta(days=keep)
            async with services.sessions.begin() as session:
                counts = {
                    "outbox messages (sent or failed)": await outbox_repo.prune(session, older_than=cutoff),
                    "webhook updates (handled)": await inbox_repo.prune(session, older_than=cutoff),
                    "signal nonces": await signal_nonces.prune(session, cutoff),
                }
            return keep, counts

        keep, counts = run_with_services(go)
        console.print(f"pruned rows older than {keep} days:")
        for what, n in counts.items():
            console.print(f"  {what}: {n}")
        console.print("conversation checkpoints: only the latest per thread is kept as each turn is written")

    app.add_typer(group, name="db")
