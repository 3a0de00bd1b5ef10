"""What the alert job needs from the optional premium providers (tools/market/providers/ implement these).

Structural Protocols, so a provider written in `tools/` (below `engine/`) fits without importing anything from
here. A feed that is not configured is `None` and its rule is inactive; a feed that fails raises (any
exception) and its rule is silent for that cycle only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable


class WhaleTransferLike(Protocol):
    """One on-chain transfer as the whale feed reports it."""

    @property
    def id(self) -> str:
        """Stable id of the transfer (the transaction hash): each transfer alerts once."""
        ...

    @property
    def amount_usd(self) -> float:
        """Value of the transfer in USD."""
        ...

    @property
    def from_owner(self) -> str:
        """Owner type or name of the sender (an exchange name, 'unknown')."""
        ...

    @property
    def to_owner(self) -> str:
        """Owner type or name of the receiver."""
        ...

    @property
    def at(self) -> datetime:
        """When the transfer happened (UTC)."""
        ...

    @property
    def lean(self) -> str | None:
        """'bullish' / 'bearish' by the SPEC §3 heuristics, None when neutral or unknown."""
        ...


@runtime_checkable
class LiquidationFeed(Protocol):
    """Derivatives-data provider: liquidated notional per symbol."""

    async def liquidations_usd(self, symbol: str, hours: float = 1.0) -> float | None:
        """USD liquidated (longs + shorts) on `symbol` over the last `hours`; None when the provider has no figure."""
        ...


@runtime_checkable
class WhaleFeed(Protocol):
    """On-chain whale-transfer provider."""

    async def whale_transfers(self, symbol: str, since: datetime, min_usd: float) -> Sequence[WhaleTransferLike]:
        """Transfers of `symbol`'s asset of at least `min_usd` since `since`, oldest first."""
        ...
