"""Premium context of a symbol for the market overview, the MCF on-chain factor and the reports.

`PremiumData.context(symbol)` is the one call they use: derivatives (liquidations 1h/24h, heatmap bands, OI by
exchange, long/short accounts) and on-chain (whale flows of the coin and stablecoins, the largest transfers).
Every part degrades on its own to `{"available": false, "reason": ...}`: a provider that is not configured, down,
rate limited or refusing the key never breaks an answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from tools.market.providers.coinglass import CoinGlassClient, coin_of
from tools.market.providers.http import ProviderError
from tools.market.providers.whale_alert import MIN_USD, WhaleAlertClient, WhaleTransfer
from tools.market.providers.whales import STABLECOINS, WhaleFlows, flows_of, onchain_inputs
from tools.structure.score import OnChainInputs

log = logging.getLogger(__name__)
NOT_CONFIGURED = "not configured (no API key)"
WHALE_WINDOW = timedelta(hours=1)  # Whale Alert's free plans serve the last hour
TOP_TRANSFERS = 5


def not_available(reason: str) -> dict[str, Any]:
    """The shape of a part that could not be read."""
    return {"available": False, "reason": reason}


async def _part(name: str, read: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await read()
    except ProviderError as exc:
        return not_available(exc.user_message)
    except Exception as exc:  # a provider bug must not break an answer either; the log has it
        log.warning("premium %s failed", name, exc_info=True)
        return not_available(f"failed ({type(exc).__name__})")


class PremiumData:
    """The configured premium providers (either may be None) and the context they give a symbol."""

    def __init__(
        self,
        derivatives: CoinGlassClient | None = None,
        whales: WhaleAlertClient | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        from storage.types import utcnow

        self.derivatives, self.whales = derivatives, whales
        self._clock = clock or utcnow

    @property
    def configured(self) -> bool:
        """True when at least one provider has a key."""
        return self.derivatives is not None or self.whales is not None

    async def aclose(self) -> None:
        """Close the providers' connections."""
        for client in (self.derivatives, self.whales):
            if client is not None:
                await client.aclose()

    async def context(self, symbol: str) -> dict[str, Any]:
        """Derivatives and on-chain context of `symbol`, each part available or saying why not."""
        derivatives, onchain = await asyncio.gather(self.derivatives_context(symbol), self.onchain_context(symbol))
        return {"derivatives": derivatives, "onchain": onchain}

    async def derivatives_context(self, symbol: str) -> dict[str, Any]:
        """Liquidations (1h, 24h), heatmap bands, OI by exchange and long/short accounts from CoinGlass."""
        cg = self.derivatives
        if cg is None:
            return not_available(NOT_CONFIGURED)

        async def liquidations(window: str) -> dict[str, Any]:
            liq = await cg.liquidations(symbol, window)
            return {"total_usd": liq.total_usd, "long_usd": liq.long_usd, "short_usd": liq.short_usd}

        async def heatmap() -> dict[str, Any]:
            h = await cg.liquidation_heatmap(symbol)
            return {"window": h.window, "above": [lv.model_dump() for lv in h.above],
                    "below": [lv.model_dump() for lv in h.below]}  # fmt: skip

        async def oi() -> dict[str, Any]:
            o = await cg.open_interest_by_exchange(symbol)
            total = o.total.model_dump(exclude={"exchange"}) if o.total else None
            return {"total": total, "top_exchanges": [e.model_dump() for e in o.exchanges[:5]]}

        async def accounts() -> dict[str, Any]:
            r = await cg.long_short_ratio(symbol)
            return {"exchange": r.exchange, "long_pct": r.long_pct, "short_pct": r.short_pct, "ratio": r.ratio}

        parts = await asyncio.gather(
            _part("liquidations_1h", lambda: liquidations("1h")),
            _part("liquidations_24h", lambda: liquidations("24h")),
            _part("heatmap", heatmap),
            _part("open_interest", oi),
            _part("long_short", accounts),
        )
        names = ("liquidations_1h", "liquidations_24h", "liquidation_heatmap", "open_interest_by_exchange",
                 "long_short_accounts")  # fmt: skip
        return {
            "available": True,
            "source": "CoinGlass",
            "coin": coin_of(symbol),
            **dict(zip(names, parts, strict=True)),
        }

    async def transfers(self, symbol: str) -> tuple[list[WhaleTransfer], list[WhaleTransfer]]:
        """The last hour's $1M+ transfers of the coin, and of stablecoins (mints and burns lean the market)."""
        wa = self.whales
        if wa is None:
            raise ProviderError(NOT_CONFIGURED)
        since = self._clock() - WHALE_WINDOW
        every = await wa.transactions(since, MIN_USD)  # one request serves the coin and the stablecoins
        coin = coin_of(symbol).lower()
        return [t for t in every if t.currency == coin], [t for t in every if t.currency in STABLECOINS]

    async def onchain_context(self, symbol: str) -> dict[str, Any]:
        """Whale flows of the coin and stablecoins over the last hour with the largest transfers and their lean."""

        async def read() -> dict[str, Any]:
            coin, stable = await self.transfers(symbol)
            flows, stable_flows = flows_of(coin), flows_of(stable)
            largest = sorted(coin, key=lambda t: -t.amount_usd)[:TOP_TRANSFERS]
            return {
                "available": True,
                "source": "Whale Alert",
                "window_hours": WHALE_WINDOW.total_seconds() / 3600,
                **_flows(flows),
                "stablecoin_net_mint_usd": stable_flows.stablecoin_net_mint,
                "largest": [
                    {
                        "usd": t.amount_usd,
                        "from": t.from_owner,
                        "to": t.to_owner,
                        "kind": t.kind,
                        "lean": t.lean,
                        "at": t.at.isoformat(),
                    }
                    for t in largest
                ],
            }

        return dict(await _part("onchain", read))

    async def onchain_inputs(self, symbol: str) -> OnChainInputs:
        """The MCF on-chain factor's inputs for `symbol`; all None (not available) when the feed cannot answer."""
        try:
            coin, stable = await self.transfers(symbol)
        except ProviderError:
            return OnChainInputs()
        return onchain_inputs(flows_of(coin), flows_of(stable))


