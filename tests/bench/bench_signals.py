"""Benchmark of the signal webhook (plain script, not collected by pytest).

    .venv/bin/python tests/bench/bench_signals.py [--signals 100] [--subscribers 50] [--concurrency 8]

Signed TradingView-style signals posted through the real ASGI app (HMAC check, body limit, schema, replay
store, fan-out to `--subscribers` users of BTC) with a constant analysis, so the figure is the webhook's own
cost: wall and CPU per accepted signal and per queued outbox row; then every signal posted again, which must
all be refused as replays (409) with no row added. SQLite in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bot.api.app import create_app  # noqa: E402
from bot.api.signals import (  # noqa: E402
    SIGNAL_PATH,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignalService,
    sign,
    signals_router,
)
from storage import migrate  # noqa: E402
from storage.db import create_engine, session_factory  # noqa: E402
from storage.models import AlertSubscription, Outbox, User  # noqa: E402

SECRET = "bench-secret"


async def _analysis(symbol: str, timeframe: str) -> str:
    return f"{symbol} {timeframe}: constant analysis"


async def main(signals: int, subscribers: int, concurrency: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-signals-"))
    engine = create_engine(f"sqlite+aiosqlite:///{folder / 'bench.db'}")
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    async with sessions.begin() as s:
        for i in range(subscribers):
            user = User(platform="telegram", platform_user_id=str(10_000 + i))
            s.add(user)
            await s.flush()
            s.add(AlertSubscription(user_id=user.id, topic="technical", symbol="BTC"))

    async def ok() -> bool:
        return True

    service = SignalService(sessions, _analysis, frozenset({"telegram"}))
    app = create_app(database_ok=ok, routers=[signals_router(service, SECRET)])
    stamp = str(int(time.time()))
    bodies = [
        json.dumps({"symbol": "BTCUSDT", "side": "buy", "price": 60_000 + i, "timeframe": "1h"}).encode()
        for i in range(signals)
    ]
    gate = asyncio.Semaphore(concurrency)

    async def post(client: httpx.AsyncClient, body: bytes) -> int:
        headers = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: "sha256=" + sign(SECRET, stamp, body)}
        async with gate:
            return (await client.post(SIGNAL_PATH, content=body, headers=headers)).status_code

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        wall, cpu = time.perf_counter(), time.process_time()
        codes = await asyncio.gather(*(post(client, b) for b in bodies))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        async with sessions() as s:
            rows = int(await s.scalar(select(func.count()).select_from(Outbox)) or 0)
        again = await asyncio.gather(*(post(client, b) for b in bodies))
        async with sessions() as s:
            after = int(await s.scalar(select(func.count()).select_from(Outbox)) or 0)
    await engine.dispose()
    accepted = codes.count(202)
    print(f"signals: {signals}, subscribers: {subscribers}, concurrency: {concurrency}")
    print(f"accepted: {accepted}, outbox rows: {rows} (expected {signals * subscribers})")
    print(f"wall: {wall:.2f} s ({1000 * wall / signals:.1f} ms per signal, {signals / wall:.0f} signals/s)")
    print(f"CPU: {1000 * cpu / signals:.2f} ms per signal, {1e6 * cpu / max(1, rows):.0f} us per outbox row")
    print(f"replayed: {again.count(409)} of {signals} refused with 409, rows added: {after - rows}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--signals", type=int, default=100)
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    a = parser.parse_args()
    asyncio.run(main(a.signals, a.subscribers, a.concurrency))
