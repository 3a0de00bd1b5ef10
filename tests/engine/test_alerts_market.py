"""Market alerts: the SPEC §6 rules on real candles and recorded series, cooldowns per (rule, symbol, recipient)
across cycles and processes, opt-ins per user and chat, quiet hours, and the optional premium feeds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.alerts.job import AlertJob
from storage import migrate
from storage.db import create_engine, session_factory
from storage.models import Outbox
from storage.repositories import alerts as alerts_repo
from storage.repositories.users import get_or_create_user
from tools.market.base import Funding, MarketDataError, OpenInterest
from tools.market.replay import ReplayMarketData

SPIKE_DAY = datetime(2025, 10, 10, 14, tzinfo=UTC)  # BTC 1h volume > 3x its average at 15:00, 20:00, 21:00, 22:00


@pytest.fixture
async def lite(sqlite_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A migrated SQLite database: the rules' logic (PostgreSQL runs the claim tests below)."""
    engine = create_engine(sqlite_url)
    await migrate.upgrade(engine)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def _user(sessions: async_sessionmaker[AsyncSession], ref: str = "1") -> int:
    async with sessions.begin() as s:
        user = await get_or_create_user(s, "telegram", ref, "u")
        assert user.id is not None
        return user.id


async def _subscribe(sessions: async_sessionmaker[AsyncSession], user_id: int, topic: str, **kw: Any) -> None:
    async with sessions.begin() as s:
        await alerts_repo.set_subscription(s, topic=topic, enabled=True, user_id=user_id, **kw)


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> list[Outbox]:
    async with sessions() as s:
        return list((await s.scalars(select(Outbox).order_by(Outbox.id))).all())  # type: ignore[arg-type]


class Clock:
    """The job's clock and the replay's, moved together."""

    def __init__(self, market: Any, start: datetime) -> None:
        self.market, self.now = market, start
        self.set(start)

    def set(self, when: datetime) -> None:
        self.now = when
        if hasattr(self.market, "set_now"):
            self.market.set_now(when)

    def __call__(self) -> datetime:
        return self.now


async def _run(job: AlertJob, clock: Clock, start: datetime, cycles: int, step: timedelta) -> list[int]:
    """Run `cycles` cycles `step` apart; returns how many rows each queued."""
    queued = []
    for i in range(cycles):
        clock.set(start + i * step)
        report = await job.run_cycle()
        assert not report.errors
        queued.append(report.queued)
    return queued


@pytest.mark.parametrize(
    ("cooldown_h", "expected"), [(4, ["15:00", "20:00"]), (1, ["15:00", "20:00", "21:00", "22:00"])]
)
async def test_volume_rule_fires_on_the_known_spikes_once_per_cooldown(
    lite: async_sessionmaker[AsyncSession], ohlcv_dir: Path, cooldown_h: int, expected: list[str]
) -> None:
    market = ReplayMarketData(ohlcv_dir)
    clock = Clock(market, SPIKE_DAY)
    user_id = await _user(lite)
    await _subscribe(lite, user_id, "market", symbol="BTC")
    job = AlertJob(lite, market, watchlist=["BTC"], cooldown=timedelta(hours=cooldown_h), clock=clock)
    # Every 30 minutes from 14:00 to 01:30: each spike candle stays "the last closed one" for two cycles.
    await _run(job, clock, SPIKE_DAY, 24, timedelta(minutes=30))
    rows = await _rows(lite)
    texts = [r.payload["text"] for r in rows]
    assert all("BTC volume" in t for t in texts)
    assert [t.split("candle of 2025-10-10 ")[1][:5] for t in texts] == expected
    assert {r.recipient for r in rows} == {"1"} and all(r.platform == "telegram" for r in rows)
    # The 21:00 candle traded 17x its average: with a 4 h cooldown it is still the same condition.
    if cooldown_h == 4:
        assert "17.2x" not in " ".join(texts)


