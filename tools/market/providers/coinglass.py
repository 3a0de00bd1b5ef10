"""CoinGlass API v4 (https://open-api-v4.coinglass.com, header `CG-API-KEY`): liquidations, the liquidation
heatmap, open interest by exchange and the long/short account ratio.

Written for the documented v4 response envelope `{"code": "0", "msg": "success", "data": ...}`; any other code is
an error carrying `msg`. Endpoints used (docs.coinglass.com/reference):
- /api/futures/liquidation/exchange-list?symbol=BTC&range=1h (liquidation_usd, long/short_liquidation_usd)
- /api/futures/liquidation/aggregated-heatmap/model1?symbol=BTC&range=3d (y_axis, liquidation_leverage_data)
- /api/futures/open-interest/exchange-list?symbol=BTC (open_interest_usd, open_interest_change_percent_*)
- /api/futures/global-long-short-account-ratio/history?exchange=Binance&symbol=BTCUSDT&interval=1h
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from tools.market.providers.http import ProviderClient, ProviderError, ProviderRateLimited, number

BASE_URL = "https://open-api-v4.coinglass.com"
AGGREGATE = "All"  # the row CoinGlass sums over every exchange
# The liquidation list's documented ranges; a window is read from the smallest range that covers it.
LIQUIDATION_RANGES = ((1.0, "1h"), (4.0, "4h"), (12.0, "12h"), (24.0, "24h"))


def coin_of(symbol: str) -> str:
    """CoinGlass's coin name of a unified symbol: 'BTC/USDT:USDT' → 'BTC'."""
    return symbol.split("/")[0].split(":")[0].upper()


class Liquidations(BaseModel):
    """Liquidated notional over a window, all exchanges together and per exchange."""

    coin: str
    window: str
    total_usd: float
    long_usd: float
    short_usd: float
    by_exchange: dict[str, float] = Field(default_factory=dict)


class HeatmapLevel(BaseModel):
    """A price band and the liquidation notional the heatmap puts there."""

    price: float
    usd: float


class LiquidationHeatmap(BaseModel):
    """The heatmap collapsed over time: the strongest liquidation bands (magnets for price) above and below."""

    coin: str
    window: str
    last_price: float | None
    above: list[HeatmapLevel]
    below: list[HeatmapLevel]


class ExchangeOpenInterest(BaseModel):
    """One exchange's open interest and its changes."""

    exchange: str
    open_interest_usd: float
    change_1h_pct: float | None = None
    change_4h_pct: float | None = None
    change_24h_pct: float | None = None


class OpenInterestByExchange(BaseModel):
    """Open interest of a coin: the aggregate and each exchange, largest first."""

    coin: str
    total: ExchangeOpenInterest | None
    exchanges: list[ExchangeOpenInterest]


class AccountRatio(BaseModel):
    """Share of accounts long and short on an exchange (latest interval)."""

    exchange: str
    pair: str
    long_pct: float
    short_pct: float
    ratio: float
    at: datetime


