"""Shared fixtures: migrated databases (SQLite and, when configured, a real PostgreSQL), real candle data."""

from __future__ import annotations

import os
import shutil
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import migrate
from storage.db import create_engine, session_factory

REPO_ROOT = Path(__file__).resolve().parents[1]
PG_URL_VAR = "BASTION_TEST_POSTGRES_URL"


def in_ci() -> bool:
    """True under CI, where skipping a real-server test is a failure, not an option."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def postgres_admin_url() -> str:
    """URL of the test PostgreSQL server; skips locally (fails in CI) when it is not configured."""
    url = os.environ.get(PG_URL_VAR, "")
    if not url:
        reason = f"{PG_URL_VAR} is not set: no PostgreSQL server to test against (.ci/run starts one)"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    return url


async def _admin(*statements: str) -> None:
    """Run `statements` on the test server's admin database (CREATE/DROP DATABASE cannot run in a transaction)."""
    import asyncpg

    dsn = make_url(postgres_admin_url()).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _database_url(name: str) -> str:
    """The asyncpg URL of database `name` on the test server."""
    admin = make_url(postgres_admin_url())
    return admin.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """Create an empty PostgreSQL database for one test and drop it afterwards."""
    name = f"bastion_test_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield _database_url(name)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database URL for one test."""
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file in the test's temporary folder."""
    return f"sqlite+aiosqlite:///{tmp_path / 'bastion.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database URL, once per backend: SQLite and a real PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bastion.db'}"
    else:
        async with fresh_postgres_database() as url:
            yield url


# Migrated once per run and copied per test: running every migration for each of ~180 tests cost a minute of CI.
# tests/storage/test_migrations.py still runs the migrations themselves on empty databases.
_SQLITE_TEMPLATE: list[Path] = []
_PG_TEMPLATE: list[str] = []


async def _migrated_sqlite(target: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    if not _SQLITE_TEMPLATE:
        template = tmp_path_factory.mktemp("sqlite-template") / "bastion.db"
        eng = create_engine(f"sqlite+aiosqlite:///{template}")
        await migrate.upgrade(eng)
        await eng.dispose()
        _SQLITE_TEMPLATE.append(template)
    shutil.copyfile(_SQLITE_TEMPLATE[0], target)


async def _migrated_postgres_template() -> str:
    """The name of a migrated PostgreSQL database that per-test databases are created from."""
    if not _PG_TEMPLATE:
        name = f"bastion_template_{uuid.uuid4().hex[:12]}"
        await _admin(f'CREATE DATABASE "{name}"')
        eng = create_engine(_database_url(name))
        await migrate.upgrade(eng)
        await eng.dispose()  # CREATE DATABASE ... TEMPLATE needs the template without connections
        _PG_TEMPLATE.append(name)
    return _PG_TEMPLATE[0]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Under pytest-xdist, refuse items that share a node id: the workers would run only one of them."""
    if not hasattr(session.config, "workerinput"):
        return
    twice = sorted(nodeid for nodeid, n in Counter(item.nodeid for item in session.items).items() if n > 1)
    if twice:
        raise pytest.UsageError(
            f"{len(twice)} node ids stand for several tests ({twice[0]}, ...): pytest-xdist would run one of each. "
            "Mark their module `pytestmark = pytest.mark.serial` (make test runs those in one process)."
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop the PostgreSQL template database of this run."""
    if _PG_TEMPLATE:
        import asyncio

        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{_PG_TEMPLATE[0]}" WITH (FORCE)'))


async def _recreate_from_template(url: str, template: str) -> None:
    """Replace the (empty, unused) database of `url` with a copy of `template`."""
    name = make_url(url).database
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


@pytest.fixture
async def engine(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncEngine]:
    """A migrated (schema at head) engine on each backend, on `db_url`: a copy of a database migrated once per run."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        await _migrated_sqlite(Path(url.database), tmp_path_factory)
    else:
        await _recreate_from_template(db_url, await _migrated_postgres_template())
    eng = create_engine(db_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Session factory on the migrated engine."""
    return session_factory(engine)


@pytest.fixture
def ohlcv_dir() -> Iterator[Path]:
    """The real Binance candles of ../shared/data/ohlcv (or BASTION_DATA_DIR); skips when absent."""
    path = Path(os.environ.get("BASTION_DATA_DIR", REPO_ROOT.parent / "shared" / "data" / "ohlcv"))
    if not (path / "BTC_USDT-1h.csv").exists():
        pytest.skip(f"real candle data not found at {path} (set BASTION_DATA_DIR or place ../shared/data)")
    yield path


@pytest.fixture(autouse=True)
def _venue_precisions_stay_in_their_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a venue's markets registers its ticks and steps process-wide: each test starts with none."""
    from tools import numbers

    for name in ("_TICKS", "_STEPS", "_MINIMUMS"):
        monkeypatch.setattr(numbers, name, {})
