"""Benchmark of the alert cycle (plain script, not collected by pytest).

    .venv/bin/python tests/bench/bench_alerts.py [--data-dir DIR] [--users 100] [--rules 60] [--cycles 8]

On replayed real candles (BTC/ETH/SOL 1h, 2025-10-10 from 12:00, one cycle per 15 minutes) with `--users` users
opted in to market alerts and `--rules` confirmed rules spread over the three symbols (price against a level,
funding, volume): wall and CPU time per cycle and per evaluated rule, outbox rows queued, and the check that no
(condition, recipient) was queued twice within its cooldown. SQLite in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from agents.offline.intents import find_symbol  # noqa: E402
from engine.alerts.confirm import propose_rule  # noqa: E402
from engine.alerts.job import AlertJob  # noqa: E402
from engine.alerts.parse import parse_rule  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import create_engine, session_factory  # noqa: E402
from storage.models import Outbox  # noqa: E402
from storage.repositories import alerts as alerts_repo  # noqa: E402
from storage.repositories.users import get_or_create_user  # noqa: E402
from tools.market.replay import ReplayMarketData  # noqa: E402

TEMPLATES = (
    "tell me when {s} is above the 4h POC",
    "tell me when {s} volume is above 2x average, at most once every 2h",
    "tell me when {s} price below 100000 or funding above 0.05%",
    "tell me when {s} is below the 1h value area low",
)


async def main(args: argparse.Namespace) -> None:
    """Seed, run the cycles, print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp}/bench.db")
        await migrate.upgrade(engine)
        sessions = session_factory(engine)
        async with sessions.begin() as s:
            ids = []
            for i in range(args.users):
                user = await get_or_create_user(s, "telegram", str(10_000 + i), "u")
                assert user.id is not None
                ids.append(user.id)
                await alerts_repo.set_subscription(s, topic="market", enabled=True, user_id=user.id)
            for i in range(args.rules):
                symbol = ("BTC", "ETH", "SOL")[i % 3]
                spec = parse_rule(TEMPLATES[i % len(TEMPLATES)].format(s=symbol), find_symbol)
                owner = ids[i % len(ids)]
                rule, _ = await propose_rule(
                    s, user_id=owner, platform="telegram", chat_ref=str(owner), text="bench", spec=spec
                )
                assert rule.id is not None
                await alerts_repo.move_rule(s, rule.id, owner, to="active", only_from=("pending",))
        market = ReplayMarketData(args.data_dir)
        start = datetime(2025, 10, 10, 12, tzinfo=UTC)
        now = [start]
        job = AlertJob(sessions, market, clock=lambda: now[0])
        walls, cpus, queued = [], [], 0
        for c in range(args.cycles):
            now[0] = start + timedelta(minutes=15 * c)
            market.set_now(now[0])
            w0, c0 = time.perf_counter(), time.process_time()
            report = await job.run_cycle()
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
            queued += report.queued
            assert not report.errors, report.errors
        async with sessions() as s:
            keys = Counter(
                r.dedup_key.rsplit(":", 1)[0] for r in (await s.scalars(select(Outbox))).all() if r.dedup_key
            )
        await engine.dispose()
    n = args.cycles
    wall, cpu = sum(walls) / n, sum(cpus) / n
    print(f"users opted in {args.users}, confirmed rules {args.rules}, cycles {n} (15 min of replayed time apart)")
    print(
        f"per cycle: wall {wall * 1000:.1f} ms, CPU {cpu * 1000:.1f} ms; CPU per rule {cpu / args.rules * 1e6:.0f} us"
    )
    print(f"outbox rows queued {queued}; most rows for one (condition, recipient) key in the run: {max(keys.values())}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("BASTION_DATA_DIR", ROOT.parent / "shared/data/ohlcv"))
    )
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--rules", type=int, default=60)
    p.add_argument("--cycles", type=int, default=8)
    asyncio.run(main(p.parse_args()))
