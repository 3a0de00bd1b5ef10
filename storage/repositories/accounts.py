"""Exchange accounts of a user; credentials go in and out only through the SecretBox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.errors import ConflictError, NotFoundError, StorageError
from storage.exchange_ids import NEEDS_PASSWORD, PAPER, SUPPORTED_EXCHANGES
from storage.models import AccountMode, ExchangeAccount
from storage.secrets import SecretBox
from storage.types import utcnow


def validate_credentials(exchange_id: str, credentials: dict[str, str]) -> dict[str, str]:
    """The credentials an exchange needs, stripped of blanks; StorageError naming what is missing."""
    if exchange_id not in SUPPORTED_EXCHANGES:
        raise StorageError(f"unknown exchange {exchange_id!r}; supported: {', '.join(SUPPORTED_EXCHANGES)}")
    clean = {k: v.strip() for k, v in credentials.items() if v and v.strip()}
    if exchange_id == PAPER:
        return {}
    required = ["apiKey", "secret"] + (["password"] if exchange_id in NEEDS_PASSWORD else [])
    missing = [k for k in required if k not in clean]
    if missing:
        raise StorageError(f"{exchange_id} needs {', '.join(required)}; missing: {', '.join(missing)}")
    return {k: clean[k] for k in required}


async def add_account(
    session: AsyncSession,
    box: SecretBox | None,
    *,
    user_id: int,
    exchange_id: str,
    label: str,
    credentials: dict[str, str],
    mode: AccountMode = AccountMode.ADVISE,
    sandbox: bool = False,
) -> ExchangeAccount:
    """Store a new read-only account with encrypted credentials (paper accounts need none)."""
    clean = validate_credentials(exchange_id, credentials)
    if not label.strip() or len(label) > 64:
        raise StorageError("the label must be 1-64 characters")
    if (await _by_label(session, user_id, label)) is not None:
        raise ConflictError(f"you already have an account labelled {label!r}")
    encrypted = None
    if clean:
        if box is None:
            raise StorageError("credentials cannot be stored: BASTION_SECRET_KEYS is not set")
        encrypted = box.encrypt(clean)
    account = ExchangeAccount(
        user_id=user_id,
        exchange_id=exchange_id,
        label=label.strip(),
        credentials_encrypted=encrypted,
        mode=mode.value,
        read_only=True,
        sandbox=sandbox,
    )
    session.add(account)
    await session.flush()
    return account


# Built once: every tool that reads an account lists the user's accounts first.
_ALL_ACCOUNTS = select(ExchangeAccount).order_by(col(ExchangeAccount.id))
_USER_ACCOUNTS = _ALL_ACCOUNTS.where(col(ExchangeAccount.user_id) == bindparam("user_id"))


async def list_accounts(session: AsyncSession, user_id: int | None = None) -> list[ExchangeAccount]:
    """Accounts of one user (or all), oldest first."""
    if user_id is None:
        return list((await session.scalars(_ALL_ACCOUNTS)).all())
    return list((await session.scalars(_USER_ACCOUNTS, {"user_id": user_id})).all())


async def get_account(session: AsyncSession, user_id: int, label: str) -> ExchangeAccount:
    """The user's account with this label; NotFoundError otherwise."""
    account = await _by_label(session, user_id, label)
    if account is None:
        raise NotFoundError(f"no account labelled {label!r}")
    return account


async def remove_account(session: AsyncSession, user_id: int, label: str) -> None:
    """Delete the user's account with this label (its credentials go with it)."""
    account = await get_account(session, user_id, label)
    await session.execute(delete(ExchangeAccount).where(col(ExchangeAccount.id) == account.id))


def credentials_of(box: SecretBox, account: ExchangeAccount) -> dict[str, Any]:
    """Decrypt an account's credentials at call time; never keep the result around."""
    if account.credentials_encrypted is None:
        return {}
    return box.decrypt(account.credentials_encrypted)


async def rotate_credentials(session: AsyncSession, box: SecretBox) -> int:
    """Re-encrypt every stored credential under the newest key; returns how many rows changed."""
    count = 0
    for account in await list_accounts(session):
        if account.credentials_encrypted is None:
            continue
        account.credentials_encrypted = box.rotate(account.credentials_encrypted)
        account.updated_at = utcnow()
        count += 1
    await session.flush()
    return count


async def _by_label(session: AsyncSession, user_id: int, label: str) -> ExchangeAccount | None:
    stmt = select(ExchangeAccount).where(col(ExchangeAccount.user_id) == user_id, col(ExchangeAccount.label) == label)
    return (await session.scalars(stmt)).first()
