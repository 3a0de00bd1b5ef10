"""Per-user rate limits across workers: on PostgreSQL every worker draws from one bucket per user in the database.

Each worker here is its own `BucketStore` (its own engine and connection), as two `bastion serve` processes are.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from bastion.app import build_services
from bastion.serve import open_server
from bastion.settings import Settings
from bot.core.messages import ButtonPress
from bot.core.userlimit import SharedUserRateLimiter, UserRateLimiter, polite_message, user_limiter
from bot.scheduler import _HANDLERS
from storage.models import RateBucket
from storage.repositories.rate_buckets import KEY_LENGTH, BucketState, BucketStore
from tests.bot.telegram_harness import ALICE, telegram_services
from tests.bot.test_core import RecordingReplier, said

ON_POSTGRES = pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
# Only this test's database: other tests run beside it on the same server.
DROP_OTHER_CONNECTIONS = text(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def _url(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
async def stores(engine: AsyncEngine) -> AsyncIterator[list[BucketStore]]:
    """Two workers' bucket stores on one migrated PostgreSQL database."""
    both = [BucketStore(_url(engine)) for _ in range(2)]
    try:
        yield both
    finally:
        for store in both:
            await store.close()


async def _stored(engine: AsyncEngine) -> dict[str, tuple[float, int]]:
    async with engine.connect() as conn:
        columns = (col(RateBucket.bucket_key), col(RateBucket.tokens), col(RateBucket.refusals))
        rows = (await conn.execute(select(*columns))).all()
    return {key: (tokens, refusals) for key, tokens, refusals in rows}


@ON_POSTGRES
async def test_a_burst_split_across_two_workers_is_refused_after_burst_in_total(stores: list[BucketStore]) -> None:
    a, b = stores
    states = [await (a if i % 2 else b).take("telegram:1", burst=3, per_second=0.1, now=T0) for i in range(6)]
    assert [s.refusals for s in states] == [0, 0, 0, 1, 2, 3]  # 3 allowed in all, not 3 per worker
    assert [s.tokens for s in states[:3]] == [2.0, 1.0, 0.0]
    other = await a.take("telegram:2", burst=3, per_second=0.1, now=T0)
    assert other == BucketState(tokens=2.0, refusals=0)  # each user has their own bucket
    long_a, long_b = "discord:" + "a" * KEY_LENGTH, "discord:" + "a" * (KEY_LENGTH - 1) + "b"  # kept by digest
    assert [
        (await w.take(k, burst=1, per_second=0.1)).refusals for w, k in ((a, long_a), (b, long_a), (b, long_b))
    ] == [
        0,
        1,
        0,
    ]


@ON_POSTGRES
async def test_refill_follows_the_time_between_checks_capped_at_the_burst(
    stores: list[BucketStore], engine: AsyncEngine
) -> None:
    a, b = stores
    for _ in range(3):
        await a.take("u", burst=3, per_second=0.1, now=T0)
    half = await b.take("u", burst=3, per_second=0.1, now=T0 + timedelta(seconds=5))
    assert half.refusals != 0 and half.tokens == pytest.approx(0.5)  # half a token is not one
    due = await a.take("u", burst=3, per_second=0.1, now=T0 + timedelta(seconds=10))
    assert due.refusals == 0 and due.tokens == pytest.approx(0.0, abs=1e-9)  # a token exactly due counts
    late = await b.take("u", burst=3, per_second=0.1, now=T0 + timedelta(hours=1))
    assert late == BucketState(tokens=2.0, refusals=0)  # full at most: an hour idle is a burst, not 360
    # A check stamped before the stored one (another worker's clock behind) neither refills nor moves time back.
    early = await a.take("u", burst=3, per_second=0.1, now=T0 + timedelta(minutes=59))
    assert early.tokens == pytest.approx(1.0)
    assert (await _stored(engine))["u"] == (pytest.approx(1.0), 0)


@ON_POSTGRES
async def test_concurrent_checks_on_two_workers_never_overdraw(stores: list[BucketStore]) -> None:
    checks = [stores[i % 2].take("telegram:1", burst=5, per_second=0.001) for i in range(24)]
    states = await asyncio.gather(*checks)
    assert sum(s.refusals == 0 for s in states) == 5
    assert sorted(s.refusals for s in states if s.refusals) == list(range(1, 20))  # one streak, counted once each


