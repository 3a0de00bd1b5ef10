"""Signal webhook: signed and shared-secret signals queue one alert per subscriber; tampered, stale, replayed,
oversized and malformed requests are refused with a clear message and change nothing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bastion.app import Services, build_services
from bot.api.app import create_app
from bot.api.metrics import Metrics
from bot.api.signals import (
    SECRET_HEADER,
    SIGNAL_PATH,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignalService,
    quiet_until,
    sign,
    signals_router,
    toolkit_analysis,
)
from storage import migrate
from storage.db import create_engine, session_factory
from storage.models import AlertSubscription, Chat, Outbox, SignalNonce, User
from tests.agents.conftest import make_settings
from tools.market.base import UnknownSymbolError

SECRET = "s3cret-signal-key"
SIGNAL = {"symbol": "BINANCE:BTCUSDT.P", "side": "buy", "price": 64250.5, "timeframe": "60", "message": "breakout"}


async def _quick_analysis(symbol: str, timeframe: str) -> str:
    if symbol.startswith("NOPE/"):
        raise UnknownSymbolError(symbol, [])
    return f"analysis of {symbol} on {timeframe}"


async def _subscribers(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as s:
        alice = User(platform="telegram", platform_user_id="111")
        bob = User(platform="telegram", platform_user_id="222")  # ETH only: hears nothing about BTC
        group = Chat(platform="telegram", platform_chat_id="-100500", kind="group")
        s.add_all([alice, bob, group])
        await s.flush()
        s.add_all(
            [
                AlertSubscription(user_id=alice.id, topic="technical", symbol="BTC"),
                AlertSubscription(user_id=alice.id, topic="market", symbol=None),  # twice subscribed: told once
                AlertSubscription(user_id=bob.id, topic="technical", symbol="ETH"),
                AlertSubscription(chat_id=group.id, topic="market", symbol=None),
            ]
        )


def _signed(body: bytes, stamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    ts = str(int(time.time()) if stamp is None else stamp)
    return {
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: f"sha256={sign(secret, ts, body)}",
        "content-type": "application/json",
    }


@asynccontextmanager
async def _api(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[tuple[httpx.AsyncClient, Metrics]]:
    await _subscribers(sessions)
    metrics = Metrics()
    service = SignalService(sessions, _quick_analysis, frozenset({"telegram"}))

    async def db_ok() -> bool:
        return True

    app = create_app(database_ok=db_ok, metrics=metrics, routers=[signals_router(service, SECRET, metrics)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bastion") as client:
        yield client, metrics


@pytest.fixture
async def lite(sqlite_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """SQLite only: the checks that do not depend on the database's concurrency."""
    engine = create_engine(sqlite_url)
    await migrate.upgrade(engine)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def api(lite: async_sessionmaker[AsyncSession]) -> AsyncIterator[tuple[httpx.AsyncClient, Metrics]]:
    async with _api(lite) as out:
        yield out


@pytest.fixture
async def api_db(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[tuple[httpx.AsyncClient, Metrics]]:
    """On SQLite and PostgreSQL: replay refusal must hold under each database's locking."""
    async with _api(sessions) as out:
        yield out


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> list[Outbox]:
    async with sessions() as s:
        return list((await s.scalars(select(Outbox).order_by(Outbox.id))).all())  # type: ignore[arg-type]


async def _nonces(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(SignalNonce)) or 0)


async def test_signed_signal_queues_one_alert_per_subscriber(
    api: tuple[httpx.AsyncClient, Metrics], lite: async_sessionmaker[AsyncSession]
) -> None:
    client, metrics = api
    body = json.dumps(SIGNAL).encode()
    r = await client.post(SIGNAL_PATH, content=body, headers=_signed(body))
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": True, "symbol": "BTC/USDT:USDT", "recipients": 2}
    rows = await _rows(lite)
    assert sorted(row.recipient for row in rows) == ["-100500", "111"]
    text = rows[0].payload["text"]
    assert text.startswith("**Signal: BTC/USDT:USDT LONG at 64250.5 (1h)**\nbreakout")
    assert "analysis of BTC/USDT:USDT on 1h" in text
    assert metrics.value("bastion_signals_total", {"outcome": "accepted"}) == 1


async def test_replayed_signal_is_refused_and_queues_nothing_more(
    api_db: tuple[httpx.AsyncClient, Metrics], sessions: async_sessionmaker[AsyncSession]
) -> None:
    client, metrics = api_db
    body = json.dumps(SIGNAL).encode()
    headers = _signed(body)
    assert (await client.post(SIGNAL_PATH, content=body, headers=headers)).status_code == 202
    again = await client.post(SIGNAL_PATH, content=body, headers=headers)
    assert again.status_code == 409 and "already accepted" in again.json()["detail"]
    assert len(await _rows(sessions)) == 2 and await _nonces(sessions) == 1
    assert metrics.value("bastion_signals_total", {"outcome": "replay"}) == 1


