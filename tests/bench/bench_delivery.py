"""Benchmark: deliver 10,000 queued alerts to 500 chats through the outbox worker.

Run: .venv/bin/python tests/bench/bench_delivery.py
Checks (on the virtual clock the limits are enforced with): at most 30 messages in any second overall,
at least 1 s between two messages to one chat, zero losses, order kept per chat, a 429 storm included.
Prints the real time the worker needed and the virtual delivery time.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from bot.core.delivery import DeliveryWorker, RetryAfter  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import create_engine, session_factory  # noqa: E402
from storage.models import Outbox  # noqa: E402
from tests.bot.fakes import RecordingSender, VirtualClock  # noqa: E402

MESSAGES, CHATS = 10_000, 500


async def main() -> int:
    clock = VirtualClock()
    sender = RecordingSender(clock)
    for chat in range(0, CHATS, 25):  # every 25th chat gets a 429 storm on its first sends
        sender.script[str(10_000 + chat)] = [RetryAfter(5), RetryAfter(2)]
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'outbox.db'}")
        await migrate.upgrade(engine)
        sessions = session_factory(engine)
        rows = [
            {"platform": "telegram", "recipient": str(10_000 + i % CHATS), "payload": {"n": i // CHATS},
             "status": "pending", "attempts": 0, "next_attempt_at": clock.wall(), "created_at": clock.wall()}
            for i in range(MESSAGES)
        ]
        async with sessions.begin() as s:
            await s.execute(insert(Outbox), rows)
        worker = DeliveryWorker(sessions, {"telegram": sender}, clock=clock, sleep=clock.sleep, wall=clock.wall,
                                batch=MESSAGES)
        started, cpu = time.perf_counter(), time.process_time()
        stats = await worker.drain(wait_for_retries=True)
        real, cpu = time.perf_counter() - started, time.process_time() - cpu
        await engine.dispose()
    times = sorted(t for t, _, _ in sender.sent)
    worst_second = max(
        (sum(1 for _ in itertools.takewhile(lambda x, t0=t0: x < t0 + 1.0, times[i:])) for i, t0 in enumerate(times)),
        default=0,
    )
    by_chat: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for t, chat, payload in sender.sent:
        by_chat[chat].append((t, payload["n"]))
    min_gap = min(b[0] - a[0] for seq in by_chat.values() for a, b in itertools.pairwise(seq))
    in_order = all([n for _, n in seq] == sorted(n for _, n in seq) for seq in by_chat.values())
    lost = MESSAGES - len(sender.sent)
    print(f"delivered {len(sender.sent)}/{MESSAGES} to {len(by_chat)} chats, lost {lost}, "
          f"429 retries {stats.retried}, order kept per chat: {in_order}")
    print(f"max messages in any 1 s window: {worst_second} (limit 30); "
          f"min gap within a chat: {min_gap:.2f} s (limit 1)")
    print(f"virtual delivery time {clock.now:.0f} s (floor at 30 msg/s: {MESSAGES / 30:.0f} s); "
          f"worker real time {real:.1f} s, CPU {cpu:.1f} s ({MESSAGES / real:.0f} msg/s of bookkeeping)")
    ok = lost == 0 and worst_second <= 30 and min_gap >= 1.0 - 1e-9 and in_order
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
