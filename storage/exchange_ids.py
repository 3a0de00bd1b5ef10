"""Exchange identifiers Bastion supports (ccxt ids plus the built-in paper exchange).

They live in storage, the lowest layer, because a stored account is validated against them; tools, bots and the
CLI read them from here (DESIGN §1: storage depends on nothing above it).
"""

from __future__ import annotations

PAPER = "paper"

# USDT-margined perpetuals through ccxt. Bitunix is not part of released ccxt, so it is not listed.
CCXT_EXCHANGES: tuple[str, ...] = ("binanceusdm", "bybit", "okx", "bitget", "blofin", "deribit")

SUPPORTED_EXCHANGES: tuple[str, ...] = (PAPER, *CCXT_EXCHANGES)

# Exchanges whose API needs a passphrase beside key and secret.
NEEDS_PASSWORD: frozenset[str] = frozenset({"okx", "bitget", "blofin"})


def is_supported(exchange_id: str) -> bool:
    """True when `exchange_id` is an exchange Bastion can trade on."""
    return exchange_id in SUPPORTED_EXCHANGES