def _flows(f: WhaleFlows) -> dict[str, Any]:
    return {
        "transfers": f.transfers,
        "whale_net_flow_usd": f.whale_net_flow,
        "exchange_net_flow_usd": f.exchange_net_flow,
        "bias": f.bias,
    }


def premium_from_settings(settings: Any) -> PremiumData | None:
    """The premium providers whose keys are set in `BASTION_PROVIDERS__*`; None when neither is."""
    cg_key = settings.coinglass_api_key.get_secret_value()
    wa_key = settings.whale_alert_api_key.get_secret_value()
    if not (cg_key or wa_key):
        return None
    return PremiumData(
        CoinGlassClient(cg_key, base_url=settings.coinglass_base_url, timeout_s=settings.timeout_s) if cg_key else None,
        WhaleAlertClient(wa_key, base_url=settings.whale_alert_base_url, timeout_s=settings.timeout_s)
        if wa_key
        else None,
    )


def _m(usd: float) -> str:
    return f"${usd / 1e6:,.1f}M"


def summary_lines(context: dict[str, Any]) -> list[str]:
    """Plain-words lines of a `PremiumData.context` for reports and the overview (n/a parts say so)."""
    d, o = context.get("derivatives") or {}, context.get("onchain") or {}
    lines: list[str] = []
    if not d.get("available"):
        lines.append(f"- Derivatives data: not available ({d.get('reason', 'not configured')}).")
    else:
        liq = d.get("liquidations_1h") or {}
        if liq.get("available", True) and "total_usd" in liq:
            lines.append(
                f"- Liquidations 1h: {_m(liq['total_usd'])} (longs {_m(liq['long_usd'])}, "
                f"shorts {_m(liq['short_usd'])}) [{d.get('source')}]."
            )
        heat = d.get("liquidation_heatmap") or {}
        if heat.get("above") or heat.get("below"):
            above = ", ".join(f"{lv['price']:g} ({_m(lv['usd'])})" for lv in heat.get("above", []))
            below = ", ".join(f"{lv['price']:g} ({_m(lv['usd'])})" for lv in heat.get("below", []))
            lines.append(f"- Liquidation clusters above: {above or 'none'}; below: {below or 'none'}.")
        ls = d.get("long_short_accounts") or {}
        if "ratio" in ls:
            lines.append(f"- Accounts long/short on {ls['exchange']}: {ls['long_pct']:g}% / {ls['short_pct']:g}%.")
    if not o.get("available"):
        lines.append(f"- Whale flows: not available ({o.get('reason', 'not configured')}).")
    else:
        lines.append(
            f"- Whale flows {o['window_hours']:g}h: {o['transfers']} transfers, net {_m(o['whale_net_flow_usd'])} "
            f"toward holders, exchange net flow {_m(o['exchange_net_flow_usd'])}, stablecoin net mint "
            f"{_m(o['stablecoin_net_mint_usd'])}: leans {o['bias']}."
        )
    return lines