@ON_POSTGRES
async def test_concurrent_checks_go_together_and_each_takes_its_own_token(stores: list[BucketStore]) -> None:
    store = stores[0]
    await store.take("warm-up", burst=3, per_second=0.001, now=T0)  # connect outside the count
    before = store.statements
    # 30 users at once, three of them three times: as if one by one, in fewer statements than checks.
    keys = [f"telegram:{n}" for n in range(30)] + ["telegram:1", "telegram:2", "telegram:1", "telegram:2"] * 2
    states = await asyncio.gather(*(store.take(k, burst=3, per_second=0.001, now=T0) for k in keys))
    sent = store.statements - before
    assert sent < len(keys) // 2, sent
    by_key: dict[str, list[int]] = {}
    for key, state in zip(keys, states, strict=True):
        by_key.setdefault(key, []).append(state.refusals)
    assert by_key["telegram:1"] == by_key["telegram:2"] == [0, 0, 0, 1, 2]  # burst 3: then a streak of refusals
    assert all(refusals == [0] for key, refusals in by_key.items() if key not in ("telegram:1", "telegram:2"))
    one_by_one = [await stores[1].take("alone", burst=3, per_second=0.001, now=T0) for _ in range(5)]
    assert [s.refusals for s in one_by_one] == [0, 0, 0, 1, 2]


@ON_POSTGRES
async def test_two_workers_batches_over_the_same_users_in_opposite_orders_never_deadlock(
    stores: list[BucketStore],
) -> None:
    keys = [f"telegram:{n}" for n in range(40)]
    a, b = stores

    async def worker(store: BucketStore, order: list[str]) -> list[BucketState]:
        states: list[BucketState] = []
        for _ in range(4):  # several batches each, overlapping the other worker's
            states += await asyncio.gather(*(store.take(k, burst=2, per_second=0.001, now=T0) for k in order))
        return states

    done = await asyncio.wait_for(asyncio.gather(worker(a, keys), worker(b, keys[::-1])), 60)
    allowed = sum(s.refusals == 0 for states in done for s in states)
    assert allowed == 2 * len(keys)  # burst 2 per user across both workers, never overdrawn


@ON_POSTGRES
async def test_notice_once_per_streak_across_workers_and_refill_on_the_database_clock(
    stores: list[BucketStore],
) -> None:
    a, b = (SharedUserRateLimiter(store, rate_per_minute=60.0, burst=1) for store in stores)
    assert (await a.take("telegram:1")).allowed
    first = await b.take("telegram:1")
    # Over 0, not over 0.5: the bucket refills on the database's clock while b connects (a loaded machine, > 0.5 s).
    assert not first.allowed and first.notify and 0.0 < first.retry_after_s <= 1.0
    assert polite_message(first) == "You're sending messages quickly — please wait 1 s."
    again = [await w.take("telegram:1") for w in (a, b, a)]
    assert [(v.allowed, v.notify) for v in again] == [(False, False)] * 3  # the streak's notice was given once
    await asyncio.sleep(max(v.retry_after_s for v in again) + 0.05)
    assert (await b.take("telegram:1")).allowed  # refilled by the database's clock; the streak ends
    assert (await a.take("telegram:1")).notify  # a new streak gets its one notice


@ON_POSTGRES
async def test_two_servers_share_one_budget_for_messages_and_presses(engine: AsyncEngine, tmp_path: Path) -> None:
    """Through `bastion serve`'s wiring: two servers on one PostgreSQL; /help alternately, then a button press."""
    settings = Settings(
        database={"url": _url(engine), "checkpoint_path": tmp_path / "cp.db"},  # type: ignore[arg-type]
        allowed_users=[f"telegram:{ALICE}"],
        bot={"burst": 3, "rate_per_minute": 6},  # type: ignore[arg-type]
    )
    async with (
        telegram_services(settings) as one,
        build_services(settings) as two,
        open_server(one) as first,
        open_server(two) as second,
    ):
        assert isinstance(first.core.limiter, SharedUserRateLimiter)
        replier = RecordingReplier()
        for i in range(5):
            await (first, second)[i % 2].core.handle(said(ALICE, "/help"), replier)
        helps = [o for o in replier.sent if "**Commands**" in o.text]
        notices = [o for o in replier.sent if "please wait" in o.text.lower()]
        assert len(helps) == 3 and len(notices) == 1, [o.text[:40] for o in replier.sent]
        # 6 a minute: the next token in 10 s from the first check, so less the seconds the first four /help took
        # on the database's clock (a loaded machine may take more than one).
        wait_s = int(notices[0].text.split("please wait ")[1].split(" s")[0])
        assert 5 <= wait_s <= 10, notices[0].text
        press = ButtonPress("telegram", str(ALICE), str(ALICE), "1", "apv:nosuchtoken:1")
        pressed = RecordingReplier()
        await second.core.press(press, pressed)  # type: ignore[arg-type]
        assert pressed.answers == [] and pressed.sent == []  # dropped quietly: the streak was told already


