"""Composition root: builds the `Services` object from settings and hands it down (no global singletons)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bastion.logs import Redactor
from bastion.settings import Settings, split_keys
from storage.db import create_engine, session_factory
from storage.secrets import SecretBox


@dataclass
class Services:
    """Everything a command, channel or job needs, built once per process."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redactor: Redactor

    def secret_box(self) -> SecretBox:
        """The credential cipher; SecretsError with a clear message when BASTION_SECRET_KEYS is unset."""
        return SecretBox(split_keys(self.settings.secret_keys.get_secret_value()))


@asynccontextmanager
async def build_services(settings: Settings, redactor: Redactor | None = None) -> AsyncIterator[Services]:
    """Create the services for `settings` and release them on exit."""
    redactor = redactor or Redactor()
    redactor.register(*settings.secret_values())
    engine = create_engine(
        settings.database.url.get_secret_value(), echo=settings.database.echo, pool_size=settings.database.pool_size
    )
    try:
        yield Services(settings=settings, engine=engine, sessions=session_factory(engine), redactor=redactor)
    finally:
        await engine.dispose()
