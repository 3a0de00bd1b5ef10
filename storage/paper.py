"""Tables and repository functions of the paper exchange: balance, positions, orders, fills, intents."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel, col, select

from storage.repositories._dml import table_of
from storage.repositories._upsert import insert_ignore
from storage.types import UTCDateTime, utcnow


class DecimalText(TypeDecorator[Decimal]):
    """Exact decimals stored as text: SQLite has no exact numeric type, and the same column works on PostgreSQL."""

    impl = sa.String(64)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        """Plain (non-exponent) decimal text."""
        if value is None:
            return None
        return format(Decimal(value), "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        """Back to Decimal."""
        return None if value is None else Decimal(value)


def _money(nullable: bool = False) -> Any:
    return Field(default=None if nullable else Decimal(0), sa_column=sa.Column(DecimalText(), nullable=nullable))


def _when() -> Any:
    return Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))


class PaperAccountRow(SQLModel, table=True):
    """One paper account: its wallet (deposits + realised PnL - fees) and per-symbol leverage."""

    __tablename__ = "paper_accounts"

    account_id: str = Field(primary_key=True, max_length=128)
    currency: str = Field(default="USDT", max_length=16)
    initial_balance: Decimal = _money()
    wallet_balance: Decimal = _money()
    realised_pnl: Decimal = _money()
    fees_paid: Decimal = _money()
    leverage_json: str = Field(default="{}", description="symbol -> leverage for the next position")
    # The market data source (simulated | replay | live | ...) whose prices value this account; NULL = opened
    # before binding existed, bound on its next write.
    market_source: str | None = Field(default=None, max_length=32)
    funding_total: Decimal = _money()
    created_at: datetime = _when()
    updated_at: datetime = _when()


class PaperPositionRow(SQLModel, table=True):
    """An open paper position (one-way mode: at most one per account and symbol)."""

    __tablename__ = "paper_positions"
    __table_args__ = (sa.UniqueConstraint("account_id", "symbol", name="uq_paper_positions_account_symbol"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="paper_accounts.account_id", index=True, max_length=128)
    symbol: str = Field(max_length=64)
    side: str = Field(max_length=8)
    size: Decimal = _money()
    entry_price: Decimal = _money()
    leverage: int = 1
    realised_pnl: Decimal = _money()
    # The last funding mark (00:00, 08:00, 16:00 UTC) this position has been charged or paid for.
    funded_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    opened_at: datetime = _when()
    updated_at: datetime = _when()


class PaperOrderRow(SQLModel, table=True):
    """A paper order; the client order id (derived from the intent) is unique per account."""

    __tablename__ = "paper_orders"
    __table_args__ = (sa.UniqueConstraint("account_id", "client_order_id", name="uq_paper_orders_client_id"),)

    id: str = Field(primary_key=True, max_length=64)
    account_id: str = Field(foreign_key="paper_accounts.account_id", index=True, max_length=128)
    client_order_id: str = Field(max_length=64)
    intent_id: str = Field(max_length=128, index=True)
    symbol: str = Field(max_length=64)
    side: str = Field(max_length=8)
    type: str = Field(max_length=32)
    role: str = Field(max_length=16)
    status: str = Field(max_length=16, index=True)
    amount: Decimal | None = _money(nullable=True)
    price: Decimal | None = _money(nullable=True)
    trigger_price: Decimal | None = _money(nullable=True)
    reduce_only: bool = False
    leverage: int = 1
    filled: Decimal = _money()
    average: Decimal | None = _money(nullable=True)
    fee: Decimal = _money()
    # A resting limit entry still open at this (market) time is cancelled as expired.
    expires_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    created_at: datetime = _when()
    updated_at: datetime = _when()


class PaperFillRow(SQLModel, table=True):
    """One execution of a paper order, with the fee and the realised PnL it booked."""

    __tablename__ = "paper_fills"

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="paper_accounts.account_id", index=True, max_length=128)
    order_id: str = Field(foreign_key="paper_orders.id", index=True, max_length=64)
    symbol: str = Field(max_length=64)
    side: str = Field(max_length=8)
    amount: Decimal = _money()
    price: Decimal = _money()
    fee: Decimal = _money()
    realised_pnl: Decimal = _money()
    liquidation: bool = False
    created_at: datetime = _when()


class PaperFundingRow(SQLModel, table=True):
    """One funding payment at an 8 h mark: positive = received, negative = paid (the account's history)."""

    __tablename__ = "paper_funding"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "symbol", "funding_time", name="uq_paper_funding_account_symbol_time"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="paper_accounts.account_id", index=True, max_length=128)
    symbol: str = Field(max_length=64)
    funding_time: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    side: str = Field(max_length=8)
    size: Decimal = _money()
    mark_price: Decimal = _money()
    rate: Decimal = _money()
    amount: Decimal = _money()
    created_at: datetime = _when()


class PaperIntentRow(SQLModel, table=True):
    """Intent id -> what it produced, so the same intent placed twice returns the first result."""

    __tablename__ = "paper_intents"

    account_id: str = Field(foreign_key="paper_accounts.account_id", primary_key=True, max_length=128)
    intent_id: str = Field(primary_key=True, max_length=128)
    content_hash: str = Field(max_length=64)
    result_json: str
    created_at: datetime = _when()


async def list_funding(session: AsyncSession, account_id: str) -> Sequence[PaperFundingRow]:
    """Every funding payment of the account, oldest first."""
    query = select(PaperFundingRow).where(PaperFundingRow.account_id == account_id).order_by(sa.asc("id"))
    return (await session.execute(query)).scalars().all()


