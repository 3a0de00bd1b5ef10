"""Benchmark: the Telegram channel end to end over real HTTP against the fake Bot API (offline model, SQLite).

1. Updates through PTB long polling → core → command or analyst → sendMessage, one phase per kind of message:
   read-only slash commands (`/price btc`) and free text (`price of sol?`). Closed loop: each user sends
   `--per-user` messages one after the other, waiting for each answer on the fake's events (no polling), all users
   at once. Prints updates/s, latency, updates per getUpdates round, and the bot's CPU per update: the process's
   CPU minus the fake server thread's and minus what the simulated users' own calls into the fake cost on this
   loop (each timed with the thread's CPU clock). Every user is new, so one update in `--per-user` is a first
   contact (the user's row created).
2. The same messages arriving at a steady rate whatever the answers (open loop, `--rate` slash commands per second,
   a third of that for free text), as real traffic arrives: one getUpdates round then brings several updates.
   The same figures; latency is each chat's k-th answer after its k-th message.
3. 10,000 queued alerts to 500 chats delivered by the outbox worker through the same bot with 429 storms:
   prints the highest number of messages in any one-second window, the smallest gap per chat, losses.
   At Telegram's 30 msg/s this phase takes about 6 minutes of real time (`--alerts` to shorten it).

Run: `python tests/bench/bench_telegram.py [--users 100] [--per-user 10] [--rate 100] [--alerts 10000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import itertools

from bot.core.messages import Outbound
from bot.core.notify import payload_of
from storage.repositories import outbox as outbox_repo
from tests.bot.telegram_harness import bot_settings, running, telegram_services
from tests.fakes.telegram_api import FakeTelegram, SentMessage

PHASES = {"read-only slash (/price btc)": "/price btc", "free text (price of sol?)": "price of sol?"}


async def updates_phase(fake: FakeTelegram, label: str, text: str, users: int, per_user: int, first: int) -> None:
    """Closed-loop users sending `text`; prints throughput, latency and the bot's CPU per update."""
    latencies: list[float] = []
    failures = 0
    users_cpu = 0.0  # CPU of the simulated users' calls into the fake (queueing an update copies it): not the bot's

    async def user(i: int) -> None:
        nonlocal failures, users_cpu
        chat = first + i
        for _ in range(per_user):
            before = fake.sent_count(chat)
            started = time.monotonic()
            sent_at = time.thread_time()
            fake.user_message(chat, chat, text)
            users_cpu += time.thread_time() - sent_at
            answered = functools.partial(lambda c, b: fake.sent_count(c) > b, chat, before)
            try:
                await fake.wait_for(answered, timeout=120, recheck_s=None, chat_id=chat)
            except AssertionError:
                failures += 1
                continue
            latencies.append(time.monotonic() - started)

    rounds = polls(fake)
    cpu, fake_cpu, started = time.process_time(), fake.cpu_s(), time.monotonic()
    await asyncio.gather(*(user(i) for i in range(users)))
    wall = time.monotonic() - started
    bot_cpu = (time.process_time() - cpu) - (fake.cpu_s() - fake_cpu) - users_cpu
    report(f"{label}: {users} users x {per_user}", latencies, failures, wall, bot_cpu, polls(fake) - rounds)


def polls(fake: FakeTelegram) -> int:
    """getUpdates calls the fake received so far (read outside the measured CPU)."""
    return sum(1 for c in list(fake.calls) if c.method == "getUpdates")


def report(title: str, latencies: list[float], failures: int, wall: float, bot_cpu: float, rounds: int) -> None:
    """The figures of one phase: throughput, CPU per update, updates per getUpdates round, latency."""
    q = statistics.quantiles(latencies, n=100)
    n = len(latencies)
    print(f"{title} = {n + failures} updates, answered {n}, failures {failures}")
    print(
        f"  wall {wall:.1f} s  {n / wall:.1f} updates/s  CPU {1000 * bot_cpu / max(1, n):.2f} ms per update "
        f"(bot process without the fake's thread and the users' calls)  {n / max(1, rounds):.1f} updates per "
        f"getUpdates round"
    )
    print(f"  latency p50 {1000 * q[49]:.0f} ms  p99 {1000 * q[98]:.0f} ms  max {1000 * max(latencies):.0f} ms")


