"""Two `bastion serve` processes on one PostgreSQL, Telegram in webhook mode against the fake Bot API, at the size
of issue 15: 1,000 updates split across both (each posted twice), 2,000 outbox alerts under a 429 storm, the
position monitor every second on an armed auto-mode paper position whose rule fires, and a SIGKILL of the leader
mid-run. Exactly one leader at any time; the standby leads within seconds; nothing is lost; the firing rule acts
once over all cycles of both leaders; no message arrives twice except the killed worker's at-least-once window
(`inbox_concurrency` + `outbox_concurrency`); no calendar second carries more than 30 alerts to the fake; the jobs'
schedule survives the restart of the scheduler in the other process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col

from bastion.app import build_services
from bastion.settings import ApiSettings, BotSettings, DatabaseSettings, Settings
from engine.execution.executor import IN_FLIGHT
from storage import migrate
from storage.db import create_engine, session_factory
from storage.models import AccountMode, ExchangeAccount, Execution, Outbox, PositionPlan
from storage.paper import PaperOrderRow
from storage.repositories import accounts as accounts_repo
from storage.repositories import engine as engine_repo
from storage.repositories import users as users_repo
from storage.types import utcnow
from tests.bot.telegram_harness import free_port
from tests.bot.webhook_answer import telegram_makes_the_answered_call
from tests.fakes.telegram_api import FakeTelegram
from tools.exchange.models import IntentKind, OrderIntent, Side
from tools.exchange.paper import paper_account_key

SECRET = "scale-out-secret"
USERS = 1000  # one /price each: per-user rate limits never interfere
ALERTS = 2000  # two per chat to 1,000 chats: 67 s at Telegram's 30 messages/s
STORM = 30  # 429s (retry after 1 s) for the first sends of the delivery
MONITORED = 888  # the Telegram user whose armed auto-mode paper position the monitor watches
SYMBOL = "SOL/USDT:USDT"
# What a killed worker may repeat (Telegram cannot detect a repeat): the updates it had answered but not marked,
# and the alerts it had sent but not marked, each bounded by its slots.
KILL_WINDOW = ApiSettings().inbox_concurrency + BotSettings().outbox_concurrency


def _update(update_id: int, user: int) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "from": {"id": user, "is_bot": False, "first_name": "U"},
            "chat": {"id": user, "type": "private", "first_name": "U"},
            "date": int(time.time()),
            "text": "/price btc",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


async def _serve(fake: FakeTelegram, db_url: str, port: int, tmp: Path, **settings: str) -> asyncio.subprocess.Process:
    """A `bastion serve` process in webhook mode on the fake; `settings` adds or overrides BASTION_ variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env |= {
        "BASTION_DATABASE__URL": db_url,
        "BASTION_TELEGRAM__ENABLED": "true",
        "BASTION_TELEGRAM__TOKEN": fake.token,
        "BASTION_TELEGRAM__BASE_URL": fake.base_url,
        "BASTION_TELEGRAM__MODE": "webhook",
        "BASTION_TELEGRAM__WEBHOOK_URL": "https://bot.example.com/telegram/webhook",
        "BASTION_TELEGRAM__WEBHOOK_SECRET": SECRET,
        "BASTION_API__PORT": str(port),
        "BASTION_API__INBOX_LEASE_S": "8",
        "BASTION_BOT__OUTBOX_LEASE_S": "4",
        "BASTION_SCHEDULER__LEADER_CHECK_S": "0.5",
        "BASTION_SCHEDULER__MONITOR_INTERVAL_S": "5",
    }
    env |= settings
    tmp.mkdir(exist_ok=True)
    log = (tmp / "out.log").open("wb")
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bastion.cli", "serve", cwd=tmp, env=env, stdout=log, stderr=log
    )


async def _health(client: httpx.AsyncClient, port: int) -> dict[str, Any] | None:
    try:
        r = await client.get(f"http://127.0.0.1:{port}/health", timeout=2)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


