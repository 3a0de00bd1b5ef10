"""Whale Alert REST API v1 (https://api.whale-alert.io/v1, `api_key` query parameter): large on-chain transfers
with the owner type of each side (exchange / unknown / ...).

Written for the documented `GET /transactions?start=&min_value=&currency=&cursor=` answer
`{"result": "success", "cursor": ..., "count": n, "transactions": [...]}` and its error answer
`{"result": "error", "message": ...}` (401 bad key, 429 usage limit, 400 bad parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tools.market.providers.http import ProviderClient, ProviderError, number
from tools.market.providers.whales import Lean, lean_of

BASE_URL = "https://api.whale-alert.io/v1"
MIN_USD = 1_000_000.0  # SPEC §3: transfers of $1M and more
PAGE = 100  # the API's maximum per page
MAX_PAGES = 5  # a quiet hour is one page; a burst is capped rather than followed forever


@dataclass(frozen=True, slots=True)
class WhaleTransfer:
    """One large transfer: what moved, how much, between which kinds of owner, and which way it leans."""

    id: str
    blockchain: str
    currency: str  # lower-case ticker as Whale Alert sends it ("btc", "usdt")
    kind: str  # transfer | mint | burn | lock | unlock
    amount: float
    amount_usd: float
    from_owner_type: str
    to_owner_type: str
    from_name: str
    to_name: str
    at: datetime

    @property
    def from_owner(self) -> str:
        """The sender as people name it: the exchange's name, else its owner type."""
        return self.from_name or self.from_owner_type

    @property
    def to_owner(self) -> str:
        """The receiver as people name it."""
        return self.to_name or self.to_owner_type

    @property
    def lean(self) -> Lean | None:
        """'bullish' / 'bearish' by the SPEC §3 heuristics, None when neutral."""
        return lean_of(self.currency, self.kind, self.from_owner_type, self.to_owner_type)


def _side(raw: Any) -> tuple[str, str]:
    if not isinstance(raw, dict):
        return "unknown", ""
    return str(raw.get("owner_type") or "unknown").lower(), str(raw.get("owner") or "")


def parse_transfer(raw: Any) -> WhaleTransfer | None:
    """A transfer from one `transactions` item; None for an item missing what a transfer needs."""
    if not isinstance(raw, dict):
        return None
    usd, stamp = number(raw.get("amount_usd")), number(raw.get("timestamp"))
    ident = raw.get("hash") or raw.get("id")
    if usd is None or stamp is None or not ident:
        return None
    (from_type, from_name), (to_type, to_name) = _side(raw.get("from")), _side(raw.get("to"))
    return WhaleTransfer(
        id=str(ident),
        blockchain=str(raw.get("blockchain") or ""),
        currency=str(raw.get("symbol") or "").lower(),
        kind=str(raw.get("transaction_type") or "transfer").lower(),
        amount=number(raw.get("amount")) or 0.0,
        amount_usd=usd,
        from_owner_type=from_type,
        to_owner_type=to_type,
        from_name=from_name,
        to_name=to_name,
        at=datetime.fromtimestamp(stamp, UTC),
    )


class WhaleAlertClient(ProviderClient):
    """Async Whale Alert client; raises ProviderError for every failure."""

    name = "Whale Alert"
    base_url = BASE_URL
    page = PAGE  # transfers asked per request (a test reads smaller recorded pages)

    async def transactions(
        self, since: datetime, min_usd: float = MIN_USD, currency: str | None = None
    ) -> list[WhaleTransfer]:
        """Transfers of at least `min_usd` since `since` (optionally one currency), oldest first, pages followed."""
        params: dict[str, Any] = {
            "api_key": self._key,  # a query parameter by the API's design
            "start": int(since.timestamp()),
            "min_value": int(min_usd),
            "limit": self.page,
        }
        if currency:
            params["currency"] = currency.lower()
        seen: dict[str, WhaleTransfer] = {}
        for _ in range(MAX_PAGES):
            body = await self.get_json("/transactions", params)
            if not isinstance(body, dict) or body.get("result") != "success":
                raise ProviderError(f"Whale Alert refused the request: {self.error_text(body) or 'error'}")
            items = body.get("transactions") or []
            if not isinstance(items, list):
                raise ProviderError("Whale Alert answered an unexpected shape (transactions is not a list)")
            for item in items:
                t = parse_transfer(item)
                if t is not None and t.amount_usd >= min_usd:
                    seen.setdefault(t.id, t)  # a transfer on a page boundary comes back on the next page
            cursor = body.get("cursor")
            if len(items) < self.page or not cursor:
                break
            params["cursor"] = cursor
        return sorted(seen.values(), key=lambda t: t.at)

    async def whale_transfers(self, symbol: str, since: datetime, min_usd: float) -> list[WhaleTransfer]:
        """Transfers of `symbol`'s asset (the alert rules' WhaleFeed)."""
        return await self.transactions(since, min_usd, currency=symbol.split("/")[0].lower())