async def test_a_restarted_job_within_the_cooldown_queues_nothing_again(
    sessions: async_sessionmaker[AsyncSession], ohlcv_dir: Path
) -> None:
    market = ReplayMarketData(ohlcv_dir)
    clock = Clock(market, datetime(2025, 10, 10, 16, tzinfo=UTC))
    user_id = await _user(sessions)
    await _subscribe(sessions, user_id, "market")
    first = AlertJob(sessions, market, watchlist=["BTC"], clock=clock)
    assert (await first.run_cycle()).queued == 1
    # A new process (fresh job object) on the same database, ten cycles on: the stamp in the database holds.
    again = AlertJob(sessions, market, watchlist=["BTC"], clock=clock)
    assert await _run(again, clock, datetime(2025, 10, 10, 16, 5, tzinfo=UTC), 10, timedelta(minutes=1)) == [0] * 10
    assert len(await _rows(sessions)) == 1


async def test_opt_ins_per_user_and_chat_and_symbol(lite: async_sessionmaker[AsyncSession], ohlcv_dir: Path) -> None:
    market = ReplayMarketData(ohlcv_dir)
    clock = Clock(market, datetime(2025, 10, 10, 16, tzinfo=UTC))
    btc_fan, eth_fan, _nobody, off_id = [await _user(lite, r) for r in ("1", "2", "3", "4")]
    await _subscribe(lite, btc_fan, "market", symbol="BTC")
    await _subscribe(lite, eth_fan, "market", symbol="ETH")
    # User 3 never opted in: market alerts are opt-in. User 4 opted in, then out.
    await _subscribe(lite, off_id, "market")
    async with lite.begin() as s:
        await alerts_repo.set_subscription(s, topic="market", enabled=False, user_id=off_id)
        group = await alerts_repo.chat_id_of(s, "telegram", "-500")
        await alerts_repo.set_subscription(s, topic="market", enabled=True, chat_id=group)
    job = AlertJob(lite, market, watchlist=["BTC", "ETH"], clock=clock)
    await job.run_cycle()
    got = {(r.recipient, r.payload["text"].split()[0].strip("*")) for r in await _rows(lite)}
    # Both spiked at 15:00: each fan gets their symbol, the group (all symbols) both, users 3 and 4 nothing.
    assert got == {("1", "BTC"), ("2", "ETH"), ("-500", "BTC"), ("-500", "ETH")}


@dataclass
class Recorded:
    """A market whose funding and open interest come from recorded series (index = cycle), candles from files."""

    inner: ReplayMarketData
    funding_series: list[float | None]
    oi_series: list[float | None]
    cycle: int = 0

    def set_now(self, when: datetime) -> None:
        self.inner.set_now(when)

    async def ohlcv(self, symbol: str, timeframe: str, limit: int = 500) -> Any:
        return await self.inner.ohlcv(symbol, timeframe, limit)

    async def ticker(self, symbol: str) -> Any:
        return await self.inner.ticker(symbol)

    async def funding(self, symbol: str) -> Funding:
        rate = self.funding_series[self.cycle]
        if rate is None:
            raise MarketDataError("funding not available")
        return Funding(symbol=symbol, source="recorded", timestamp=datetime.now(UTC), rate=rate)

    async def open_interest(self, symbol: str, window_hours: float = 4.0) -> OpenInterest:
        value = self.oi_series[self.cycle]
        if value is None:
            raise MarketDataError("open interest not available")
        return OpenInterest(symbol=symbol, source="recorded", timestamp=datetime.now(UTC), value=1e6, change_pct=value)


async def _recorded_run(
    sessions: async_sessionmaker[AsyncSession], market: Recorded, start: datetime, cooldown: timedelta
) -> list[tuple[int, str]]:
    clock = Clock(market, start)
    job = AlertJob(sessions, market, watchlist=["ETH"], cooldown=cooldown, clock=clock)
    fired: list[tuple[int, str]] = []
    for i in range(len(market.funding_series)):
        market.cycle = i
        clock.set(start + timedelta(minutes=30 * i))
        before = len(await _rows(sessions))
        report = await job.run_cycle()
        assert not report.errors
        fired += [(i, r.payload["text"].split("\n")[0]) for r in (await _rows(sessions))[before:]]
    return fired


