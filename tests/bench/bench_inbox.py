"""Benchmark: the durable webhook inbox alone on PostgreSQL: store, a short handler, mark, as webhook requests do.

Posts `--updates` updates, at most `--concurrency` at once (Telegram's max_connections), to one `WebhookInbox`
whose handler sleeps `--handler-ms`; prints wall time and this process's CPU per update (user + system), and the
statements (store and mark batches) and explicit transactions the stores and marks took.

Run: BASTION_TEST_POSTGRES_URL=postgresql+asyncpg://… python tests/bench/bench_inbox.py [--updates 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import event

from bot.api.inbox import WebhookInbox
from storage import migrate
from storage.db import create_engine, session_factory
from tests.conftest import PG_URL_VAR, fresh_postgres_database


class Sleeper:
    """A handler that takes `seconds` of wall time and no CPU."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def process(self, data: dict[str, Any]) -> None:
        await asyncio.sleep(self.seconds)

    def duplicate(self, update_id: int) -> None:
        pass


async def main(updates: int, concurrency: int, handler_ms: float) -> None:
    """One measurement on a fresh database."""
    if not os.environ.get(PG_URL_VAR):
        raise SystemExit(f"{PG_URL_VAR} must name a PostgreSQL server")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    async with fresh_postgres_database() as url:
        engine = create_engine(url, pool_size=20)
        await migrate.upgrade(engine)
        commits: list[int] = []
        event.listen(engine.sync_engine, "commit", lambda conn: commits.append(1))
        inbox = WebhookInbox(session_factory(engine), Sleeper(handler_ms / 1000), worker_id="bench")
        inbox.ready.set()
        gate = asyncio.Semaphore(concurrency)

        async def post(n: int) -> None:
            async with gate:
                await inbox.feed({"update_id": n})

        started, cpu = time.monotonic(), time.process_time()
        await asyncio.gather(*(post(n) for n in range(updates)))
        await inbox.drain()
        wall, used = time.monotonic() - started, time.process_time() - cpu
        await engine.dispose()
    # On PostgreSQL the stores and marks commit each by itself, outside any transaction a session would count.
    statements = inbox._stores.batches + inbox._marks.batches
    print(f"{updates} updates, {concurrency} at once: {wall:.2f} s wall, {1000 * used / updates:.2f} ms CPU per "
          f"update, {statements} store and mark statements ({statements / updates:.2f} per update), "
          f"{len(commits)} transactions ({len(commits) / updates:.2f} per update)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=40)
    parser.add_argument("--handler-ms", type=float, default=2.0)
    args = parser.parse_args()
    asyncio.run(main(args.updates, args.concurrency, args.handler_ms))
