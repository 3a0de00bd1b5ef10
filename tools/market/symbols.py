"""Symbol normalisation: every common spelling of a USDT perpetual resolves to ccxt's unified form."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from tools.market.base import UnknownSymbolError

DEFAULT_QUOTE = "USDT"
# Longest first so "BTCUSDC" is not read as base "BTCUS" + "DC".
_QUOTES: tuple[str, ...] = ("FDUSD", "USDT", "USDC", "BUSD", "USD")
_SEPARATORS = re.compile(r"[\s/_\-:]+")
_BASE = re.compile(r"^[A-Z0-9]{1,20}$")
# Suffixes that name a contract type rather than an asset (okx "-SWAP", TradingView ".P", "PERP").
_CONTRACT_SUFFIXES: tuple[str, ...] = (".P", "-SWAP", "_SWAP", "SWAP", "-PERP", "_PERP", "PERP")


@dataclass(frozen=True, slots=True)
class SymbolParts:
    """A parsed symbol: base, quote and settle currency (settle None = spot)."""

    base: str
    quote: str
    settle: str | None

    @property
    def unified(self) -> str:
        """ccxt unified symbol, e.g. BTC/USDT:USDT (perp) or BTC/USDT (spot)."""
        pair = f"{self.base}/{self.quote}"
        return f"{pair}:{self.settle}" if self.settle else pair

    @property
    def file_stem(self) -> str:
        """Spot-style file stem as freqtrade/ccxt downloads name it, e.g. BTC_USDT."""
        return f"{self.base}_{self.quote}"


def parse_symbol(text: str, default_quote: str = DEFAULT_QUOTE) -> SymbolParts:
    """Parse btc / BTCUSDT / BTC/USDT / BTC/USDT:USDT / BTC-USDT-SWAP into parts (perp by default)."""
    raw = text.strip().upper()
    if not raw:
        raise UnknownSymbolError(text, [])
    for suffix in _CONTRACT_SUFFIXES:
        if raw.endswith(suffix) and len(raw) > len(suffix):
            raw = raw[: -len(suffix)]
            break
    settle: str | None = None
    if ":" in raw:
        raw, _, settle_part = raw.partition(":")
        settle = settle_part.strip() or None
    pieces = [p for p in _SEPARATORS.split(raw) if p]
    if len(pieces) == 1:
        base, quote = _split_concatenated(pieces[0], default_quote)
    elif len(pieces) == 2:
        base, quote = pieces
    else:
        raise UnknownSymbolError(text, [])
    if not (_BASE.match(base) and _BASE.match(quote)):
        raise UnknownSymbolError(text, [])
    # A bare pair means the linear perpetual settled in its quote: Bastion trades perps.
    return SymbolParts(base=base, quote=quote, settle=settle or quote)


def _split_concatenated(token: str, default_quote: str) -> tuple[str, str]:
    for quote in _QUOTES:
        if token.endswith(quote) and len(token) > len(quote):
            return token[: -len(quote)], quote
    return token, default_quote


def normalise_symbol(text: str, default_quote: str = DEFAULT_QUOTE) -> str:
    """The unified perp symbol for any common spelling (no existence check)."""
    return parse_symbol(text, default_quote).unified


def resolve_symbol(
    text: str, known: Iterable[str], default_quote: str = DEFAULT_QUOTE, *, available: Iterable[str] = ()
) -> str:
    """Resolve `text` against the `known` unified symbols; UnknownSymbolError lists close matches, else the
    short `available` listing (a small universe names what does exist)."""
    known_set = set(known)
    try:
        parts = parse_symbol(text, default_quote)
    except UnknownSymbolError:
        raise UnknownSymbolError(text, close_matches(text, known_set), available) from None
    for candidate in (parts.unified, SymbolParts(parts.base, parts.quote, None).unified):
        if candidate in known_set:
            return candidate
    raise UnknownSymbolError(text, close_matches(text, known_set), available)


def _market_rank(symbol: str) -> tuple[int, int, str]:
    usdt = 0 if f"/{DEFAULT_QUOTE}" in symbol else 1
    if ":" not in symbol:
        return 1, usdt, symbol
    return (2 if "-" in symbol.split(":", 1)[1] else 0), usdt, symbol


def close_matches(text: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Up to `n` known symbols whose base looks like the asked one (typo help)."""
    by_base: dict[str, str] = {}
    # Perps first, then spot, then dated futures: the first spelling seen for a base is suggested.
    for sym in sorted(set(known), key=_market_rank):
        by_base.setdefault(sym.split("/", 1)[0], sym)
    try:
        asked = parse_symbol(text).base
    except UnknownSymbolError:
        asked = re.sub(r"[^A-Z0-9]", "", text.upper())
    bases = difflib.get_close_matches(asked, list(by_base), n=n, cutoff=0.5)
    return [by_base[b] for b in bases]