@ON_POSTGRES
async def test_the_leaders_prune_job_deletes_buckets_full_again(engine: AsyncEngine, tmp_path: Path) -> None:
    settings = Settings(
        database={"url": _url(engine), "checkpoint_path": tmp_path / "cp.db"},  # type: ignore[arg-type]
        bot={"burst": 5, "rate_per_minute": 10},  # type: ignore[arg-type]  # full again 30 s after emptying
    )
    async with telegram_services(settings) as services, open_server(services) as server:
        limiter = server.core.limiter
        assert isinstance(limiter, SharedUserRateLimiter)
        now = datetime.now(UTC)
        await limiter.store.take("idle", burst=5, per_second=1 / 6, now=now - timedelta(seconds=31))
        # 15 s (not 25 s) before the test's now: the prune reads the database's later clock, so a 5 s margin to
        # the 30 s cutoff was not enough on a loaded machine.
        await limiter.store.take("recent", burst=5, per_second=1 / 6, now=now - timedelta(seconds=15))
        await limiter.take("telegram:1")
        jobs = server._jobs({})
        await _HANDLERS[(jobs.key, "rate-bucket-prune")]()
        assert set(await _stored(engine)) == {"recent", "telegram:1"}


@ON_POSTGRES
async def test_a_lost_connection_falls_back_per_worker_then_reconnects(
    stores: list[BucketStore], engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = (SharedUserRateLimiter(store, rate_per_minute=6.0, burst=3, retry_s=0.0) for store in stores)
    assert (await a.take("telegram:1")).allowed and (await b.take("telegram:1")).allowed
    async with engine.connect() as conn:  # the server drops the workers' connections (a restart, a proxy)
        await conn.execute(DROP_OTHER_CONNECTIONS)
        await conn.commit()
    with caplog.at_level(logging.WARNING, logger="bot.core.userlimit"):
        fallbacks = [await w.take("telegram:1") for w in (a, b)]
    assert all(v.allowed for v in fallbacks)  # each worker's own bucket answered: no message lost to the database
    assert caplog.text.count("database check failed") == 2
    assert (await _stored(engine))["telegram:1"][0] == pytest.approx(1.0, abs=0.1)  # those two were not counted
    assert (await b.take("telegram:1")).allowed  # reconnected: the shared bucket's last token
    refused = await a.take("telegram:1")
    assert not refused.allowed and refused.notify


async def test_an_unreachable_database_limits_per_worker_and_is_left_alone_meanwhile(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = BucketStore("postgresql+asyncpg://nobody@127.0.0.1:9/none", timeout_s=1.0)  # port 9: refused at once
    calls = 0
    real = store.take

    async def counted(*args: object, **kwargs: object) -> BucketState:
        nonlocal calls
        calls += 1
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    store.take = counted  # type: ignore[method-assign]
    limiter = SharedUserRateLimiter(store, rate_per_minute=6.0, burst=2, retry_s=60.0)
    try:
        with caplog.at_level(logging.WARNING, logger="bot.core.userlimit"):
            verdicts = [await limiter.take("telegram:1") for _ in range(4)]
    finally:
        await limiter.close()
    assert [v.allowed for v in verdicts] == [True, True, False, False]  # the per-worker bucket's semantics
    assert [v.notify for v in verdicts] == [False, False, True, False]
    assert calls == 1  # one failed check, then the database is left alone for retry_s
    assert caplog.text.count("database check failed") == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_sqlite_keeps_the_buckets_in_memory(engine: AsyncEngine, tmp_path: Path) -> None:
    settings = Settings(
        database={"url": _url(engine), "checkpoint_path": tmp_path / "cp.db"},  # type: ignore[arg-type]
        bot={"burst": 2, "rate_per_minute": 6},  # type: ignore[arg-type]
    )
    assert type(user_limiter(_url(engine), rate_per_minute=6, burst=2)) is UserRateLimiter
    async with telegram_services(settings) as services, open_server(services) as server:
        assert type(server.core.limiter) is UserRateLimiter
        replier = RecordingReplier()
        for _ in range(3):
            await server.core.handle(said(ALICE, "/help"), replier)
        assert sum("**Commands**" in o.text for o in replier.sent) == 2
        async with engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(RateBucket))).scalar() == 0
