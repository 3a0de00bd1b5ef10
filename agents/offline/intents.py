"""Deterministic reading of common requests (price, levels, chart, positions, close half ...) for the offline model."""

from __future__ import annotations

import re
from dataclasses import dataclass

KNOWN_BASES = frozenset(
    [
        "BTC",
        "ETH",
        "SOL",
        "BNB",
        "XRP",
        "DOGE",
        "AVAX",
        "LINK",
        "ADA",
        "POL",
        "DOT",
        "LTC",
        "TRX",
        "TON",
        "SUI",
        "APT",
        "ARB",
        "OP",
        "NEAR",
        "ATOM",
        "UNI",
        "AAVE",
        "PEPE",
        "SHIB",
    ]
)
ALIASES = {"bitcoin": "BTC", "ethereum": "ETH", "ether": "ETH", "solana": "SOL", "ripple": "XRP", "dogecoin": "DOGE"}
_TF = re.compile(r"\b(15m|1h|4h|1d)\b")
_TF_WORDS = {"15 min": "15m", "hourly": "1h", "1 hour": "1h", "4 hour": "4h", "daily": "1d", "1 day": "1d"}
_PCT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_FRACTIONS = {"half": 50.0, "a third": 33.33, "third": 33.33, "quarter": 25.0, "all": 100.0, "everything": 100.0}
_KEYWORD_NUMBER = r"\b{}\b\s*(?:at|=|:|of)?\s*\$?(\d[\d,]*(?:\.\d+)?)"

Kind = str  # price | levels | chart | positions | balance | size | close | set_stop | set_tp | breakeven |
# evaluate | overview | analyze | help | unknown


@dataclass(frozen=True)
class Request:
    """What the user asked for, with the parameters found in the text."""

    kind: Kind
    symbol: str | None = None
    timeframe: str | None = None
    pct: float | None = None
    price: float | None = None
    side: str | None = None
    entry: float | None = None
    stop: float | None = None
    risk_pct: float | None = None
    capital: float | None = None


def find_symbol(text: str) -> str | None:
    """The first coin named in `text` (BTC, bitcoin, SOLUSDT, eth/usdt ...)."""
    for token in re.findall(r"[A-Za-z0-9]+(?:/[A-Za-z]+)?", text):
        low = token.lower()
        if low in ALIASES:
            return ALIASES[low]
        up = token.upper().split("/")[0]
        for quote in ("USDT", "USDC"):
            if up.endswith(quote) and len(up) > len(quote) + 1:
                return up[: -len(quote)]
        if up in KNOWN_BASES:
            return up
    return None


def _number_after(word: str, text: str) -> float | None:
    m = re.search(_KEYWORD_NUMBER.format(word), text)
    return float(m.group(1).replace(",", "")) if m else None


def _pct(text: str) -> float | None:
    if m := _PCT.search(text):
        return float(m.group(1))
    for word, value in _FRACTIONS.items():
        if re.search(rf"\b{word}\b", text):
            return value
    return None


def _timeframe(text: str) -> str | None:
    if m := _TF.search(text):
        return m.group(1)
    return next((tf for words, tf in _TF_WORDS.items() if words in text), None)


def _has(text: str, *words: str) -> bool:
    return any(re.search(rf"\b{w}\b", text) for w in words)


def parse_request(raw: str) -> Request:
    """Map a message to one of the requests the offline model knows."""
    text = raw.strip().lstrip("/").lower()
    symbol, tf = find_symbol(raw), _timeframe(text)
    side = "long" if _has(text, "long") else "short" if _has(text, "short") else None
    common = {"symbol": symbol, "timeframe": tf, "side": side}
    if _has(text, "help", "commands", "start") and len(text.split()) <= 3:
        return Request("help")
    if _has(text, "breakeven", "break even", "be"):
        return Request("breakeven", **common)
    price = _number_after("(?:stop loss|stop|sl)(?: to)?", text)
    if price and not _has(text, "size", "sizing", "entry"):
        return Request("set_stop", price=price, **common)
    tp = _number_after("(?:take profit|tp|target)(?: to)?", text)
    if tp and _has(text, "set", "move", "put", "place", "tp", "take profit"):
        return Request("set_tp", price=tp, **common)
    if _has(text, "close", "exit", "reduce", "trim", "flatten", "cut"):
        return Request("close", pct=_pct(text) or 100.0, **common)
    if _has(text, "size", "sizing", "calculator", "how much should i", "position size"):
        return Request(
            "size",
            entry=_number_after("entry", text),
            stop=_number_after("(?:stop loss|stop|sl)", text),
            risk_pct=(float(m.group(1)) if (m := re.search(r"risk\s*(\d+(?:\.\d+)?)\s*%?", text)) else None),
            capital=_number_after("capital", text),
            **common,
        )
    if _has(text, "chart", "picture", "plot"):
        return Request("chart", **common)
    if _has(text, "evaluate", "risk check", "check my", "how is my", "hold my", "should i hold"):
        return Request("evaluate", **common)
    if _has(text, "positions", "position", "open trades", "my trades"):
        return Request("positions", **common)
    if _has(text, "balance", "equity", "margin", "wallet"):
        return Request("balance", **common)
    if _has(text, "levels", "level", "structure", "support", "supports", "resistance", "resistances", "sr", "mcf"):
        return Request("levels", **common)
    if _has(text, "analyze", "analyse", "analysis", "setup", "trade idea", "should i") or (
        _has(text, "long", "short") and "or" in text.split()
    ):
        return Request("analyze", **common)
    if _has(text, "overview", "funding", "open interest", "oi", "volatility", "market"):
        return Request("overview", **common)
    if _has(text, "price", "quote", "how much is", "trading at", "worth") or (symbol and len(text.split()) == 1):
        return Request("price", **common)
    return Request("unknown", **common)
