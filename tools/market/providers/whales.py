"""The whale heuristics of SPEC §3 and the on-chain flows they add up to (the MCF on-chain factor's inputs).

Bullish: coins leaving exchanges, stablecoin mints, unknown → unknown transfers (accumulation).
Bearish: deposits to exchanges (whale → exchange), stablecoin burns.
Stablecoins moving between wallets or onto exchanges are buying power, not selling pressure, so only their
mints and burns lean; exchange → exchange moves are internal and neutral.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from tools.structure.score import OnChainInputs

Lean = Literal["bullish", "bearish"]
STABLECOINS = frozenset({"usdt", "usdc", "busd", "dai", "tusd", "fdusd", "pyusd", "usde", "usdp"})
EXCHANGE = "exchange"


def lean_of(currency: str, kind: str, from_type: str, to_type: str) -> Lean | None:
    """Which way one transfer leans by SPEC §3, None when neutral."""
    stable = currency.lower() in STABLECOINS
    if kind == "mint":
        return "bullish" if stable else None
    if kind == "burn":
        return "bearish" if stable else None
    if kind != "transfer" or stable:
        return None
    from_ex, to_ex = from_type == EXCHANGE, to_type == EXCHANGE
    if from_ex and not to_ex:
        return "bullish"  # withdrawn from an exchange: off the market
    if to_ex and not from_ex:
        return "bearish"  # deposited to an exchange: ready to sell
    if from_type == "unknown" and to_type == "unknown":
        return "bullish"
    return None


class TransferLike(Protocol):
    """What the flows need of a transfer (whale_alert.WhaleTransfer has it); read-only, as a frozen dataclass is."""

    @property
    def currency(self) -> str:
        """Lower-case ticker."""
        ...

    @property
    def kind(self) -> str:
        """transfer | mint | burn | lock | unlock."""
        ...

    @property
    def amount_usd(self) -> float:
        """Value moved, in USD."""
        ...

    @property
    def from_owner_type(self) -> str:
        """Kind of the sender (exchange, unknown, ...)."""
        ...

    @property
    def to_owner_type(self) -> str:
        """Kind of the receiver."""
        ...


@dataclass(frozen=True, slots=True)
class WhaleFlows:
    """USD flows of a set of transfers: coin transfers by lean, exchange net flow, stablecoin net mint."""

    transfers: int
    bullish_usd: float
    bearish_usd: float
    exchange_inflow_usd: float
    exchange_outflow_usd: float
    stablecoin_mint_usd: float
    stablecoin_burn_usd: float

    @property
    def whale_net_flow(self) -> float:
        """Bullish minus bearish coin transfers (+ = coins leaving exchanges / accumulating)."""
        return self.bullish_usd - self.bearish_usd

    @property
    def exchange_net_flow(self) -> float:
        """Net coins into exchanges (+ = inflow, bearish)."""
        return self.exchange_inflow_usd - self.exchange_outflow_usd

    @property
    def stablecoin_net_mint(self) -> float:
        """Mints minus burns (+ = new buying power)."""
        return self.stablecoin_mint_usd - self.stablecoin_burn_usd

    @property
    def bias(self) -> str:
        """bullish / bearish / neutral by the sum of the three flows' signs."""
        votes = _sign(self.whale_net_flow) - _sign(self.exchange_net_flow) + _sign(self.stablecoin_net_mint)
        return "bullish" if votes > 0 else "bearish" if votes < 0 else "neutral"


def _sign(x: float) -> int:
    return 1 if x > 0 else -1 if x < 0 else 0


def flows_of(transfers: Iterable[TransferLike]) -> WhaleFlows:
    """Add up transfers into the flows the MCF on-chain factor reads."""
    n = 0
    bull = bear = inflow = outflow = mint = burn = 0.0
    for t in transfers:
        n += 1
        usd = t.amount_usd
        stable = t.currency.lower() in STABLECOINS
        lean = lean_of(t.currency, t.kind, t.from_owner_type, t.to_owner_type)
        if stable:
            mint += usd if t.kind == "mint" else 0.0
            burn += usd if t.kind == "burn" else 0.0
            continue
        bull += usd if lean == "bullish" else 0.0
        bear += usd if lean == "bearish" else 0.0
        if t.kind == "transfer" and (t.to_owner_type == EXCHANGE) != (t.from_owner_type == EXCHANGE):
            if t.to_owner_type == EXCHANGE:
                inflow += usd
            else:
                outflow += usd
    return WhaleFlows(n, bull, bear, inflow, outflow, mint, burn)


def onchain_inputs(coin: WhaleFlows | None, stablecoins: WhaleFlows | None = None) -> OnChainInputs:
    """The MCF on-chain factor's inputs: the coin's whale and exchange flows, stablecoin mints/burns.

    A flow with no transfers at all is "not available" (None), never a made-up zero vote.
    """
    has_coin = coin is not None and coin.transfers > 0
    has_stable = stablecoins is not None and stablecoins.transfers > 0
    return OnChainInputs(
        whale_net_flow=coin.whale_net_flow if has_coin and coin else None,
        exchange_net_flow=coin.exchange_net_flow if has_coin and coin else None,
        stablecoin_net_mint=stablecoins.stablecoin_net_mint if has_stable and stablecoins else None,
    )
