"""Approvals: one press wins, only the owner, only before expiry, only for the intent shown."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import Approval, ApprovalStatus
from storage.repositories import approvals
from storage.repositories.approvals import Outcome
from storage.repositories.users import get_or_create_user
from storage.types import utcnow

INTENT = {"kind": "close", "symbol": "SOL/USDT:USDT", "side": "sell", "close_pct": "50", "reduce_only": True}


async def _users(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    async with sessions.begin() as s:
        alice = await get_or_create_user(s, "telegram", "1001")
        bob = await get_or_create_user(s, "telegram", "1002")
        assert alice.id and bob.id
        return alice.id, bob.id


async def _approval(sessions: async_sessionmaker[AsyncSession], owner: int, ttl_s: float = 300) -> str:
    async with sessions.begin() as s:
        a = await approvals.create_approval(
            s, owner_user_id=owner, intent=INTENT, summary="EXIT 50% of SOL long", ttl=timedelta(seconds=ttl_s)
        )
        return a.token


async def test_twenty_concurrent_presses_exactly_one_wins(sessions: async_sessionmaker[AsyncSession]) -> None:
    alice, _ = await _users(sessions)
    token = await _approval(sessions, alice)
    start = asyncio.Event()

    async def press() -> Outcome:
        await start.wait()
        async with sessions.begin() as s:
            return (await approvals.consume_approval(s, token, alice)).outcome

    tasks = [asyncio.create_task(press()) for _ in range(20)]
    await asyncio.sleep(0)
    start.set()
    outcomes = await asyncio.gather(*tasks)
    assert outcomes.count(Outcome.OK) == 1
    assert outcomes.count(Outcome.ALREADY_DECIDED) == 19
    async with sessions() as s:
        row = await approvals.get_approval(s, token)
        assert row is not None and row.status == ApprovalStatus.CONSUMED and row.decided_at is not None


async def test_only_owner_can_press(sessions: async_sessionmaker[AsyncSession]) -> None:
    alice, bob = await _users(sessions)
    token = await _approval(sessions, alice)
    async with sessions.begin() as s:
        assert (await approvals.consume_approval(s, token, bob)).outcome is Outcome.NOT_OWNER
    async with sessions.begin() as s:
        assert (await approvals.reject_approval(s, token, bob)).outcome is Outcome.NOT_OWNER
    async with sessions.begin() as s:
        decision = await approvals.consume_approval(s, token, alice)
        assert decision.ok and decision.approval is not None
        assert decision.approval.intent == INTENT


async def test_expired_cannot_be_consumed_and_is_swept(sessions: async_sessionmaker[AsyncSession]) -> None:
    alice, _ = await _users(sessions)
    token = await _approval(sessions, alice, ttl_s=60)
    later = utcnow() + timedelta(seconds=61)
    async with sessions.begin() as s:
        assert (await approvals.consume_approval(s, token, alice, now=later)).outcome is Outcome.EXPIRED
    async with sessions.begin() as s:
        swept = await approvals.expire_approvals(s, now=later)
        assert [a.token for a in swept] == [token]
        assert swept[0].status == ApprovalStatus.EXPIRED
    async with sessions.begin() as s:
        assert await approvals.expire_approvals(s, now=later) == []
        assert (await approvals.consume_approval(s, token, alice)).outcome is Outcome.ALREADY_DECIDED


async def test_reject_then_consume_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    alice, _ = await _users(sessions)
    token = await _approval(sessions, alice)
    async with sessions.begin() as s:
        assert (await approvals.reject_approval(s, token, alice)).ok
    async with sessions.begin() as s:
        assert (await approvals.consume_approval(s, token, alice)).outcome is Outcome.ALREADY_DECIDED
        assert (await approvals.consume_approval(s, "no-such-token", alice)).outcome is Outcome.NOT_FOUND


async def test_tampered_intent_is_never_ok(sessions: async_sessionmaker[AsyncSession]) -> None:
    alice, _ = await _users(sessions)
    token = await _approval(sessions, alice)
    async with sessions.begin() as s:
        tampered = {**INTENT, "close_pct": "100"}
        await s.execute(update(Approval).where(Approval.token == token).values(intent=tampered))
    async with sessions.begin() as s:
        decision = await approvals.consume_approval(s, token, alice)
        assert decision.outcome is Outcome.INTENT_MISMATCH and not decision.ok
    async with sessions.begin() as s:
        # The token is spent: a second press cannot succeed either.
        assert (await approvals.consume_approval(s, token, alice)).outcome is Outcome.ALREADY_DECIDED


async def test_tokens_fit_telegram_callback_data(sessions: async_sessionmaker[AsyncSession]) -> None:
    alice, _ = await _users(sessions)
    tokens = {await _approval(sessions, alice) for _ in range(5)}
    assert len(tokens) == 5
    assert all(len(f"v1:{t}".encode()) <= 64 for t in tokens)


def test_intent_hash_is_canonical() -> None:
    assert approvals.intent_hash({"a": 1, "b": [1, 2]}) == approvals.intent_hash({"b": [1, 2], "a": 1})
    assert approvals.intent_hash({"a": 1}) != approvals.intent_hash({"a": 2})
