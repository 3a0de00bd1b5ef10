"""Premium providers against recorded JSON (CoinGlass v4, Whale Alert v1): parsing, error shapes, 429 pauses, the
SPEC §3 whale heuristics, and a context that degrades to "not available" instead of breaking."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.alerts.feeds import LiquidationFeed, WhaleFeed
from tools.market.providers import (
    CoinGlassClient,
    PremiumData,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    WhaleAlertClient,
    flows_of,
    lean_of,
    onchain_inputs,
)

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "cg-test-key"


def recorded(name: str) -> httpx.Response:
    """A recorded answer (status, headers, JSON body) from tests/market/fixtures/."""
    rec = json.loads((FIXTURES / name).read_text())
    return httpx.Response(rec["status"], headers=rec["headers"], json=rec["body"])


class Upstream:
    """A MockTransport that answers by a routing function and keeps every request it saw."""

    def __init__(self, route: Callable[[httpx.Request], httpx.Response]) -> None:
        self.route = route
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.route(request)


def coinglass_routes(request: httpx.Request) -> httpx.Response:
    p, q = request.url.path, request.url.params
    if p == "/api/futures/liquidation/exchange-list" and q["range"] in ("1h", "24h"):
        return recorded(f"coinglass/liquidation_exchange_list_{q['symbol']}_{q['range']}.json")
    if p == "/api/futures/liquidation/aggregated-heatmap/model1":
        return recorded(f"coinglass/heatmap_model1_{q['symbol']}_{q['range']}.json")
    if p == "/api/futures/open-interest/exchange-list":
        return recorded(f"coinglass/oi_exchange_list_{q['symbol']}.json")
    if p == "/api/futures/global-long-short-account-ratio/history":
        return recorded(f"coinglass/global_long_short_account_ratio_{q['symbol']}.json")
    return httpx.Response(404, json={"code": "404", "msg": "Not Found"})


def whale_routes(request: httpx.Request) -> httpx.Response:
    cursor = request.url.params.get("cursor")
    return recorded("whale_alert/transactions_page2.json" if cursor else "whale_alert/transactions_page1.json")


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def coinglass(route: Callable[[httpx.Request], httpx.Response] = coinglass_routes, clock: Any = None) -> Any:
    up = Upstream(route)
    client = CoinGlassClient(KEY, transport=up.transport, clock=clock or Clock())
    return client, up


def whale_alert(route: Callable[[httpx.Request], httpx.Response] = whale_routes, clock: Any = None) -> Any:
    up = Upstream(route)
    client = WhaleAlertClient("wa-test-key", transport=up.transport, clock=clock or Clock())
    client.page = 5  # the recorded pages hold 5 and 4 items
    return client, up


async def test_coinglass_liquidations_and_the_alert_feed() -> None:
    client, up = coinglass()
    liq = await client.liquidations("BTC/USDT:USDT", "1h")
    assert (liq.coin, liq.total_usd, liq.long_usd) == ("BTC", 61873519.81739075, 47651394.17404598)
    assert list(liq.by_exchange) == ["Binance", "OKX", "Hyperliquid", "Bybit"]  # largest first, no "All"
    req = up.requests[0]
    assert req.headers["CG-API-KEY"] == KEY and dict(req.url.params) == {"symbol": "BTC", "range": "1h"}
    assert isinstance(client, LiquidationFeed)
    assert await client.liquidations_usd("BTC/USDT:USDT", hours=1) == pytest.approx(61873519.8, rel=1e-9)
    assert await client.liquidations_usd("BTC/USDT:USDT", hours=20) == pytest.approx(402118220.58)
    assert up.requests[-1].url.params["range"] == "24h"  # 20 h is read from the 24 h range
    sent = len(up.requests)
    assert await client.liquidations_usd("BTC/USDT:USDT", hours=48) is None and len(up.requests) == sent
    await client.aclose()


async def test_coinglass_heatmap_open_interest_and_long_short() -> None:
    client, _ = coinglass()
    heat = await client.liquidation_heatmap("BTC")
    assert heat.last_price == 62990.5
    assert [(lv.price, round(lv.usd, 2)) for lv in heat.above] == [
        (64400.0, 7400000.0),
        (63600.0, 6000000.0),
        (64800.0, 1500000.0),
    ]
    assert [(lv.price, round(lv.usd, 2)) for lv in heat.below] == [
        (62000.0, 5727940.62),
        (61200.0, 4072867.26),
        (62400.0, 880000.0),
    ]  # the cell pointing past the price axis is ignored
    oi = await client.open_interest_by_exchange("BTC/USDT:USDT")
    assert oi.total is not None and oi.total.open_interest_usd == 57437891724.5572 and oi.total.change_4h_pct == 2.95
    assert [e.exchange for e in oi.exchanges] == ["Binance", "CME", "Bybit"]
    ls = await client.long_short_ratio("BTC/USDT:USDT")
    assert (ls.pair, ls.long_pct, ls.short_pct, ls.ratio) == ("BTCUSDT", 73.24, 26.76, 2.74)
    assert ls.at == datetime.fromtimestamp(1741608000, UTC)
    await client.aclose()


async def test_coinglass_error_shapes_are_typed_with_the_providers_message() -> None:
    client, _ = coinglass(lambda r: recorded("coinglass/error_upgrade_plan.json"))
    with pytest.raises(ProviderError, match="Upgrade plan"):
        await client.liquidation_heatmap("BTC")
    client, _ = coinglass(lambda r: recorded("coinglass/error_invalid_key.json"))
    with pytest.raises(ProviderAuthError, match="Invalid API key"):
        await client.liquidations("BTC")
    client, _ = coinglass(lambda r: httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(ProviderError, match="HTTP 502"):
        await client.open_interest_by_exchange("BTC")

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client, _ = coinglass(down)
    with pytest.raises(ProviderError, match="unreachable"):
        await client.liquidations("BTC")

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client, _ = coinglass(slow)
    with pytest.raises(ProviderError, match="did not answer in time"):
        await client.liquidations("BTC")


async def test_a_429_pauses_requests_for_its_retry_after() -> None:
    clock = Clock()
    answers = iter([recorded("coinglass/rate_limited.json")])
    client, up = coinglass(lambda r: next(answers, None) or coinglass_routes(r), clock)
    with pytest.raises(ProviderRateLimited) as first:
        await client.liquidations("BTC")
    assert first.value.retry_after_s == 30.0
    clock.now += 29
    with pytest.raises(ProviderRateLimited, match="another 1 s"):
        await client.liquidations("BTC")
    assert len(up.requests) == 1  # refused here, nothing sent during the pause
    clock.now += 2
    assert (await client.liquidations("BTC")).total_usd > 0 and len(up.requests) == 2


async def test_whale_alert_follows_pages_and_reads_owner_types() -> None:
    client, up = whale_alert()
    since = datetime.fromtimestamp(1764590400, UTC)
    transfers = await client.transactions(since)
    assert [t.id[:2] for t in transfers] == ["01", "02", "03", "04", "05", "06", "07"]  # duplicate and bad item gone
    first, second = up.requests
    assert first.url.params["api_key"] == "wa-test-key" and first.url.params["min_value"] == "1000000"
    assert first.url.params["start"] == "1764590400" and "cursor" not in first.url.params
    assert second.url.params["cursor"] == "2bc7e46-2bc7e46-5c66c0a7"
    t1 = transfers[0]
    assert (t1.from_owner, t1.to_owner, t1.amount_usd, t1.lean) == ("binance", "unknown", 25_400_000.0, "bullish")
    assert [t.lean for t in transfers] == ["bullish", "bearish", "bullish", "bullish", None, "bearish", "bearish"]
    assert isinstance(client, WhaleFeed)
    await client.whale_transfers("BTC/USDT:USDT", since, 10_000_000)
    assert up.requests[-2].url.params["currency"] == "btc" and up.requests[-2].url.params["min_value"] == "10000000"


async def test_whale_alert_error_shapes() -> None:
    since = datetime(2026, 12, 1, tzinfo=UTC)
    client, _ = whale_alert(lambda r: recorded("whale_alert/error_invalid_key.json"))
    with pytest.raises(ProviderAuthError, match="invalid api_key"):
        await client.transactions(since)
    client, _ = whale_alert(lambda r: recorded("whale_alert/error_start_too_old.json"))
    with pytest.raises(ProviderError, match="within 3600 seconds"):
        await client.transactions(since)
    clock = Clock()
    client, up = whale_alert(lambda r: recorded("whale_alert/rate_limited.json"), clock)
    with pytest.raises(ProviderRateLimited) as limited:
        await client.transactions(since)
    assert limited.value.retry_after_s == 60.0  # no Retry-After header: a minute, the plan's window
    with pytest.raises(ProviderRateLimited):
        await client.transactions(since)
    assert len(up.requests) == 1


def test_whale_heuristics_of_spec_section_3() -> None:
    assert lean_of("btc", "transfer", "exchange", "unknown") == "bullish"  # leaving an exchange
    assert lean_of("btc", "transfer", "unknown", "unknown") == "bullish"
    assert lean_of("btc", "transfer", "unknown", "exchange") == "bearish"  # deposit / whale -> exchange
    assert lean_of("usdt", "mint", "unknown", "unknown") == "bullish"
    assert lean_of("usdc", "burn", "unknown", "unknown") == "bearish"
    assert lean_of("btc", "transfer", "exchange", "exchange") is None
    assert lean_of("usdt", "transfer", "unknown", "exchange") is None  # stablecoins onto exchanges: buying power


async def test_flows_feed_the_mcf_onchain_inputs() -> None:
    client, _ = whale_alert()
    transfers = await client.transactions(datetime.fromtimestamp(1764590400, UTC))
    btc = flows_of(t for t in transfers if t.currency == "btc")
    stable = flows_of(t for t in transfers if t.currency in ("usdt", "usdc"))
    assert btc.whale_net_flow == pytest.approx(25_400_000 + 3_200_000 - 12_100_000)
    assert btc.exchange_net_flow == pytest.approx(12_100_000 - 25_400_000)
    assert stable.stablecoin_net_mint == pytest.approx(1_000_000_000 - 150_000_000)
    assert btc.bias == "bullish"
    inputs = onchain_inputs(btc, stable)
    assert inputs.whale_net_flow == pytest.approx(16_500_000) and inputs.exchange_net_flow == pytest.approx(-13_300_000)
    assert inputs.stablecoin_net_mint == pytest.approx(850_000_000)
    empty = onchain_inputs(flows_of([]), None)  # nothing moved: not available, not a zero vote
    assert (empty.whale_net_flow, empty.exchange_net_flow, empty.stablecoin_net_mint) == (None, None, None)


async def test_premium_context_has_every_part_when_the_providers_answer() -> None:
    cg, _ = coinglass()
    wa, _ = whale_alert()
    premium = PremiumData(cg, wa, clock=lambda: datetime.fromtimestamp(1764590400 + 3600, UTC))
    ctx = await premium.context("BTC/USDT:USDT")
    d, o = ctx["derivatives"], ctx["onchain"]
    assert d["available"] and d["liquidations_1h"]["total_usd"] == 61873519.81739075
    assert d["liquidations_24h"]["long_usd"] == 311872010.12
    assert d["liquidation_heatmap"]["above"][0] == {"price": 64400.0, "usd": 7400000.0}
    assert d["open_interest_by_exchange"]["top_exchanges"][0]["exchange"] == "Binance"
    assert d["long_short_accounts"]["ratio"] == 2.74
    assert o["available"] and o["transfers"] == 4 and o["bias"] == "bullish"  # BTC only; stablecoins apart
    assert o["stablecoin_net_mint_usd"] == pytest.approx(850_000_000)
    assert o["largest"][0] == {"usd": 25_400_000.0, "from": "binance", "to": "unknown", "kind": "transfer",
                               "lean": "bullish", "at": "2025-12-01T12:01:00+00:00"}  # fmt: skip
    inputs = await premium.onchain_inputs("BTC/USDT:USDT")
    assert inputs.whale_net_flow == pytest.approx(16_500_000)
    await premium.aclose()


async def test_premium_context_degrades_part_by_part() -> None:
    nothing = await PremiumData().context("BTC")
    assert nothing == {
        "derivatives": {"available": False, "reason": "not configured (no API key)"},
        "onchain": {"available": False, "reason": "not configured (no API key)"},
    }

    def heatmap_not_in_plan(request: httpx.Request) -> httpx.Response:
        if "heatmap" in request.url.path:
            return recorded("coinglass/error_upgrade_plan.json")
        return coinglass_routes(request)

    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"result": "success", "transactions": "not a list"})

    cg, _ = coinglass(heatmap_not_in_plan)
    wa, _ = whale_alert(lambda r: recorded("whale_alert/rate_limited.json"))
    ctx = await PremiumData(cg, wa).context("BTC")
    assert ctx["derivatives"]["liquidation_heatmap"] == {
        "available": False,
        "reason": "CoinGlass refused the request: Upgrade plan",
    }
    assert ctx["derivatives"]["liquidations_1h"]["total_usd"] > 0  # the other parts still answer
    assert ctx["onchain"] == {"available": False, "reason": "Whale Alert is rate limited for another 60 s"}
    assert (await PremiumData(cg, wa).onchain_inputs("BTC")).whale_net_flow is None
    odd, _ = whale_alert(broken)
    odd_ctx = await PremiumData(None, odd).onchain_context("BTC")
    assert odd_ctx == {
        "available": False,
        "reason": "Whale Alert answered an unexpected shape (transactions is not a list)",
    }


async def test_a_provider_bug_is_logged_and_reads_as_not_available() -> None:
    def bug(request: httpx.Request) -> httpx.Response:
        raise KeyError("unexpected")

    cg, _ = coinglass(bug)
    ctx = await PremiumData(cg).derivatives_context("BTC")
    assert ctx["available"] is True  # configured; each part says why it is missing
    assert ctx["liquidations_1h"] == {"available": False, "reason": "failed (KeyError)"}


async def test_the_market_overview_carries_premium_context_and_survives_its_failure() -> None:
    from typing import cast

    from bastion.settings import ExchangeSettings
    from tools.agent_tools.base import ToolDeps
    from tools.agent_tools.market_tools import market_overview
    from tools.market.factory import build_market_data

    market = build_market_data(ExchangeSettings())
    cg, up = coinglass()
    wa, _ = whale_alert(lambda r: recorded("whale_alert/error_invalid_key.json"))
    deps = ToolDeps(market=market, sessions=cast(Any, None), open_account=cast(Any, None), premium=PremiumData(cg, wa))
    try:
        overview = await market_overview(deps, "BTC/USDT:USDT")
        assert overview["last"] is not None and overview["simulated"] is True  # the overview itself is intact
        premium = overview["premium"]
        assert premium["derivatives"]["liquidations_1h"]["total_usd"] == 61873519.81739075
        assert premium["onchain"] == {"available": False, "reason": "Whale Alert refused the API key (invalid api_key)"}
        sent = len(up.requests)
        await market_overview(deps, "BTC/USDT:USDT")
        assert len(up.requests) == sent  # shared for a minute: paid requests are not repeated per question
        bare = await market_overview(
            ToolDeps(market=market, sessions=cast(Any, None), open_account=cast(Any, None)), "BTC"
        )
        assert "premium" not in bare
    finally:
        await market.close()


async def test_summary_lines_say_what_is_known_and_what_is_not() -> None:
    from tools.market.providers.premium import summary_lines

    cg, _ = coinglass()
    wa, _ = whale_alert()
    ctx = await PremiumData(cg, wa, clock=lambda: datetime.fromtimestamp(1764594000, UTC)).context("BTC")
    text = "\n".join(summary_lines(ctx))
    assert "- Liquidations 1h: $61.9M (longs $47.7M, shorts $14.2M) [CoinGlass]." in text
    assert "- Liquidation clusters above: 64400 ($7.4M), 63600 ($6.0M), 64800 ($1.5M);" in text
    assert "- Accounts long/short on Binance: 73.24% / 26.76%." in text
    assert "4 transfers, net $16.5M toward holders, exchange net flow $-13.3M" in text and "leans bullish" in text
    assert summary_lines(await PremiumData().context("BTC")) == [
        "- Derivatives data: not available (not configured (no API key)).",
        "- Whale flows: not available (not configured (no API key)).",
    ]


async def test_clients_from_settings_ask_the_configured_root_with_the_key_where_each_api_takes_it() -> None:
    from pydantic import SecretStr

    from bastion.settings import ProvidersSettings
    from tools.market.providers.premium import premium_from_settings

    settings = ProvidersSettings(
        coinglass_api_key=SecretStr("cg-key"),
        coinglass_base_url="https://cg.test/",
        whale_alert_api_key=SecretStr("wa-key"),
        whale_alert_base_url="https://wa.test/v1/",
        timeout_s=3.0,
    )
    premium = premium_from_settings(settings)
    assert premium is not None and premium.derivatives is not None and premium.whales is not None
    cg, wa = premium.derivatives._http, premium.whales._http
    try:
        assert (cg.base_url.host, cg.headers["CG-API-KEY"]) == ("cg.test", "cg-key")
        assert (wa.base_url.host, wa.base_url.path) == ("wa.test", "/v1/") and "wa-key" not in str(dict(wa.headers))
        assert cg.timeout.read == 3.0 and wa.timeout.read == 3.0
    finally:
        await premium.aclose()
    # Without a root in the call, each client asks its own API.
    defaults = PremiumData(CoinGlassClient("k"), WhaleAlertClient("k"))
    assert defaults.derivatives is not None and defaults.whales is not None
    assert defaults.derivatives._http.base_url.host == "open-api-v4.coinglass.com"
    assert str(defaults.whales._http.base_url) == "https://api.whale-alert.io/v1/"
    await defaults.aclose()
