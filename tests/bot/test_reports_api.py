"""GET /v1/reports lists stored reports (by symbol, limited) and GET /v1/reports/{id} fetches one with its chart."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.api.app import create_app
from bot.api.reports import reports_router
from storage.repositories import reports as reports_repo

PNG = b"\x89PNG\r\n\x1a\n" + b"chart" * 100
T0 = datetime(2026, 2, 1, tzinfo=UTC)


async def _ok() -> bool:
    return True


async def test_the_api_lists_and_fetches_reports(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        for i, symbol in enumerate(["BTC/USDT:USDT", "ETH/USDT:USDT", "BTC/USDT:USDT"]):
            await reports_repo.add_report(
                session, symbol=symbol, timeframe="4h", kind="scheduled", bias="bullish", confidence=0.7,
                content={"symbol": symbol, "n": i}, text=f"**{symbol} 4h report** {i}", chart=PNG if i != 1 else None,
                as_of=T0, now=T0 + timedelta(hours=i),
            )  # fmt: skip
    app = create_app(database_ok=_ok, routers=[reports_router(sessions)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        every = (await client.get("/v1/reports")).json()
        assert [r["symbol"] for r in every] == ["BTC/USDT:USDT", "ETH/USDT:USDT", "BTC/USDT:USDT"]  # newest first
        btc = (await client.get("/v1/reports", params={"symbol": "btc", "limit": 1})).json()
        assert len(btc) == 1 and btc[0]["id"] == every[0]["id"] and btc[0]["chart_url"].endswith("/chart.png")
        one = (await client.get(f"/v1/reports/{btc[0]['id']}")).json()
        assert one["text"] == "**BTC/USDT:USDT 4h report** 2" and one["content"]["n"] == 2
        assert base64.b64decode(one["chart_png_base64"]) == PNG
        png = await client.get(btc[0]["chart_url"])
        assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content == PNG
        eth = (await client.get(f"/v1/reports/{every[1]['id']}")).json()
        assert eth["chart_png_base64"] is None and eth["chart_url"] is None
        assert (await client.get(f"/v1/reports/{every[1]['id']}/chart.png")).status_code == 404
        # Bad input gets a clear 4xx, never a 5xx.
        assert (await client.get("/v1/reports/999999")).status_code == 404
        for bad in ({"limit": 0}, {"limit": 101}, {"symbol": "x" * 41}, {"symbol": "!!"}):
            assert (await client.get("/v1/reports", params=bad)).status_code == 422, bad
        for path in ("/v1/reports/0", "/v1/reports/abc", f"/v1/reports/{2**63}"):
            assert (await client.get(path)).status_code == 422, path