class CoinGlassClient(ProviderClient):
    """Async CoinGlass v4 client; every method raises ProviderError (never returns made-up numbers)."""

    name = "CoinGlass"
    base_url = BASE_URL

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """The key in CoinGlass's `CG-API-KEY` header."""
        return {"CG-API-KEY": api_key, "accept": "application/json"}

    async def _data(self, path: str, params: dict[str, Any]) -> Any:
        body = await self.get_json(path, params)
        if not isinstance(body, dict):
            raise ProviderError("CoinGlass answered an unexpected shape")
        code = str(body.get("code", ""))
        if code != "0":
            message = self.error_text(body) or f"code {code}"
            if code == "429" or "too many" in message.lower():
                raise ProviderRateLimited(f"CoinGlass is rate limited ({message})", 60.0)
            raise ProviderError(f"CoinGlass refused the request: {message}")
        return body.get("data")

    async def liquidations(self, symbol: str, window: str = "1h") -> Liquidations:
        """Liquidations of the coin over `window` (1h, 4h, 12h, 24h) across exchanges."""
        coin = coin_of(symbol)
        rows = await self._data("/api/futures/liquidation/exchange-list", {"symbol": coin, "range": window})
        if not isinstance(rows, list):
            raise ProviderError("CoinGlass liquidation list has no rows")
        by_exchange: dict[str, float] = {}
        total: dict[str, Any] | None = None
        for row in rows:
            if not isinstance(row, dict):
                continue
            if row.get("exchange") == AGGREGATE:
                total = row
            elif (usd := number(row.get("liquidation_usd"))) is not None:
                by_exchange[str(row.get("exchange"))] = usd
        if total is None:
            raise ProviderError(f"CoinGlass has no aggregate liquidations for {coin}")
        return Liquidations(
            coin=coin,
            window=window,
            total_usd=number(total.get("liquidation_usd")) or 0.0,
            long_usd=number(total.get("long_liquidation_usd")) or 0.0,
            short_usd=number(total.get("short_liquidation_usd")) or 0.0,
            by_exchange=dict(sorted(by_exchange.items(), key=lambda kv: -kv[1])),
        )

    async def liquidations_usd(self, symbol: str, hours: float = 1.0) -> float | None:
        """USD liquidated over the last `hours` (the alert rules' LiquidationFeed); None beyond 24 h."""
        window = next((name for span, name in LIQUIDATION_RANGES if hours <= span), None)
        if window is None:
            return None
        return (await self.liquidations(symbol, window)).total_usd

    async def liquidation_heatmap(self, symbol: str, window: str = "3d", top: int = 3) -> LiquidationHeatmap:
        """The `top` strongest liquidation bands above and below the last price (heatmap model 1)."""
        coin = coin_of(symbol)
        data = await self._data("/api/futures/liquidation/aggregated-heatmap/model1", {"symbol": coin, "range": window})
        if not isinstance(data, dict):
            raise ProviderError("CoinGlass heatmap has no data")
        prices = [number(p) for p in data.get("y_axis") or []]
        bands: dict[int, float] = defaultdict(float)
        for cell in data.get("liquidation_leverage_data") or []:
            if isinstance(cell, list) and len(cell) == 3:
                y, usd = cell[1], number(cell[2])
                if isinstance(y, int) and 0 <= y < len(prices) and usd is not None:
                    bands[y] += usd  # summed over time (x): where liquidations pile up
        candles = data.get("price_candlesticks") or []
        last = number(candles[-1][4]) if candles and isinstance(candles[-1], list) and len(candles[-1]) > 4 else None
        levels = [HeatmapLevel(price=p, usd=usd) for y, usd in bands.items() if (p := prices[y]) is not None]
        levels.sort(key=lambda lv: -lv.usd)
        ref = last if last is not None else (sum(p for p in prices if p) / max(1, len(prices)))
        return LiquidationHeatmap(
            coin=coin,
            window=window,
            last_price=last,
            above=[lv for lv in levels if lv.price > ref][:top],
            below=[lv for lv in levels if lv.price <= ref][:top],
        )

    async def open_interest_by_exchange(self, symbol: str) -> OpenInterestByExchange:
        """Open interest of the coin on each exchange with 1h/4h/24h changes."""
        coin = coin_of(symbol)
        rows = await self._data("/api/futures/open-interest/exchange-list", {"symbol": coin})
        if not isinstance(rows, list):
            raise ProviderError("CoinGlass open interest list has no rows")
        out: list[ExchangeOpenInterest] = []
        total: ExchangeOpenInterest | None = None
        for row in rows:
            if not isinstance(row, dict) or (usd := number(row.get("open_interest_usd"))) is None:
                continue
            item = ExchangeOpenInterest(
                exchange=str(row.get("exchange")),
                open_interest_usd=usd,
                change_1h_pct=number(row.get("open_interest_change_percent_1h")),
                change_4h_pct=number(row.get("open_interest_change_percent_4h")),
                change_24h_pct=number(row.get("open_interest_change_percent_24h")),
            )
            if item.exchange == AGGREGATE:
                total = item
            else:
                out.append(item)
        out.sort(key=lambda e: -e.open_interest_usd)
        return OpenInterestByExchange(coin=coin, total=total, exchanges=out)

    async def long_short_ratio(self, symbol: str, exchange: str = "Binance", interval: str = "1h") -> AccountRatio:
        """The latest global long/short account ratio of the coin's USDT pair on `exchange`."""
        pair = f"{coin_of(symbol)}USDT"
        rows = await self._data(
            "/api/futures/global-long-short-account-ratio/history",
            {"exchange": exchange, "symbol": pair, "interval": interval, "limit": 1},
        )
        if not isinstance(rows, list) or not rows or not isinstance(rows[-1], dict):
            raise ProviderError(f"CoinGlass has no long/short ratio for {pair} on {exchange}")
        last = rows[-1]
        values = [number(last.get(k)) for k in ("global_account_long_percent", "global_account_short_percent")]
        ratio, at = number(last.get("global_account_long_short_ratio")), number(last.get("time"))
        if None in values or ratio is None or at is None:
            raise ProviderError(f"CoinGlass long/short row for {pair} is incomplete")
        return AccountRatio(
            exchange=exchange,
            pair=pair,
            long_pct=values[0] or 0.0,
            short_pct=values[1] or 0.0,
            ratio=ratio,
            at=datetime.fromtimestamp(at / 1000, UTC),
        )