async def test_funding_and_open_interest_on_recorded_series(
    lite: async_sessionmaker[AsyncSession], ohlcv_dir: Path
) -> None:
    # Quiet ETH hours (no volume spike, no divergence) so only these two rules speak.
    start = datetime(2025, 6, 15, 3, tzinfo=UTC)
    funding = [0.0001, 0.0012, 0.0013, 0.0009, None, -0.0011, -0.0035, 0.0004, 0.0015, 0.0002]
    oi = [1.0, 4.9, 5.5, 6.0, 7.1, None, 2.0, 16.0, 1.0, 5.01]
    user_id = await _user(lite)
    await _subscribe(lite, user_id, "market")
    fired = await _recorded_run(lite, Recorded(ReplayMarketData(ohlcv_dir), funding, oi), start, timedelta(hours=1))
    by_rule = {
        "funding": [(i, t) for i, t in fired if "funding" in t],
        "oi": [(i, t) for i, t in fired if "open interest" in t],
    }
    assert [t for _, t in fired if "funding" not in t and "open interest" not in t] == []
    # Cycles are 30 min apart, the cooldown an hour. Funding beyond ±0.1%: 1 (0.12%), 5 (-0.11%), 8 (0.15%);
    # 2 and 6 are beyond too, but only 30 minutes after the last alert.
    assert [i for i, _ in by_rule["funding"]] == [1, 5, 8]
    assert "+0.120% per 8h" in by_rule["funding"][0][1] and "-0.110% per 8h" in by_rule["funding"][1][1]
    # OI up more than 5% in 4h: 2 (5.5%), 4 (7.1%, exactly an hour later), 7 (16%), 9 (5.01%, an hour after 7);
    # 3 is 30 minutes after 2, 4.9% is not more than 5%.
    assert [i for i, _ in by_rule["oi"]] == [2, 4, 7, 9]
    assert "+16.0% in 4h" in by_rule["oi"][2][1]


async def test_quiet_hours_defer_and_critical_passes(lite: async_sessionmaker[AsyncSession]) -> None:
    now = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    user_id = await _user(lite)
    await _subscribe(lite, user_id, "market")
    async with lite.begin() as s:
        await alerts_repo.set_quiet_hours(s, (22, 7), user_id=user_id)
    feed = Liquidations({"BTC/USDT:USDT": 60e6, "ETH/USDT:USDT": 400e6})
    job = AlertJob(lite, NoMarket(), liquidations=feed, watchlist=["BTC", "ETH", "SOL"], clock=lambda: now)
    assert (await job.run_cycle()).queued == 2
    rows = {r.payload["text"].split()[0].strip("*"): r for r in await _rows(lite)}
    warning, critical = rows["BTC"], rows["ETH"]
    assert warning.payload["alert"]["severity"] == "warning" and "$60M" in warning.payload["text"]
    assert warning.next_attempt_at == datetime(2026, 3, 2, 7, tzinfo=UTC)  # held until the quiet hours end
    assert critical.payload["alert"]["severity"] == "critical"
    assert critical.next_attempt_at == now  # critical ignores quiet hours
    # Outside the quiet hours nothing is held.
    async with lite.begin() as s:
        await alerts_repo.set_quiet_hours(s, (1, 5), user_id=user_id)
    feed.usd = {"SOL/USDT:USDT": 70e6}
    assert (await job.run_cycle()).queued == 1
    sol = next(r for r in await _rows(lite) if r.payload["text"].startswith("**SOL"))
    assert sol.next_attempt_at == now


class NoMarket:
    """A market that has nothing (as when the exchange is down): only the premium feeds speak."""

    async def ohlcv(self, symbol: str, timeframe: str, limit: int = 500) -> Any:
        raise MarketDataError("down")

    async def funding(self, symbol: str) -> Funding:
        raise MarketDataError("down")

    async def open_interest(self, symbol: str, window_hours: float = 4.0) -> OpenInterest:
        raise MarketDataError("down")


@dataclass
class Liquidations:
    """A derivatives-data feed with fixed figures (the Protocol U2's provider implements)."""

    usd: dict[str, float]

    async def liquidations_usd(self, symbol: str, hours: float = 1.0) -> float | None:
        return self.usd.get(symbol)


@dataclass(frozen=True)
class Transfer:
    id: str
    amount_usd: float
    from_owner: str
    to_owner: str
    at: datetime
    lean: str | None = None