async def test_concurrent_copies_of_one_signal_are_accepted_once(
    api_db: tuple[httpx.AsyncClient, Metrics], sessions: async_sessionmaker[AsyncSession]
) -> None:
    client, _ = api_db
    body = json.dumps(SIGNAL).encode()
    headers = _signed(body)
    answers = await asyncio.gather(*(client.post(SIGNAL_PATH, content=body, headers=headers) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [202, 409, 409, 409]
    assert len(await _rows(sessions)) == 2


async def test_tampered_old_and_unsigned_requests_are_refused(
    api: tuple[httpx.AsyncClient, Metrics], lite: async_sessionmaker[AsyncSession]
) -> None:
    client, metrics = api
    body = json.dumps(SIGNAL).encode()
    tampered = body.replace(b"64250.5", b"1.0")
    r = await client.post(SIGNAL_PATH, content=tampered, headers=_signed(body))
    assert r.status_code == 401 and "does not match" in r.json()["detail"]
    old = int(time.time()) - 301
    r = await client.post(SIGNAL_PATH, content=body, headers=_signed(body, stamp=old))
    assert r.status_code == 401 and "older than 300 s" in r.json()["detail"]
    future = int(time.time()) + 3600
    r = await client.post(SIGNAL_PATH, content=body, headers=_signed(body, stamp=future))
    assert r.status_code == 401 and "future" in r.json()["detail"]
    r = await client.post(SIGNAL_PATH, content=body, headers=_signed(body, secret="other"))
    assert r.status_code == 401
    r = await client.post(SIGNAL_PATH, content=body, headers={TIMESTAMP_HEADER: str(int(time.time()))})
    assert r.status_code == 401 and SIGNATURE_HEADER in r.json()["detail"]
    r = await client.post(SIGNAL_PATH, content=body, headers={SIGNATURE_HEADER: "sha256=00"})
    assert r.status_code == 401 and TIMESTAMP_HEADER in r.json()["detail"]
    assert await _rows(lite) == [] and await _nonces(lite) == 0
    assert metrics.value("bastion_signals_total", {"outcome": "signature"}) == 3


async def test_shared_secret_header_is_accepted_and_a_wrong_one_refused(
    api: tuple[httpx.AsyncClient, Metrics], lite: async_sessionmaker[AsyncSession]
) -> None:
    client, _ = api
    body = json.dumps(SIGNAL).encode()
    stamp = str(int(time.time()))
    r = await client.post(SIGNAL_PATH, content=body, headers={TIMESTAMP_HEADER: stamp, SECRET_HEADER: "nope"})
    assert r.status_code == 401 and "shared secret" in r.json()["detail"]
    r = await client.post(SIGNAL_PATH, content=body, headers={TIMESTAMP_HEADER: stamp, SECRET_HEADER: SECRET})
    assert r.status_code == 202
    replay = await client.post(SIGNAL_PATH, content=body, headers={TIMESTAMP_HEADER: stamp, SECRET_HEADER: SECRET})
    assert replay.status_code == 409  # same timestamp and body: the replay key is the same HMAC


async def test_oversized_not_json_and_wrong_schema_are_refused_with_the_reason(
    api: tuple[httpx.AsyncClient, Metrics], lite: async_sessionmaker[AsyncSession]
) -> None:
    client, _ = api
    big = json.dumps({**SIGNAL, "message": "x" * 20_000}).encode()
    r = await client.post(SIGNAL_PATH, content=big, headers=_signed(big))
    assert r.status_code == 413 and "over 16384 bytes" in r.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:  # no content-length: counted as it arrives
        for _ in range(20):
            yield b" " * 1024

    r = await client.post(SIGNAL_PATH, content=chunks(), headers=_signed(b""))
    assert r.status_code == 413
    junk = b"{not json"
    r = await client.post(SIGNAL_PATH, content=junk, headers=_signed(junk))
    assert r.status_code == 400 and r.json()["detail"] == "body is not JSON"
    cases = {
        "side": ({**SIGNAL, "side": "hodl"}, "side"),
        "price": ({**SIGNAL, "price": -5}, "price"),
        "timeframe": ({**SIGNAL, "timeframe": "7m"}, "timeframe must be one of"),
        "symbol": ({**SIGNAL, "symbol": "$$$"}, "is not a symbol"),
        "missing": ({k: v for k, v in SIGNAL.items() if k != "price"}, "price: Field required"),
        "extra": ({**SIGNAL, "leverage": 100}, "leverage: Extra inputs are not permitted"),
        "not an object": ([SIGNAL], "body"),
    }
    for name, (payload, expected) in cases.items():
        raw = json.dumps(payload).encode()
        r = await client.post(SIGNAL_PATH, content=raw, headers=_signed(raw))
        assert r.status_code == 422, name
        assert expected in r.json()["detail"], (name, r.json())
    assert await _rows(lite) == [] and await _nonces(lite) == 0


async def test_unknown_symbol_is_refused_before_anything_is_stored(
    api: tuple[httpx.AsyncClient, Metrics], lite: async_sessionmaker[AsyncSession]
) -> None:
    client, _ = api
    raw = json.dumps({**SIGNAL, "symbol": "NOPEUSDT"}).encode()
    r = await client.post(SIGNAL_PATH, content=raw, headers=_signed(raw))
    assert r.status_code == 422 and "NOPE" in r.json()["detail"]
    assert await _rows(lite) == [] and await _nonces(lite) == 0


async def test_without_a_secret_the_webhook_accepts_nothing(lite: async_sessionmaker[AsyncSession]) -> None:
    async def db_ok() -> bool:
        return True

    service = SignalService(lite, _quick_analysis, frozenset({"telegram"}))
    app = create_app(database_ok=db_ok, routers=[signals_router(service, "")])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as client:
        body = json.dumps(SIGNAL).encode()
        r = await client.post(SIGNAL_PATH, content=body, headers=_signed(body, secret=""))
    assert r.status_code == 503 and "BASTION_API__SIGNAL_SECRET" in r.json()["detail"]


def test_quiet_hours_defer_to_their_end() -> None:
    at = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    assert quiet_until([22, 7], at) == datetime(2026, 12, 2, 7, tzinfo=UTC)
    assert quiet_until([22, 7], at.replace(hour=3)) == datetime(2026, 12, 1, 7, tzinfo=UTC)
    assert quiet_until([22, 7], at.replace(hour=12)) is None
    assert quiet_until([1, 5], at.replace(hour=2)) == datetime(2026, 12, 1, 5, tzinfo=UTC)
    assert quiet_until(None, at) is None


async def test_a_signal_during_quiet_hours_waits_for_their_end(
    api: tuple[httpx.AsyncClient, Metrics], lite: async_sessionmaker[AsyncSession]
) -> None:
    client, _ = api
    hour = datetime.now(UTC).hour
    async with lite.begin() as s:
        alice = (await s.scalars(select(User).where(User.platform_user_id == "111"))).one()
        for sub in (await s.scalars(select(AlertSubscription).where(AlertSubscription.user_id == alice.id))).all():
            sub.quiet_hours = [hour, (hour + 2) % 24]  # two hours: the service reads its own clock, maybe past the hour
    body = json.dumps(SIGNAL).encode()
    assert (await client.post(SIGNAL_PATH, content=body, headers=_signed(body))).status_code == 202
    by = {row.recipient: row for row in await _rows(lite)}
    assert by["111"].next_attempt_at > datetime.now(UTC)  # deferred to the end of the quiet hour
    assert by["-100500"].next_attempt_at <= datetime.now(UTC)  # the group has no quiet hours


@pytest.fixture
async def services(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    async with build_services(make_settings(sqlite_url, tmp_path)) as svc:
        await migrate.upgrade(svc.engine)
        yield svc


async def test_signal_carries_the_real_analysis_of_the_symbol(services: Services) -> None:
    """End to end with the deterministic /analyze answer on the simulated market."""
    from agents.wiring import build_toolkit

    await _subscribers(services.sessions)
    service = SignalService(services.sessions, toolkit_analysis(build_toolkit(services)), frozenset({"telegram"}))

    async def db_ok() -> bool:
        return True

    app = create_app(database_ok=db_ok, routers=[signals_router(service, SECRET)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as client:
        body = json.dumps({**SIGNAL, "symbol": "SOLUSDT", "side": "sell", "timeframe": "4h"}).encode()
        r = await client.post(SIGNAL_PATH, content=body, headers=_signed(body))
        assert r.status_code == 202, r.text
        unknown = json.dumps({**SIGNAL, "symbol": "ZZZQQQUSDT"}).encode()
        r2 = await client.post(SIGNAL_PATH, content=unknown, headers=_signed(unknown))
    assert r2.status_code == 422
    rows = await _rows(services.sessions)
    assert len(rows) == 2  # the group and alice (all-symbol subscriptions); bob follows ETH only
    text = rows[0].payload["text"]
    assert text.startswith("**Signal: SOL/USDT:USDT SHORT at 64250.5 (4h)**")
    assert "simulated" in text.lower()


async def test_fan_out_in_chunks_counts_every_row(
    api_db: tuple[httpx.AsyncClient, Metrics],
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fan-out is one INSERT per chunk of rows; across chunks each backend reports every row queued."""
    import storage.repositories._upsert as upsert

    monkeypatch.setattr(upsert, "MANY_CHUNK", 1)
    client, _ = api_db
    body = json.dumps(SIGNAL).encode()
    r = await client.post(SIGNAL_PATH, content=body, headers=_signed(body))
    assert r.status_code == 202 and r.json()["recipients"] == 2
    assert len(await _rows(sessions)) == 2


async def test_old_nonces_are_pruned_and_a_fresh_one_is_kept(lite: async_sessionmaker[AsyncSession]) -> None:
    from datetime import timedelta

    from storage.repositories import signal_nonces

    now = datetime.now(UTC)
    async with lite.begin() as s:
        assert await signal_nonces.claim(s, "old", now, now - timedelta(hours=2))
        assert await signal_nonces.claim(s, "new", now, now)
        assert not await signal_nonces.claim(s, "new", now, now)  # a replay
    async with lite.begin() as s:
        assert await signal_nonces.prune(s, now - timedelta(hours=1)) == 1
    async with lite() as s:
        assert list((await s.scalars(select(SignalNonce.signature))).all()) == ["new"]
