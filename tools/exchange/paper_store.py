"""Loading and saving the paper engine's state through the `storage.paper` tables."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from storage import paper as repo
from storage.types import utcnow
from tools.exchange.models import Order, OrderRole, OrderStatus, PlaceResult, PositionSide, Side
from tools.exchange.paper_engine import PaperConfig, PaperOrder, PaperPosition, PaperState


async def load_state(
    session: AsyncSession, account_id: str, config: PaperConfig, market_source: str | None = None
) -> PaperState:
    """The account's state for an update, locked until the transaction ends (created on first use, bound to
    `market_source`)."""
    row = await repo.lock_account(
        session,
        account_id,
        currency=config.currency,
        initial_balance=config.initial_balance,
        market_source=market_source,
    )
    positions = await repo.list_positions(session, account_id)
    orders = await repo.list_orders(session, account_id, status=OrderStatus.OPEN.value)
    return state_from_rows(row, positions, orders)


async def read_state(session: AsyncSession, account_id: str) -> PaperState | None:
    """The account's state for reading only (no lock), or None when the account was never used."""
    return (await load_states(session, [account_id])).get(account_id)


async def load_states(session: AsyncSession, account_ids: Sequence[str]) -> dict[str, PaperState]:
    """States of many existing accounts, for reading only, in three queries (the monitor reads hundreds per cycle)."""
    snapshots = await repo.read_snapshots(session, account_ids)
    return {i: state_from_rows(s.account, s.positions, s.open_orders) for i, s in snapshots.items()}


def state_from_rows(
    row: repo.PaperAccountRow | Row[Any],
    positions: Sequence[repo.PaperPositionRow | Row[Any]],
    orders: Sequence[repo.PaperOrderRow | Row[Any]],
) -> PaperState:
    """Build the engine's in-memory state from its stored rows (ORM objects, or the plain rows of a snapshot)."""
    state = PaperState(
        account_id=row.account_id,
        wallet=row.wallet_balance,
        realised=row.realised_pnl,
        fees=row.fees_paid,
        funding=row.funding_total,
        market_source=row.market_source,
        leverage={k: int(v) for k, v in json.loads(row.leverage_json).items()},
    )
    for p in positions:
        state.positions[p.symbol] = PaperPosition(
            p.symbol, PositionSide(p.side), p.size, p.entry_price, p.leverage, p.realised_pnl, p.funded_at
        )
    for o in orders:
        state.orders[o.id] = order_from_row(o)
    return state


def order_from_row(o: repo.PaperOrderRow | Row[Any]) -> PaperOrder:
    """The engine's order from its stored row."""
    return PaperOrder(
        id=o.id,
        client_order_id=o.client_order_id,
        intent_id=o.intent_id,
        symbol=o.symbol,
        side=Side(o.side),
        type=o.type,
        role=OrderRole(o.role),
        status=OrderStatus(o.status),
        amount=o.amount,
        price=o.price,
        trigger_price=o.trigger_price,
        reduce_only=o.reduce_only,
        leverage=o.leverage,
        created_at=o.created_at,
        filled=o.filled,
        average=o.average,
        fee=o.fee,
        expires_at=o.expires_at,
    )