async def _until(predicate: Any, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def _paper_account(session: AsyncSession, telegram_user: int) -> ExchangeAccount:
    user = await users_repo.get_or_create_user(session, "telegram", str(telegram_user))
    assert user.id is not None
    return await accounts_repo.add_account(
        session, None, user_id=user.id, exchange_id="paper", label="paper", credentials={}
    )


def _buy(intent_id: str, account_id: int, amount: int, leverage: int | None = None) -> OrderIntent:
    return OrderIntent(
        intent_id=intent_id,
        account_ref=f"account:{account_id}",
        symbol=SYMBOL,
        kind=IntentKind.OPEN,
        side=Side.BUY,
        amount=Decimal(amount),
        leverage=leverage,
    )


async def _claim_in_flight(sessions: async_sessionmaker[AsyncSession]) -> None:
    """An order a worker is placing right now (claimed, not yet answered by the exchange): no starting or leading
    worker may settle it before its in-flight window ends (the order may still arrive at the exchange)."""
    async with sessions.begin() as s:
        account = await _paper_account(s, 999)
        assert account.id is not None
        intent = _buy("in-flight-1", account.id, 1)
        claim = {"account_id": account.id, "symbol": SYMBOL, "action": "open", "intent": intent.model_dump(mode="json")}
        assert await engine_repo.claim_execution(s, intent_id=intent.intent_id, **claim)


async def _monitored_position(db_url: str) -> tuple[int, str]:
    """A 10 SOL long at 5x without a stop on an armed auto-mode paper account (on the simulated market `bastion
    serve` uses): the no-stop rule fires at every cycle (and the simulated structure may add a more protective
    one); the monitor must act on it once. Returns the account row id and the paper account's key."""
    settings = Settings(database=DatabaseSettings(url=SecretStr(db_url)), allowed_users=[f"telegram:{MONITORED}"])
    async with build_services(settings) as services:
        async with services.sessions.begin() as s:
            row = await _paper_account(s, MONITORED)
            assert row.id is not None
            row = await engine_repo.set_account_mode(s, row.id, mode=AccountMode.AUTO, armed=True)
        assert row.id is not None
        account_id = row.id
        account = await services.open_account(row)
        await account.place(_buy("seed-monitored", account_id, 10, leverage=5))
        position = (await account.positions(SYMBOL))[0]
        async with services.sessions.begin() as s:
            plan = PositionPlan(
                account_id=account_id,
                symbol=SYMBOL,
                side="long",
                entry=float(position.entry_price),
                initial_stop=None,
                stop=None,
                targets=[],
                opened_at=utcnow(),
            )
            await engine_repo.save_plan(s, plan)
        return account_id, paper_account_key(account_id, services.market)


def _serve_monitored(fake: FakeTelegram, db_url: str, port: int, tmp: Path) -> Any:
    """A worker of this test: the monitor every second, and the monitored trader allowed to trade (auto mode)."""
    return _serve(
        fake,
        db_url,
        port,
        tmp,
        BASTION_SCHEDULER__MONITOR_INTERVAL_S="1",
        BASTION_ALLOWED_USERS=f'["telegram:{MONITORED}"]',
    )


async def _enqueue_alerts(sessions: async_sessionmaker[AsyncSession]) -> None:
    now = utcnow()
    rows = [
        {
            "platform": "telegram",
            "recipient": str(700_000 + n % (ALERTS // 2)),
            "payload": {"text": f"alert {n}"},
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for n in range(ALERTS)
    ]
    async with sessions.begin() as s:
        await s.execute(insert(Outbox), rows)


async def _executions(sessions: async_sessionmaker[AsyncSession], account_id: int) -> list[Execution]:
    async with sessions() as s:
        found = await s.scalars(select(Execution).where(col(Execution.account_id) == account_id))
        return list(found.all())


async def _job_runs(engine: AsyncEngine) -> dict[str, float]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT id, next_run_time FROM apscheduler_jobs"))
        return {str(job): float(at) for job, at in rows}


def _monitor_cycles(tmp: Path) -> int:
    """Position-monitor runs finished, over the logs of every process of the test."""
    done = 0
    for log in tmp.glob("*/out.log"):
        for line in log.read_text(errors="replace").splitlines():
            done += 'Job "position-monitor' in line and "executed successfully" in line
    return done


@pytest.mark.postgres
async def test_two_serve_processes_one_leader_nothing_lost_or_doubled_across_a_sigkill(
    postgres_url: str, tmp_path: Path
) -> None:
    engine = create_engine(postgres_url)
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    await _claim_in_flight(sessions)
    claimed_at = time.monotonic()
    account_id, paper_key = await _monitored_position(postgres_url)
    ports = [free_port(), free_port()]
    procs: list[asyncio.subprocess.Process] = []
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    limits = httpx.Limits(max_connections=80)
    watcher: asyncio.Task[None] | None = None
    async with FakeTelegram() as fake, httpx.AsyncClient(limits=limits) as client:
        try:

            async def up(port: int) -> None:
                async def healthy() -> bool:
                    return await _health(client, port) is not None

                await _until(healthy, 90, f"worker on {port} up")

            for i, port in enumerate(ports):  # one after the other: the first creates the checkpoint tables
                procs.append(await _serve_monitored(fake, postgres_url, port, tmp_path / f"p{i}"))
                await up(port)

            async def leaders() -> list[bool]:
                return [bool((h or {}).get("leader")) for h in [await _health(client, p) for p in ports]]

            async def one_leader() -> bool:
                return sum(await leaders()) == 1

            await _until(one_leader, 15, "a leader")
            async with sessions() as s:  # the leader settled what was interrupted at the start of its term
                at_start = await engine_repo.get_execution(s, "in-flight-1")
            leader = (await leaders()).index(True)
            standby = 1 - leader
            samples: list[int] = []

            async def watch() -> None:  # exactly one leader at any time, kill and restart included (never two)
                while True:
                    samples.append(sum(await leaders()))
                    await asyncio.sleep(0.2)

            watcher = asyncio.create_task(watch())
            fake.fail_next("sendMessage", status=429, retry_after=1, count=STORM)
            await _enqueue_alerts(sessions)
            await fake.wait_for(lambda: sum(c.status == 429 for c in fake.calls) >= STORM, timeout=30)

            gate = asyncio.Semaphore(40)  # Telegram's default max_connections to one webhook

            async def post(port: int, update: dict[str, Any], seen: bool = True) -> int:
                """Post as Telegram does; its answer's call is made when Telegram `seen` the answer."""
                url = f"http://127.0.0.1:{port}/telegram/webhook"
                async with gate:
                    for attempt in range(3):  # Telegram retries too; the inbox drops the repeat
                        try:
                            response = await client.post(url, json=update, headers=headers, timeout=60)
                        except httpx.TransportError:  # a keep-alive connection the server closed under us
                            if attempt == 2:
                                raise
                            continue
                        if seen:
                            await telegram_makes_the_answered_call(client, fake.base_url, fake.token, response)
                        return response.status_code
                    raise AssertionError("unreachable")

            async def post_twice(numbers: range, targets: list[int]) -> None:
                # Split across the targets, each posted twice to different workers (Telegram's retries): Telegram
                # repeats an update whose first answer it never saw, so only the repeat's answer counts.
                first = [post(targets[n % 2], _update(n + 1, 500_000 + n), seen=False) for n in numbers]
                again = [post(targets[(n + 1) % 2], _update(n + 1, 500_000 + n)) for n in numbers]
                assert set(await asyncio.gather(*first, *again)) == {200}

            half = USERS // 2
            await post_twice(range(half), ports)

            async def acted() -> bool:
                return any(e.status == "done" for e in await _executions(sessions, account_id))

            await _until(acted, 60, "the monitor to act on the position")
            await fake.wait_for(lambda: fake.sent_count() >= half + 300, timeout=60)  # delivery under way
            schedule = await _job_runs(engine)

            procs[leader].send_signal(signal.SIGKILL)
            await procs[leader].wait()
            killed_at = time.monotonic()

            async def standby_leads() -> bool:
                return bool((await _health(client, ports[standby]) or {}).get("leader"))

            await _until(standby_leads, 30, "the standby to take over")
            takeover_s = time.monotonic() - killed_at
            cycles_at_kill = _monitor_cycles(tmp_path)
            await post_twice(range(half, USERS), [ports[standby]] * 2)  # the rest to the survivor, each twice

            def done() -> bool:
                if fake.sent_count() < ALERTS + USERS:
                    return False
                t = [m.plain or "" for m in fake.sent()]
                alerts = {x for x in t if x.startswith("alert ")}
                return len(alerts) == ALERTS and sum("BTC/USDT:USDT" in x for x in t) >= USERS

            await fake.wait_for(done, timeout=120, recheck_s=1.0)

            async def ten_cycles() -> bool:  # and some of them in the second leader
                return _monitor_cycles(tmp_path) >= max(10, cycles_at_kill + 3)

            await _until(ten_cycles, 30, "ten monitor cycles")
            await asyncio.sleep(1.0)  # a late duplicate would arrive by now
            after = await _job_runs(engine)
            async with sessions() as s:
                in_flight = await engine_repo.get_execution(s, "in-flight-1")
                finished_at = time.monotonic()
                paper = await s.scalars(select(PaperOrderRow).where(col(PaperOrderRow.account_id) == paper_key))
                orders = Counter(o.intent_id for o in paper)
                unsent = await s.scalar(select(func.count()).select_from(Outbox).where(col(Outbox.status) != "sent"))
            executions = await _executions(sessions, account_id)
        finally:
            if watcher is not None:
                watcher.cancel()
            for p in procs:
                if p.returncode is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    await asyncio.wait_for(p.wait(), 20)
                except TimeoutError:
                    p.kill()
            await engine.dispose()
    sent = fake.sent()
    alerts = Counter(m.plain for m in sent if (m.plain or "").startswith("alert "))
    answers = Counter(m.chat_id for m in sent if "BTC/USDT:USDT" in (m.plain or ""))
    assert len(alerts) == ALERTS, f"{ALERTS - len(alerts)} alerts lost"
    assert len(answers) == USERS, f"{USERS - len(answers)} updates lost"
    assert unsent == 0
    # The only repeats possible are messages the killed leader had answered or sent but not marked (Telegram
    # cannot tell); updates it had answered 200 are recovered from the inbox, and no retried update is answered.
    doubled_alerts = sum(c - 1 for c in alerts.values())
    doubled_answers = sum(c - 1 for c in answers.values())
    # The monitored trader's messages (what the monitor did), by text.
    doubled_others = sum(c - 1 for c in Counter((m.chat_id, m.plain) for m in sent if m.chat_id < 500_000).values())
    cycles = _monitor_cycles(tmp_path)
    per_second = Counter(  # arrivals in each calendar second, 429-answered ones included
        int(c.at)
        for c in fake.calls
        if c.method == "sendMessage" and str(c.params.get("text", "")).startswith("alert ")
    )
    print(
        f"takeover {takeover_s:.1f}s after SIGKILL; sent twice from the kill window (bound {KILL_WINDOW}): "
        f"{doubled_alerts} alerts, {doubled_answers} answers, {doubled_others} others; "
        f"{cycles} monitor cycles ({cycles_at_kill} before the "
        f"kill); busiest second {max(per_second.values())} alerts; executions {[e.action for e in executions]}, "
        f"orders per intent {dict(orders)}"
    )
    assert doubled_alerts + doubled_answers + doubled_others <= KILL_WINDOW, "more repeats than the kill window"
    assert max(per_second.values()) <= 30, "more than 30 alerts reached Telegram in one calendar second"
    # The no-stop rule fires at every cycle of both leaders, and the simulated market (it moves with the clock) may
    # add a trail as price moves: each condition acted once over all cycles of both leaders. An intent id names its
    # condition (rule, action, stop or state), so no id twice, each placed its one order once, and no other orders
    # than those and the seeded entry's.
    assert executions and all((e.status, e.automated) == ("done", True) for e in executions), executions
    ids = [e.intent_id for e in executions]
    assert len(ids) == len(set(ids)), f"a condition acted twice: {ids}"
    assert set(orders) == {"seed-monitored", *ids}, orders
    assert all(orders[i] == 1 for i in ids), orders
    assert sum("no_stop_5x" in i for i in ids) <= 1, ids
    assert cycles >= 10 and cycles > cycles_at_kill  # cycles ran in both leaders
    assert takeover_s < 30
    assert samples and max(samples) == 1, "two leaders at once"
    assert at_start is not None and at_start.status == "pending"  # neither worker settled it at start
    if finished_at - claimed_at < IN_FLIGHT.total_seconds():  # on a slow machine its window may have ended
        assert in_flight is not None and in_flight.status == "pending"
    leader_jobs = {"approval-expiry", "position-monitor", "inbox-prune", "settle-interrupted", "alerts"}
    assert {f"bastion:{name}" for name in leader_jobs} <= set(after)
    # The five-minute alert job kept its stored next run through the SIGKILL, the takeover and the restart.
    assert after["bastion:alerts"] == schedule["bastion:alerts"]
