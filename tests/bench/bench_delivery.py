"""Benchmark: deliver 10,000 queued alerts to 500 chats through the outbox worker.

Run: .venv/bin/python tests/bench/bench_delivery.py [--messages 10000] [--chats 500]
Checks (on the clock the limits are enforced with): at most 30 messages in any second overall, at least 1 s
between two messages to one chat, zero losses, order kept per chat, a 429 storm included.

The clock is the event loop's own (tests/fakes/virtual_time.py): real time plus the idle waits it skips, so
thirty chats waiting for the next second all wake one second later (the old clock added each sleeper's delay to
one shared time, thirty sleeps of a second moving it thirty seconds). Prints the worker's CPU per message, the
delivery time on that clock against the 30 msg/s floor, and the real time.
"""

from __future__ import annotations

import argparse
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
from tests.bot.fakes import RecordingSender  # noqa: E402
from tests.fakes import virtual_time  # noqa: E402


async def main(messages: int, chats: int) -> int:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, virtual_time.VirtualTimeLoop)
    sender = RecordingSender(loop.time)  # type: ignore[arg-type]  # stamps each request with the loop's clock
    for chat in range(0, chats, 25):  # every 25th chat gets a 429 storm on its first sends
        sender.script[str(10_000 + chat)] = [RetryAfter(5), RetryAfter(2)]
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'outbox.db'}")
        await migrate.upgrade(engine)
        sessions = session_factory(engine)
        rows = [
            {
                "platform": "telegram",
                "recipient": str(10_000 + i % chats),
                "payload": {"n": i // chats},
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": loop.wall(),
                "created_at": loop.wall(),
            }
            for i in range(messages)
        ]
        async with sessions.begin() as s:
            await s.execute(insert(Outbox), rows)
        worker = DeliveryWorker(sessions, {"telegram": sender}, clock=loop.time, wall=loop.wall, batch=messages)
        started, real_started, cpu = loop.time(), time.perf_counter(), time.process_time()
        stats = await worker.drain(wait_for_retries=True)
        elapsed, real, cpu = loop.time() - started, time.perf_counter() - real_started, time.process_time() - cpu
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
    lost = messages - len(sender.sent)
    print(
        f"delivered {len(sender.sent)}/{messages} to {len(by_chat)} chats, lost {lost}, "
        f"429 retries {stats.retried}, order kept per chat: {in_order}"
    )
    print(
        f"max messages in any 1 s window: {worst_second} (limit 30); min gap within a chat: {min_gap:.2f} s (limit 1)"
    )
    print(
        f"delivery time on the loop's clock {elapsed:.1f} s (floor at 30 msg/s: {messages / 30:.1f} s; "
        f"{loop.skipped_s:.1f} s of idle waits skipped in {loop.jumps} jumps); real time {real:.1f} s"
    )
    print(f"worker CPU {cpu:.2f} s: {1000 * cpu / max(1, len(sender.sent) + stats.retried):.2f} ms per request")
    ok = lost == 0 and worst_second <= 30 and min_gap >= 1.0 - 1e-9 and in_order
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--chats", type=int, default=500)
    args = parser.parse_args()
    raise SystemExit(virtual_time.run(main(args.messages, args.chats)))