async def save_state(session: AsyncSession, state: PaperState) -> None:
    """Write what the engine changed: wallet, touched positions and orders, new fills."""
    now = utcnow()
    row = await repo.get_account(session, state.account_id)  # the row `load_state` locked in this transaction
    assert row is not None
    row.wallet_balance, row.realised_pnl, row.fees_paid = state.wallet, state.realised, state.fees
    row.leverage_json = json.dumps(state.leverage, sort_keys=True)
    row.funding_total = state.funding
    row.market_source = row.market_source or state.market_source  # an account opened before binding is bound now
    row.updated_at = now
    existing = {p.symbol: p for p in await repo.list_positions(session, state.account_id)}
    for symbol in state.touched_positions:
        pos = state.positions.get(symbol)
        current = existing.get(symbol)
        if pos is None:
            if current is not None:
                await session.delete(current)
            continue
        if current is None:
            current = repo.PaperPositionRow(account_id=state.account_id, symbol=symbol, side=pos.side.value)
            session.add(current)
        current.side, current.size, current.entry_price = pos.side.value, pos.size, pos.entry
        current.leverage, current.realised_pnl, current.updated_at = pos.leverage, pos.realised, now
        current.funded_at = pos.funded_at
    await session.flush()  # a flipped position deletes then re-adds the same (account, symbol)
    for order_id in state.touched_orders:
        o = state.orders[order_id]
        stored = await session.get(repo.PaperOrderRow, order_id)
        if stored is None:
            stored = repo.PaperOrderRow(
                id=o.id,
                account_id=state.account_id,
                client_order_id=o.client_order_id,
                intent_id=o.intent_id,
                symbol=o.symbol,
                side=o.side.value,
                type=o.type,
                role=o.role.value,
                status=o.status.value,
                created_at=o.created_at,
            )
            session.add(stored)
        stored.status, stored.amount, stored.price = o.status.value, o.amount, o.price
        stored.trigger_price, stored.reduce_only, stored.leverage = o.trigger_price, o.reduce_only, o.leverage
        stored.filled, stored.average, stored.fee, stored.updated_at = o.filled, o.average, o.fee, now
        stored.expires_at = o.expires_at
    await session.flush()
    for f in state.fills:
        session.add(
            repo.PaperFillRow(
                account_id=state.account_id,
                order_id=f.order_id,
                symbol=f.symbol,
                side=f.side.value,
                amount=f.amount,
                price=f.price,
                fee=f.fee,
                realised_pnl=f.realised,
                liquidation=f.liquidation,
            )
        )
    for p in state.payments:
        session.add(
            repo.PaperFundingRow(
                account_id=state.account_id,
                symbol=p.symbol,
                funding_time=p.at,
                side=p.side.value,
                size=p.size,
                mark_price=p.mark,
                rate=p.rate,
                amount=p.amount,
            )
        )
    state.payments.clear()
    state.fills.clear()
    state.touched_orders.clear()
    state.touched_positions.clear()


def to_public_order(o: PaperOrder) -> Order:
    """The engine's order as the account API's Order."""
    return Order(
        id=o.id,
        client_order_id=o.client_order_id,
        symbol=o.symbol,
        side=o.side,
        type=o.type,
        status=o.status,
        amount=o.amount,
        filled=o.filled,
        price=o.price,
        average=o.average,
        trigger_price=o.trigger_price,
        reduce_only=o.reduce_only,
        role=o.role,
        fee=o.fee,
        timestamp=o.created_at,
    )


async def orders_by_id(session: AsyncSession, account_id: str, ids: list[str]) -> list[Order]:
    """Current state of the given orders, in the given order."""
    rows = {r.id: r for r in await repo.list_orders(session, account_id, ids=ids)}
    return [to_public_order(order_from_row(rows[i])) for i in ids if i in rows]


async def recorded_result(session: AsyncSession, account_id: str, intent_id: str) -> tuple[str, PlaceResult] | None:
    """(content hash, result) of an intent that already ran, with its orders refreshed."""
    row = await repo.get_intent(session, account_id, intent_id)
    if row is None:
        return None
    result = PlaceResult.model_validate_json(row.result_json)
    fresh = await orders_by_id(session, account_id, [o.id for o in result.orders])
    return row.content_hash, result.model_copy(update={"orders": fresh or result.orders, "duplicate": True})


def record_result(session: AsyncSession, account_id: str, content_hash: str, result: PlaceResult) -> None:
    """Remember what an intent produced (same transaction as its effects)."""
    session.add(
        repo.PaperIntentRow(
            account_id=account_id,
            intent_id=result.intent_id,
            content_hash=content_hash,
            result_json=result.model_dump_json(),
        )
    )


def zero_if_none(value: Decimal | None) -> Decimal:
    """Decimal(0) for None."""
    return value if value is not None else Decimal(0)