async def get_account(session: AsyncSession, account_id: str) -> PaperAccountRow | None:
    """The account row, or None."""
    return await session.get(PaperAccountRow, account_id)


# Read-only snapshots of accounts: Core selects built once, answered as plain rows (no identity map, no instance
# state). About half the CPU of the same reads through the ORM, and an account is read on every balance,
# position and monitor check. Rows read this way are never written back: updates go through `lock_account`.
_ACCOUNTS, _POSITIONS, _ORDERS = table_of(PaperAccountRow), table_of(PaperPositionRow), table_of(PaperOrderRow)
_OPEN = "open"  # OrderStatus.OPEN of the exchange models (the storage layer does not import them)


def _snapshot_reads(by: Callable[[sa.Column[Any]], sa.ColumnElement[bool]]) -> tuple[sa.Select[Any], ...]:
    """The three selects of a snapshot, for the accounts that `by` picks out of an account_id column."""
    return (
        sa.select(_ACCOUNTS).where(by(_ACCOUNTS.c.account_id)),
        sa.select(_POSITIONS).where(by(_POSITIONS.c.account_id)).order_by(_POSITIONS.c.id),
        sa.select(_ORDERS)
        .where(by(_ORDERS.c.account_id), _ORDERS.c.status == _OPEN)
        .order_by(_ORDERS.c.created_at, _ORDERS.c.id),
    )


# One account by equality: an expanding IN re-renders its SQL at every execution.
_READ_ONE = _snapshot_reads(lambda c: c == sa.bindparam("ids"))
_READ_MANY = _snapshot_reads(lambda c: c.in_(sa.bindparam("ids", expanding=True)))


@dataclass
class AccountSnapshot:
    """An account's row, open positions and open orders (oldest first), as read in one session."""

    account: sa.Row[Any]
    positions: list[sa.Row[Any]] = field(default_factory=list)
    open_orders: list[sa.Row[Any]] = field(default_factory=list)


async def read_snapshots(session: AsyncSession, account_ids: Sequence[str]) -> dict[str, AccountSnapshot]:
    """Snapshots of the existing accounts among `account_ids`, in three statements however many there are."""
    ids = list(account_ids)
    accounts, positions, orders = _READ_ONE if len(ids) == 1 else _READ_MANY
    params = {"ids": ids[0] if len(ids) == 1 else ids}
    found = {row.account_id: AccountSnapshot(row) for row in await session.execute(accounts, params)}
    if found:
        for row in await session.execute(positions, params):
            found[row.account_id].positions.append(row)
        for row in await session.execute(orders, params):
            found[row.account_id].open_orders.append(row)
    return found


async def lock_account(
    session: AsyncSession,
    account_id: str,
    *,
    currency: str,
    initial_balance: Decimal,
    market_source: str | None = None,
) -> PaperAccountRow:
    """The account row, created with `initial_balance` on first use, locked for writing until the transaction ends.

    PostgreSQL: a row lock (`SELECT ... FOR UPDATE`), so another process's update of the same account waits and
    then reads this one's result. SQLite: the write transaction (BEGIN IMMEDIATE) already holds the database.
    """
    now = utcnow()
    # Insert-or-ignore first: two processes creating the same account at once must not collide on the key.
    await insert_ignore(
        session,
        table_of(PaperAccountRow),
        {
            "account_id": account_id,
            "currency": currency,
            "initial_balance": initial_balance,
            "wallet_balance": initial_balance,
            "realised_pnl": Decimal(0),
            "fees_paid": Decimal(0),
            "leverage_json": "{}",
            "market_source": market_source,
            "funding_total": Decimal(0),
            "created_at": now,
            "updated_at": now,
        },
    )
    query = (
        select(PaperAccountRow)
        .where(PaperAccountRow.account_id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)  # the locked row's values, not a copy read before the lock
    )
    return (await session.scalars(query)).one()


async def list_positions(session: AsyncSession, account_id: str) -> Sequence[PaperPositionRow]:
    """Open positions of the account."""
    rows = await session.execute(select(PaperPositionRow).where(PaperPositionRow.account_id == account_id))
    return rows.scalars().all()


async def list_orders(
    session: AsyncSession, account_id: str, *, status: str | None = None, ids: Sequence[str] | None = None
) -> Sequence[PaperOrderRow]:
    """Orders of the account, optionally by status or ids, oldest first."""
    query = select(PaperOrderRow).where(PaperOrderRow.account_id == account_id)
    if status is not None:
        query = query.where(PaperOrderRow.status == status)
    if ids is not None:
        query = query.where(col(PaperOrderRow.id).in_(list(ids)))
    rows = await session.execute(query.order_by(sa.asc("created_at"), sa.asc("id")))
    return rows.scalars().all()


async def list_fills(session: AsyncSession, account_id: str) -> Sequence[PaperFillRow]:
    """Every fill of the account, oldest first."""
    query = select(PaperFillRow).where(PaperFillRow.account_id == account_id).order_by(sa.asc("id"))
    return (await session.execute(query)).scalars().all()


async def get_intent(session: AsyncSession, account_id: str, intent_id: str) -> PaperIntentRow | None:
    """The recorded result of an intent, or None when it never ran."""
    return await session.get(PaperIntentRow, (account_id, intent_id))


async def delete_position(session: AsyncSession, account_id: str, symbol: str) -> None:
    """Remove a closed position."""
    await session.execute(
        sa.delete(PaperPositionRow).where(
            col(PaperPositionRow.account_id) == account_id,
            col(PaperPositionRow.symbol) == symbol,
        )
    )
