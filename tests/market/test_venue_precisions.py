"""A live venue's price tick and amount step, from its recorded market list, shape every price and size shown and
the size an entry is placed at (rounded down; refused when nothing is left)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import ccxt.async_support as ccxt_async
import pytest
from typer.testing import CliRunner

from bastion.cli import app
from storage.retry import RetryPolicy
from tests.exchange.fakehttp import offline_exchange
from tests.exchange.test_ccxt_requests import CREDS
from tests.market.recorded import recorded_exchange
from tools.exchange.ccxt_account import CcxtAccount
from tools.market.ccxt_live import CcxtMarketData
from tools.market.ccxt_support import register_precisions
from tools.numbers import SizeBelowStep, price_text, register_step, size_down, size_text, step_of, tick_of


async def test_the_live_market_registers_ticks_and_steps_from_load_markets(fast_retry: RetryPolicy) -> None:
    exchange, _ = recorded_exchange("binanceusdm")
    provider = CcxtMarketData(exchange, retry=fast_retry)
    try:
        assert tick_of("SOL") == Decimal("0.01") and step_of("BTC") == Decimal("1e-8")  # before: simulated, paper
        await provider.resolve("btc")
    finally:
        await provider.close()
    # binanceusdm's recorded exchangeInfo (TICK_SIZE mode): BTC step 0.001, SOL step 1 (whole coins), ETH 0.001.
    assert (step_of("BTC"), step_of("SOL"), step_of("ETH/USDT:USDT")) == (
        Decimal("0.001"),
        Decimal("1"),
        Decimal("0.001"),
    )
    assert size_text(12.0, symbol="SOL") == "12" and size_text(Decimal("0.025000000000"), symbol="BTC") == "0.025"
    assert size_text(0.0841744, symbol="BTC/USDT:USDT") == "0.084"


async def test_an_account_on_contracts_registers_its_step_in_base_units() -> None:
    exchange, _, _ = offline_exchange("okx")
    account = CcxtAccount("okx", lambda: CREDS, exchange=exchange)
    try:
        markets = await account.ensure_markets()
    finally:
        await exchange.close()
    btc = markets["BTC/USDT:USDT"]
    # OKX trades BTC in contracts of 0.01 BTC, at a step of 0.01 contracts: 0.0001 BTC.
    assert btc["contractSize"] == 0.01 and btc["precision"]["amount"] == 0.01
    assert step_of("BTC") == Decimal("0.0001") and tick_of("BTC") == Decimal("0.1")


async def test_an_account_registers_the_venues_price_tick() -> None:
    exchange, _, _ = offline_exchange("deribit")
    account = CcxtAccount("deribit", lambda: CREDS, exchange=exchange)
    try:
        await account.ensure_markets()
    finally:
        await exchange.close()
    # Deribit quotes its BTC/USDC perpetual in whole dollars (the simulated market's BTC tick is 0.1).
    assert tick_of("BTC") == Decimal("1") and price_text(95123.44, "BTC/USDC:USDC") == "95,123"


def test_decimal_places_precision_is_read_as_a_count_of_decimals() -> None:
    exchange = ccxt_async.binanceusdm()
    exchange.precisionMode = ccxt_async.DECIMAL_PLACES
    market = {"swap": True, "linear": True, "settle": "USDT", "contractSize": 1}
    exchange.markets = {
        "ETH/USDT:USDT": {**market, "precision": {"price": 2, "amount": 3}, "limits": {"amount": {"min": 0.001}}},
        "ETH/USDT": {"spot": True, "swap": False, "precision": {"price": 4, "amount": 5}},  # not the perpetual
    }
    assert register_precisions(exchange) == 1
    assert (tick_of("ETH"), step_of("ETH")) == (Decimal("0.01"), Decimal("0.001"))


def test_sizes_round_down_to_the_step_and_nothing_left_is_refused() -> None:
    register_step("BTC/USDT:USDT", Decimal("0.001"), Decimal("0.002"))
    assert size_down(0.0849999, "BTC") == Decimal("0.084")  # down, never up: never more risk than asked
    with pytest.raises(SizeBelowStep, match=r"rounds down to 0 at the BTC step of 0\.001"):
        size_down(0.0009, "BTC")
    with pytest.raises(SizeBelowStep, match=r"minimum order 0\.002"):
        size_down(0.0019, "BTC")
    assert size_down(0.123456789, "ETH") == Decimal("0.12345678")  # no venue step: the paper exchange's 10^-8


def test_bastion_size_shows_and_returns_the_size_at_the_venue_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BASTION_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    register_step("BTC/USDT:USDT", Decimal("0.001"), Decimal("0.001"))
    runner = CliRunner()
    # 0.5% of 1,234 = 6.17 USDT over a 2,000 stop: 0.003085 BTC, placed as 0.003.
    result = runner.invoke(app, ["size", "btc", "95000", "93000", "0.5%", "of", "1234", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["units"] == 0.003
    text = runner.invoke(app, ["size", "btc", "95000", "93000", "0.5%", "of", "1234"])
    assert "0.003 units" in text.stdout
    tiny = runner.invoke(app, ["size", "btc", "95000", "93000", "0.01%", "of", "1000"])
    assert tiny.exit_code == 0 and "rounds down to 0 at the BTC step of 0.001" in tiny.stdout
