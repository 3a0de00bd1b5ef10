"""Multi-timeframe analysis with caching over a fake provider; report renderings and round trip."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from tools.market.base import MarketDataError
from tools.structure.analysis import analyze_frame
from tools.structure.mtf import StructureCache, analyze_mtf, closed_candles
from tools.structure.report import StructureReport

pytestmark = pytest.mark.data


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


async def test_mtf_uses_closed_candles_and_builds_alignment(fake_md) -> None:
    m = await analyze_mtf(fake_md, "BTC", limit=1000, now=fake_md.now)
    assert list(m.reports) == ["15m", "1h", "4h"]
    # 00:07: the 00:00 15m candle is still forming, so the last closed one opened at 23:45.
    assert m.reports["15m"].as_of_time == pd.Timestamp("2025-05-31 23:45", tz="UTC")
    assert m.reports["1h"].as_of_time == pd.Timestamp("2025-05-31 23:00", tz="UTC")
    assert m.reports["4h"].as_of_time == pd.Timestamp("2025-05-31 20:00", tz="UTC")
    assert all(r.bars == 1000 for r in m.reports.values())
    assert m.alignment == {tf: r.bias for tf, r in m.reports.items()}
    assert m.alignment_score == pytest.approx(sum(m.alignment.values()) / 3)
    vals = set(m.alignment.values())
    assert m.direction == ({1: "long", -1: "short"}.get(vals.pop()) if len(vals) == 1 else None)
    assert "MTF BTC alignment" in m.compact()


async def test_cache_ttl_and_last_closed_candle_key(fake_md) -> None:
    clock = Clock()
    cache = StructureCache(clock=clock)
    first = await analyze_mtf(fake_md, "BTC", cache=cache, now=fake_md.now)
    assert len(fake_md.calls) == 3 and cache.misses == 3
    clock.t = 170  # inside the 15m TTL (3 min): nothing fetched
    again = await analyze_mtf(fake_md, "BTC", cache=cache, now=fake_md.now)
    assert len(fake_md.calls) == 3 and again.reports["15m"] is first.reports["15m"]
    clock.t = 200  # 15m expired, 1h (5 min) and 4h (10 min) not: only 15m is fetched, same candle -> reused
    await analyze_mtf(fake_md, "BTC", cache=cache, now=fake_md.now)
    assert [c[1] for c in fake_md.calls[3:]] == ["15m"] and cache.misses == 3
    fake_md.now += timedelta(minutes=10)  # 00:17: a new 15m candle closed
    clock.t = 400
    newer = await analyze_mtf(fake_md, "BTC", cache=cache, now=fake_md.now)
    assert newer.reports["15m"].as_of_time == pd.Timestamp("2025-06-01 00:00", tz="UTC")
    assert newer.reports["1h"] is first.reports["1h"]  # refetched after its TTL, same closed candle
    assert cache.misses == 4


async def test_failed_timeframe_is_missing_not_guessed(fake_md) -> None:
    del fake_md.frames[("BTC", "4h")]
    original = fake_md.ohlcv

    async def failing(symbol: str, timeframe: str, limit: int = 500) -> pd.DataFrame:
        if timeframe == "4h":
            raise MarketDataError("no 4h")
        return await original(symbol, timeframe, limit)

    fake_md.ohlcv = failing
    m = await analyze_mtf(fake_md, "BTC", now=fake_md.now)
    assert m.missing == ["4h"] and list(m.reports) == ["15m", "1h"] and m.direction is None


def test_closed_candles_trusts_provider_flag() -> None:
    idx = pd.date_range("2025-01-01", periods=3, freq="1h", tz="UTC", name="time")
    df = pd.DataFrame({"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}, index=idx)
    df.attrs["forming"] = True
    assert len(closed_candles(df, "1h")) == 2
    df.attrs["forming"] = False
    assert len(closed_candles(df, "1h")) == 3
    assert len(closed_candles(df, "1h", now=pd.Timestamp("2025-01-01 02:30", tz="UTC"))) == 2


def test_report_renderings_and_json_round_trip(candles) -> None:
    df = candles("SOL", "4h").iloc[-1000:]
    r = analyze_frame(df, "SOL/USDT", "4h")
    assert StructureReport.model_validate_json(r.model_dump_json()) == r
    compact = r.compact()
    # About 350 tokens (~4 characters per token) for the structure part.
    assert 300 < len(compact) <= 1700, len(compact)
    assert compact.startswith("SOL/USDT 4h @") and "R:" in compact and "S:" in compact and "POC" in compact
    human = r.human()
    assert "Resistance:" in human and "Support:" in human and "Volume profile" in human
    assert len(r.profile.volume) == 250 and r.profile.value_area_share >= 0.70
    assert all(lv.role == ("support" if lv.price < r.close else "resistance") for lv in r.levels)
    assert r.profile.buy_volume + r.profile.sell_volume == pytest.approx(df["volume"].sum())
