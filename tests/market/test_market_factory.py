"""Choosing the provider from settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.settings import ExchangeSettings
from tools.market.ccxt_live import CcxtMarketData
from tools.market.factory import build_market_data, resolve_data_dir
from tools.market.replay import ReplayMarketData
from tools.market.simulated import SimulatedMarketData


async def test_default_is_the_simulated_market() -> None:
    market = build_market_data(ExchangeSettings(), seed=3)
    assert isinstance(market, SimulatedMarketData) and market.seed == 3 and market.simulated


async def test_ccxt_provider_with_fallback() -> None:
    market = build_market_data(ExchangeSettings(market_data="ccxt", market_exchange="okx", fallback_exchange="bybit"))
    assert isinstance(market, CcxtMarketData)
    assert market.exchange.id == "okx" and market.fallback is not None and market.fallback.id == "bybit"
    assert market.exchange.enableRateLimit and market.exchange.options["fetchMarkets"]["types"] == ["swap"]
    await market.close()
    single = build_market_data(ExchangeSettings(market_data="ccxt", fallback_exchange=None))
    assert isinstance(single, CcxtMarketData) and single.fallback is None
    await single.close()


def test_replay_provider_uses_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "BTC_USDT-1h.csv").write_text("timestamp,datetime,open,high,low,close,volume\n")
    monkeypatch.delenv("BASTION_DATA_DIR", raising=False)
    market = build_market_data(ExchangeSettings(market_data="replay", data_dir=tmp_path))
    assert isinstance(market, ReplayMarketData) and market.data_dir == tmp_path


def test_env_overrides_the_configured_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_DATA_DIR", str(tmp_path))
    assert resolve_data_dir("../shared/data/ohlcv") == tmp_path
    monkeypatch.delenv("BASTION_DATA_DIR")
    assert resolve_data_dir("data", root=tmp_path) == tmp_path / "data"