@dataclass
class Whales:
    transfers: list[Transfer]
    fail: bool = False

    async def whale_transfers(self, symbol: str, since: datetime, min_usd: float) -> Sequence[Transfer]:
        if self.fail:
            raise RuntimeError("HTTP 429 from the whale feed")
        return [t for t in self.transfers if t.at >= since and t.amount_usd >= min_usd and symbol.startswith("BTC")]


async def test_whale_transfers_alert_once_each_and_a_failing_feed_is_silent(
    lite: async_sessionmaker[AsyncSession],
) -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    user_id = await _user(lite)
    await _subscribe(lite, user_id, "onchain")
    at = now - timedelta(minutes=10)
    feed = Whales(
        [
            Transfer("0xa", 25e6, "binance", "unknown", at, "bullish"),
            Transfer("0xb", 9e6, "unknown", "coinbase", at),  # under $10M: no alert
            Transfer("0xc", 12e6, "unknown", "coinbase", at, "bearish"),
        ]
    )
    job = AlertJob(lite, NoMarket(), whales=feed, watchlist=["BTC"], clock=lambda: now)
    assert (await job.run_cycle()).queued == 2
    assert (await job.run_cycle()).queued == 0  # the same transfers are the same conditions
    texts = [r.payload["text"] for r in await _rows(lite)]
    assert "$25.0M" in texts[0] and "from binance to unknown" in texts[0] and "Leans bullish" in texts[0]
    assert "$12.0M" in texts[1] and "Leans bearish" in texts[1]
    feed.fail = True
    report = await job.run_cycle()
    assert report.queued == 0 and not report.errors  # "not available" never breaks the cycle


async def test_not_configured_feeds_keep_their_rules_inactive(lite: async_sessionmaker[AsyncSession]) -> None:
    user_id = await _user(lite)
    await _subscribe(lite, user_id, "market")
    await _subscribe(lite, user_id, "onchain")
    job = AlertJob(lite, NoMarket(), watchlist=["BTC"], clock=lambda: datetime(2026, 3, 1, tzinfo=UTC))
    report = await job.run_cycle()
    assert report.fired == [] and report.queued == 0 and not report.errors


@pytest.mark.postgres
async def test_two_processes_on_postgres_queue_one_alert(postgres_url: str, ohlcv_dir: Path) -> None:
    """Two jobs (two engines, as two processes would have) in the same cycle: one claim, one outbox row."""
    engines = [create_engine(postgres_url) for _ in range(2)]
    try:
        await migrate.upgrade(engines[0])
        makers = [session_factory(e) for e in engines]
        user_id = await _user(makers[0])
        await _subscribe(makers[0], user_id, "market")
        when = datetime(2025, 10, 10, 16, tzinfo=UTC)
        jobs = [
            AlertJob(m, ReplayMarketData(ohlcv_dir, now=when), watchlist=["BTC"], clock=lambda: when) for m in makers
        ]
        for _ in range(5):
            await asyncio.gather(*(j.run_cycle() for j in jobs))
        assert len(await _rows(makers[0])) == 1
    finally:
        for e in engines:
            await e.dispose()


async def test_a_crash_between_the_claim_and_the_outbox_row_loses_nothing(
    lite: async_sessionmaker[AsyncSession], ohlcv_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cooldown stamp and the row are one transaction: a failed write leaves no stamp, so the next cycle sends."""
    market = ReplayMarketData(ohlcv_dir)
    when = datetime(2025, 10, 10, 16, tzinfo=UTC)
    clock = Clock(market, when)
    user_id = await _user(lite)
    await _subscribe(lite, user_id, "market", symbol="BTC")
    real = alerts_repo.enqueue_alert

    async def broken(*args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("database went away mid-cycle")

    monkeypatch.setattr(alerts_repo, "enqueue_alert", broken)
    job = AlertJob(lite, market, watchlist=["BTC"], clock=clock)
    report = await job.run_cycle()
    assert report.queued == 0 and report.errors and "went away" in report.errors[0]
    async with lite() as s:
        assert (await s.scalars(select(alerts_repo.AlertFiring))).all() == []
    monkeypatch.setattr(alerts_repo, "enqueue_alert", real)
    clock.set(when + timedelta(minutes=5))
    assert (await job.run_cycle()).queued == 1
    assert (await job.run_cycle()).queued == 0
