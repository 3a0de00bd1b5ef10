"""Round trip of every table, outbox semantics, race-free user creation — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import (
    AlertSubscription,
    Approval,
    AuditLog,
    Chat,
    ChatBinding,
    ExchangeAccount,
    Outbox,
    Report,
    RiskDecision,
    User,
)
from storage.repositories import audit, outbox
from storage.repositories.users import get_or_create_user

T0 = datetime(2026, 3, 1, 12, 30, 15, 123000, tzinfo=UTC)


async def test_round_trip_every_table(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as s:
        user = User(
            platform="telegram",
            platform_user_id="777",
            display_name="Ana",
            roles=["trader", "admin"],
            preferences={"risk_pct": 1.5, "watchlist": ["BTC", "SOL"]},
            created_at=T0,
            updated_at=T0,
        )
        chat = Chat(
            platform="telegram", platform_chat_id="-100123", kind="group", title="Desk", settings={"lang": "en"}
        )
        s.add_all([user, chat])
        await s.flush()
        assert user.id and chat.id
        account = ExchangeAccount(
            user_id=user.id,
            exchange_id="okx",
            label="main",
            credentials_encrypted="gAAAA...",
            mode="auto",
            read_only=False,
            sandbox=True,
        )
        s.add(account)
        await s.flush()
        assert account.id
        s.add_all(
            [
                ChatBinding(chat_id=chat.id, user_id=user.id, role="admin"),
                Approval(
                    token="tok-1",
                    owner_user_id=user.id,
                    account_id=account.id,
                    intent={"symbol": "BTC/USDT:USDT"},
                    intent_hash="ab" * 32,
                    summary="close 50%",
                    platform="telegram",
                    chat_ref="777",
                    message_ref="9",
                    created_at=T0,
                    expires_at=T0 + timedelta(minutes=5),
                    result={"order_id": "x1"},
                ),
                AuditLog(
                    kind="order_request", user_id=user.id, account_id=account.id, ref="cid-1", data={"qty": "0.5"}
                ),
                AlertSubscription(user_id=user.id, chat_id=chat.id, topic="market", symbol="BTC", quiet_hours=[22, 7]),
                Outbox(platform="telegram", recipient="777", user_id=user.id, payload={"text": "hi"}, dedup_key="d1"),
                Report(
                    symbol="BTC", timeframe="4h", bias="bullish", confidence=0.72, content={"levels": [1, 2]}, text="r"
                ),
                RiskDecision(
                    account_id=account.id,
                    symbol="SOL/USDT:USDT",
                    side="long",
                    action="TP_PARTIAL",
                    confidence=0.8,
                    reasoning="T1 reached",
                    close_pct=40.0,
                    new_stop=101.5,
                    source="merged",
                    context={"atr": 2.1},
                ),
            ]
        )

    async with sessions() as s:
        u = (await s.scalars(select(User))).one()
        assert (u.roles, u.preferences["watchlist"], u.created_at) == (["trader", "admin"], ["BTC", "SOL"], T0)
        assert u.created_at.tzinfo is not None
        assert (await s.scalars(select(Chat))).one().settings == {"lang": "en"}
        acc = (await s.scalars(select(ExchangeAccount))).one()
        assert (acc.mode, acc.read_only, acc.sandbox) == ("auto", False, True)
        assert (await s.scalars(select(ChatBinding))).one().role == "admin"
        ap = (await s.scalars(select(Approval))).one()
        assert (ap.expires_at - ap.created_at, ap.result, ap.status) == (
            timedelta(minutes=5),
            {"order_id": "x1"},
            "pending",
        )
        assert (await s.scalars(select(AuditLog))).one().data == {"qty": "0.5"}
        assert (await s.scalars(select(AlertSubscription))).one().quiet_hours == [22, 7]
        ob = (await s.scalars(select(Outbox))).one()
        assert (ob.payload, ob.status, ob.attempts) == ({"text": "hi"}, "pending", 0)
        assert (await s.scalars(select(Report))).one().content == {"levels": [1, 2]}
        rd = (await s.scalars(select(RiskDecision))).one()
        assert (rd.action, rd.close_pct, rd.new_stop) == ("TP_PARTIAL", 40.0, 101.5)


async def test_outbox_dedup_due_and_retry(sessions: async_sessionmaker[AsyncSession]) -> None:
    # Every step takes the test's clock: a slow machine must not move the retry time past the reads below.
    now = datetime.now(UTC)
    async with sessions.begin() as s:
        assert await outbox.enqueue(
            s, platform="telegram", recipient="1", payload={"n": 1}, dedup_key="alert:BTC:1", now=now
        )
        assert not await outbox.enqueue(
            s, platform="telegram", recipient="1", payload={"n": 2}, dedup_key="alert:BTC:1", now=now
        )
        assert await outbox.enqueue(s, platform="discord", recipient="2", payload={"n": 3}, now=now)
    async with sessions.begin() as s:
        rows = await outbox.due(s, now=now + timedelta(seconds=1))
        assert [r.payload["n"] for r in rows] == [1, 3]
        await outbox.mark_attempt_failed(
            s, rows[0].id or 0, "429 retry after 30", retry_after=timedelta(seconds=30), now=now
        )
        await outbox.mark_sent(s, rows[1].id or 0)
    async with sessions() as s:
        assert await outbox.due(s, now=now + timedelta(seconds=1)) == []
        (again,) = await outbox.due(s, now=now + timedelta(seconds=31))
        assert (again.attempts, again.last_error) == (1, "429 retry after 30")
    async with sessions.begin() as s:
        await outbox.mark_attempt_failed(s, again.id or 0, "403 blocked", retry_after=None)
    async with sessions() as s:
        assert await outbox.due(s, now=now + timedelta(days=1)) == []


async def test_concurrent_get_or_create_user_makes_one_row(sessions: async_sessionmaker[AsyncSession]) -> None:
    async def create() -> int:
        async with sessions.begin() as s:
            return (await get_or_create_user(s, "discord", "555")).id or 0

    ids = await asyncio.gather(*(create() for _ in range(10)))
    assert len(set(ids)) == 1
    async with sessions() as s:
        assert len((await s.scalars(select(User))).all()) == 1


async def test_audit_scrubs_credential_keys(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as s:
        await audit.record(s, "error", ref="r1", data={"params": {"apiKey": "AK123456", "qty": 1}, "secret": "zz"})
    async with sessions() as s:
        (entry,) = await audit.entries(s, ref="r1")
        assert entry.data == {"params": {"apiKey": "***", "qty": 1}, "secret": "***"}
