"""Credentials at rest: encrypted in the file and in SELECTs, rotatable, clear errors without secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import migrate
from storage.db import create_engine, session_factory
from storage.errors import ConflictError, StorageError
from storage.repositories import accounts
from storage.repositories.users import get_or_create_user
from storage.secrets import SecretBox, SecretsError

API_KEY = "AKIA-bastion-test-api-key-0123456789"
API_SECRET = "s3cr3t-value-that-must-never-leak-9876543210"


async def _add(sessions: async_sessionmaker[AsyncSession], box: SecretBox, label: str = "main") -> int:
    async with sessions.begin() as s:
        user = await get_or_create_user(s, "telegram", "42")
        assert user.id is not None
        acc = await accounts.add_account(
            s,
            box,
            user_id=user.id,
            exchange_id="bybit",
            label=label,
            credentials={"apiKey": API_KEY, "secret": API_SECRET},
        )
        assert acc.id is not None
        return acc.id


def test_round_trip_and_wrong_key() -> None:
    box = SecretBox([Fernet.generate_key().decode()])
    token = box.encrypt({"apiKey": API_KEY, "secret": API_SECRET})
    assert API_KEY not in token and API_SECRET not in token
    assert box.decrypt(token) == {"apiKey": API_KEY, "secret": API_SECRET}
    other_key = Fernet.generate_key().decode()
    with pytest.raises(SecretsError) as err:
        SecretBox([other_key]).decrypt(token)
    assert "cannot be decrypted" in str(err.value)
    assert token not in str(err.value) and other_key not in str(err.value)


def test_missing_and_malformed_keys_are_clear() -> None:
    with pytest.raises(SecretsError, match="BASTION_SECRET_KEYS is not set"):
        SecretBox([])
    with pytest.raises(SecretsError, match="key #2 is not a valid Fernet key") as err:
        SecretBox([Fernet.generate_key().decode(), "short-bad-key"])
    assert "short-bad-key" not in str(err.value)


def test_tampered_ciphertext_is_refused() -> None:
    box = SecretBox([Fernet.generate_key().decode()])
    token = box.encrypt({"apiKey": API_KEY})
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with pytest.raises(SecretsError):
        box.decrypt(tampered)


async def test_credentials_never_in_sqlite_file_bytes(tmp_path: Path) -> None:
    db_file = tmp_path / "raw.db"
    engine = create_engine(f"sqlite+aiosqlite:///{db_file}")
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    box = SecretBox([Fernet.generate_key().decode()])
    await _add(sessions, box)
    async with engine.connect() as conn:
        await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        rows = (await conn.execute(text("SELECT * FROM exchange_accounts"))).all()
    await engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("raw.db"))
    assert b"bybit" in raw  # the row is really there
    assert API_KEY.encode() not in raw and API_SECRET.encode() not in raw
    assert API_KEY not in repr(rows) and API_SECRET not in repr(rows)


async def test_plain_select_shows_only_ciphertext_and_rotation_keeps_rows_readable(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old_box = SecretBox([old_key])
    account_id = await _add(sessions, old_box, "a")
    await _add(sessions, old_box, "b")
    async with sessions() as s:
        raw = (await s.execute(text("SELECT credentials_encrypted FROM exchange_accounts"))).scalars().all()
    assert len(raw) == 2 and all(API_SECRET not in r and API_KEY not in r for r in raw)

    # Rotation: new key first, old key still present to read existing rows.
    rotating = SecretBox([new_key, old_key])
    async with sessions.begin() as s:
        assert await accounts.rotate_credentials(s, rotating) == 2
    # After rotation the old key can be retired: the new key alone reads every row.
    new_only = SecretBox([new_key])
    async with sessions() as s:
        for acc in await accounts.list_accounts(s):
            assert accounts.credentials_of(new_only, acc) == {"apiKey": API_KEY, "secret": API_SECRET}
            with pytest.raises(SecretsError):
                accounts.credentials_of(old_box, acc)
        assert any(a.id == account_id for a in await accounts.list_accounts(s))


async def test_rotation_without_the_old_key_changes_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    old_box = SecretBox([Fernet.generate_key().decode()])
    await _add(sessions, old_box)
    with pytest.raises(SecretsError):
        async with sessions.begin() as s:
            await accounts.rotate_credentials(s, SecretBox([Fernet.generate_key().decode()]))
    async with sessions() as s:
        (acc,) = await accounts.list_accounts(s)
        assert accounts.credentials_of(old_box, acc)["secret"] == API_SECRET


async def test_account_validation(sessions: async_sessionmaker[AsyncSession]) -> None:
    box = SecretBox([Fernet.generate_key().decode()])
    await _add(sessions, box)
    with pytest.raises(ConflictError, match="already have an account labelled 'main'"):
        await _add(sessions, box)
    async with sessions.begin() as s:
        user = await get_or_create_user(s, "telegram", "42")
        assert user.id is not None
        with pytest.raises(StorageError, match="okx needs apiKey, secret, password; missing: password"):
            await accounts.add_account(
                s, box, user_id=user.id, exchange_id="okx", label="x", credentials={"apiKey": "k", "secret": "s"}
            )
        with pytest.raises(StorageError, match="unknown exchange 'kraken'"):
            await accounts.add_account(s, box, user_id=user.id, exchange_id="kraken", label="y", credentials={})
        paper = await accounts.add_account(s, None, user_id=user.id, exchange_id="paper", label="p", credentials={})
        assert paper.credentials_encrypted is None and paper.read_only
