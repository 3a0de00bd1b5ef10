"""Benchmark: 200 concurrent conversations x 5 turns through the analyst graph (offline model, SQLite checkpoints).

Run: `python tests/bench/bench_agent.py [--conversations 200] [--turns 5]` (pin cores with `taskset -c 0,1`).
Prints turns/s and p50/p99 latency per turn. Targets: p99 <= 150 ms, >= 100 turns/s on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agents.persistence import sqlite_persistence
from agents.state import TurnContext
from agents.wiring import build_chat
from bastion.app import build_services
from bastion.settings import Settings
from bot.console.adapter import ensure_console_user as ensure_user
from storage import migrate

TURNS = ("price btc", "levels eth 4h", "size btc entry 60000 stop 59000 risk 1%", "overview sol", "balance")


async def run(conversations: int, turns: int, think_s: float) -> None:
    """Drive the conversations concurrently and print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database={"url": f"sqlite+aiosqlite:///{tmp}/app.db", "checkpoint_path": Path(tmp) / "checkpoints.db"}
        )
        async with build_services(settings) as services, sqlite_persistence(Path(tmp) / "checkpoints.db") as p:
            await migrate.upgrade(services.engine)
            chat = build_chat(services, p)
            # One user (with their own paper account) per conversation, as in a real deployment.
            users = [await ensure_user(services.sessions, platform_user_id=f"bench-{i}") for i in range(conversations)]
            await chat.ask(TurnContext(users[0]), "warmup", "levels eth 4h")  # a running bot has a warm cache
            rng = random.Random(7)
            latencies: list[float] = []
            failures = 0

            async def conversation(i: int) -> None:
                nonlocal failures
                ctx = TurnContext(user_id=users[i])
                await asyncio.sleep(rng.uniform(0, think_s))  # people do not all press enter at once
                for t in range(turns):
                    if t:
                        await asyncio.sleep(rng.uniform(0.5 * think_s, 1.5 * think_s))
                    started = time.perf_counter()
                    reply = await chat.ask(ctx, f"bench-{i}", TURNS[(i + t) % len(TURNS)])
                    latencies.append(time.perf_counter() - started)
                    failures += not reply.text.startswith("[offline model]")

            started = time.perf_counter()
            await asyncio.gather(*(conversation(i) for i in range(conversations)))
            wall = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    print(
        f"conversations={conversations} turns/conversation={turns} think={think_s:g}s "
        f"total turns={len(latencies)} failures={failures}"
    )
    print(f"wall {wall:.2f} s  throughput {len(latencies) / wall:.1f} turns/s")
    print(f"latency p50 {1000 * q[49]:.1f} ms  p99 {1000 * q[98]:.1f} ms  max {1000 * max(latencies):.1f} ms")


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument(
        "--think", type=float, default=1.5, help="mean seconds between a user's turns (0 = closed loop)"
    )
    args = parser.parse_args()
    asyncio.run(run(args.conversations, args.turns, args.think))


if __name__ == "__main__":
    main()