async def arrivals_phase(
    fake: FakeTelegram, label: str, text: str, users: int, per_user: int, first: int, rate: float
) -> None:
    """Open loop: `users` x `per_user` messages arriving `rate` per second, round robin over the users, whatever
    the answers; prints the figures of `report`."""
    chats = [first + i for i in range(users)]
    total = users * per_user
    asked: dict[int, list[float]] = defaultdict(list)
    before = {chat: fake.sent_count(chat) for chat in chats}
    users_cpu = 0.0
    failures = 0
    rounds = polls(fake)
    cpu, fake_cpu, started = time.process_time(), fake.cpu_s(), time.monotonic()
    for n in range(total):
        delay = started + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # the arrival clock, not a look at the fake
        chat = chats[n % users]
        sent_at = time.thread_time()
        asked[chat].append(time.monotonic())
        fake.user_message(chat, chat, text)
        users_cpu += time.thread_time() - sent_at
    for chat in chats:  # one chat at a time: a waiter wakes on its own chat's calls only
        answered = functools.partial(lambda c, b: fake.sent_count(c) >= b, chat, before[chat] + per_user)
        try:
            await fake.wait_for(answered, timeout=120, recheck_s=None, chat_id=chat)
        except AssertionError:
            failures += per_user - (fake.sent_count(chat) - before[chat])
    bot_cpu = (time.process_time() - cpu) - (fake.cpu_s() - fake_cpu) - users_cpu
    latencies: list[float] = []
    last = started
    for chat in chats:
        answers = fake.sent(chat)[before[chat] :]
        latencies += [answer.at - at for answer, at in zip(answers, asked[chat], strict=False)]
        last = max([last, *(answer.at for answer in answers)])
    report(f"{label}, {rate:g}/s open loop: {users} users x {per_user}", latencies, failures, last - started,
           bot_cpu, polls(fake) - rounds)  # fmt: skip


async def delivery_phase(fake: FakeTelegram, run: object, alerts: int, chats: int) -> None:
    """Queue alerts, inject 429 storms, drain, and check limits from the API's own timestamps."""
    services = run.services  # type: ignore[attr-defined]
    first_chat = 900_000
    async with services.sessions.begin() as session:
        for i in range(alerts):
            chat = first_chat + i % chats
            await outbox_repo.enqueue(
                session, platform="telegram", recipient=str(chat), payload=payload_of(Outbound(f"alert {i}"))
            )

    async def storms() -> None:
        while True:
            await asyncio.sleep(20)
            fake.fail_next("sendMessage", status=429, retry_after=2, count=3)

    def delivered() -> list[SentMessage]:
        return [m for m in fake.sent() if m.chat_id >= first_chat]

    # The server's own delivery worker drains the outbox, as in production.
    base = fake.sent_count()
    storm = asyncio.create_task(storms())
    started = time.monotonic()
    with contextlib.suppress(AssertionError):
        await fake.wait_for(lambda: fake.sent_count() - base >= alerts, timeout=alerts / 20 + 120, recheck_s=None)
    await asyncio.sleep(2)  # anything sent twice would show up now
    wall = time.monotonic() - started
    storm.cancel()
    sent = delivered()
    retried = sum(1 for c in fake.calls if c.method == "sendMessage" and c.status == 429)
    per_second: dict[int, int] = defaultdict(int)
    by_chat: dict[int, list[float]] = defaultdict(list)
    for m in sent:
        per_second[int(m.at)] += 1
        by_chat[m.chat_id].append(m.at)
    gaps = [b - a for ts in by_chat.values() for a, b in itertools.pairwise(ts)]
    in_order = all(
        [int((m.text or "").split()[1]) for m in sent if m.chat_id == c]
        == sorted(int((m.text or "").split()[1]) for m in sent if m.chat_id == c)
        for c in list(by_chat)[:50]
    )
    print(
        f"delivery: {alerts} alerts to {chats} chats in {wall:.1f} s ({len(sent) / wall:.1f} msg/s); "
        f"delivered {len(sent)}, lost {alerts - len(set(m.text for m in sent))}, 429 answers {retried}"
    )
    # With fewer alerts than chats no chat gets two: there is no gap to show.
    gap = f"{min(gaps):.3f} s" if gaps else "n/a (no chat got two)"
    print(
        f"  max in any 1 s window {max(per_second.values(), default=0)} (limit 30), min gap per chat {gap} "
        f"(limit 1.0), order kept per chat: {in_order}"
    )


async def main(users: int, per_user: int, rate: float, alerts: int, chats: int) -> None:
    """All phases on one running bot."""
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeTelegram() as fake:
            settings = bot_settings(fake, f"sqlite+aiosqlite:///{tmp}/app.db", Path(tmp))
            settings.bot.rate_per_minute = 600  # the benchmark measures throughput, not the spam limit
            settings.bot.burst = 100
            async with telegram_services(settings) as services, running(services, fake) as run:
                for n, text in enumerate(PHASES.values()):  # the simulated market's first look generates history
                    await updates_phase(fake, f"warm-up {text!r}", text, min(users, 20), 2, 5_000 + 100 * n)
                for n, (label, text) in enumerate(PHASES.items()):
                    await updates_phase(fake, label, text, users, per_user, 10_000 + 100_000 * n)
                for n, (label, text) in enumerate(PHASES.items()):  # free text costs about three times more
                    phase_rate = rate if n == 0 else rate / 3
                    await arrivals_phase(fake, label, text, users, per_user, 50_000 + 100_000 * n, phase_rate)
                if alerts:
                    await delivery_phase(fake, run, alerts, chats)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--per-user", type=int, default=10)
    parser.add_argument("--rate", type=float, default=100.0, help="open-loop slash commands per second")
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--chats", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.users, args.per_user, args.rate, args.alerts, args.chats))
