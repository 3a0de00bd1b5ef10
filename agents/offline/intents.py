"""Deterministic reading of common requests (price, levels, chart, positions, close half ...) for the offline model."""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, replace

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
# A number as typed: 60000, 60,000.5, 0.00001234, and scientific forms (1e6, 1.234e-05) read exactly.
_EXP = r"(?:e[+-]?\d+)?"
_DEC = rf"\d+(?:\.\d+)?{_EXP}"
_PCT = re.compile(rf"({_DEC})\s*%")
_FRACTIONS = {"half": 50.0, "a third": 33.33, "third": 33.33, "quarter": 25.0, "all": 100.0, "everything": 100.0}
_KEYWORD_NUMBER = r"\b{}\b\s*(?:at|=|:|of)?\s*\$?(\d[\d,]*(?:\.\d+)?" + _EXP + ")"
_STOP = r"(?:stop[ -]?loss|stop|sl)"
_TP = r"(?:take[ -]?profits?|tp\d?|target)"
# "2% below entry", "10 above my entry", "1.5 % under the current price": an offset from an anchor.
_OFFSET = re.compile(
    rf"({_DEC})\s*(%|percent)?\s+(below|under|above|over)\b"
    r"(?:\s+(?:the|my|current|last|mark|our)\b)*(?:\s+(entry|breakeven|price|market)\b)?"
)
_ANCHORS = {"entry": "entry", "breakeven": "entry", "price": "price", "market": "price"}
# A plain price token after a stop / take-profit keyword: "230", "$230", "@230", "60,500.5", "60k".
_LEVEL_TOKEN = re.compile(rf"[@=:]?\$?(\d[\d,]*(?:\.\d+)?{_EXP})(k)?[,;.!?]?")
_STOP_TO_ENTRY = re.compile(rf"\b{_STOP}\b(?:\s+\w+){{0,3}}?\s+(?:to|at)\s+(?:be|entry|my entry|the entry)\b")
_PARTIAL_CLOSE = re.compile(
    r"\btake\s+(?:half|a third|a quarter|\d+(?:\.\d+)?\s*%)\s+(?:off|out|profits?)\b"
    r"|\btake\s+profits?\s+(?:on|of|with)\s+(?:half|a third|a quarter|\d+(?:\.\d+)?\s*%)"
)

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
    # A stop / take-profit given relative to an anchor: `offset` (signed, below < 0), in percent when
    # `offset_pct`, from `anchor` ("entry" or "price"; None when the message did not say).
    offset: float | None = None
    offset_pct: bool = False
    anchor: str | None = None


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
    return _named_after_command(text)


# "price ethh", "/chart NOTACOIN 4h": a symbol in a command's place that the loop above did not know. Returned as
# written, so the market refuses it with its "did you mean"; only a caps token or a near-miss of a known coin
# counts, so "chart please" still asks which symbol.
_SYMBOL_COMMAND = re.compile(
    r"^/?(?:price|levels|structure|chart|analy[sz]e|overview)\s+(?:(?:of|for|on)\s+)?([A-Za-z0-9]{2,20})\b",
    re.IGNORECASE,
)


def _named_after_command(text: str) -> str | None:
    m = _SYMBOL_COMMAND.match(text.strip())
    if m is None:
        return None
    token = m.group(1)
    if token.isupper() or difflib.get_close_matches(token.upper(), KNOWN_BASES, n=1, cutoff=0.75):
        return token.upper()
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


@functools.lru_cache(maxsize=512)
def _word(w: str) -> re.Pattern[str]:
    return re.compile(rf"\b{w}\b")


def _has(text: str, *words: str) -> bool:
    return any(_word(w).search(text) for w in words)


def _level(keyword: str, text: str) -> float | None:
    """The price given after a stop / take-profit keyword, within a few words ("tp sol at 260", "sl btc 58000").

    None when there is none, or when the first number is a percentage or an offset ("2% below entry").
    """
    m = re.search(rf"\b{keyword}\b", text)
    if m is None:
        return None
    words = text[m.end() :].split()[:6]
    for i, word in enumerate(words):
        if "%" in word:
            return None
        n = _LEVEL_TOKEN.fullmatch(word)
        if n is None:
            continue
        following = words[i + 1] if i + 1 < len(words) else ""
        if following in ("%", "percent", "below", "under", "above", "over", "r", "x", "rr"):
            return None
        return float(n.group(1).replace(",", "")) * (1000 if n.group(2) else 1)
    return None


def _protective(text: str, base: Request) -> Request | None:
    """A stop or take-profit request: absolute, relative to entry or price, or the stop to breakeven."""
    stop = re.search(rf"\b{_STOP}\b", text)
    tp = re.search(rf"\b{_TP}\b", text)
    if stop is None and tp is None:
        return None
    kind = "set_stop" if stop is not None and (tp is None or stop.start() < tp.start()) else "set_tp"
    keyword = _STOP if kind == "set_stop" else _TP
    found = stop if kind == "set_stop" else tp
    assert found is not None
    start = found.start()
    if (rel := _OFFSET.search(text, start)) is not None:
        sign = -1.0 if rel.group(3) in ("below", "under") else 1.0
        anchor = _ANCHORS.get(rel.group(4) or "")
        return replace(base, kind=kind, offset=sign * float(rel.group(1)), offset_pct=bool(rel.group(2)), anchor=anchor)
    if kind == "set_stop" and _STOP_TO_ENTRY.search(text):
        return replace(base, kind="breakeven")
    price = _level(keyword, text)
    if price is None:
        return None
    if found.group(0) == "target" and not _has(text, "set", "move", "put", "place"):
        return None  # "my target is 260" is a view, not an order; "set target 260" is one
    return replace(base, kind=kind, price=price)


def _is_size(text: str) -> bool:
    if _has(text, "size", "sizing", "calculator", "how much should i", "position size"):
        return True
    return _number_after("entry", text) is not None and _number_after(_STOP, text) is not None


def parse_request(raw: str) -> Request:
    """Map a message to one of the requests the offline model knows."""
    text = raw.strip().lstrip("/").lower()
    symbol, tf = find_symbol(raw), _timeframe(text)
    side = "long" if _has(text, "long") else "short" if _has(text, "short") else None
    base = Request("unknown", symbol=symbol, timeframe=tf, side=side)
    if _has(text, "help", "commands", "start") and len(text.split()) <= 3:
        return Request("help")
    if _has(text, "breakeven", "break even", "break-even") and not _OFFSET.search(text):
        return replace(base, kind="breakeven")
    if _PARTIAL_CLOSE.search(text):
        return replace(base, kind="close", pct=_pct(text) or 100.0)
    size = _is_size(text)
    if not size and (order := _protective(text, base)) is not None:
        return order
    if _has(text, "close", "exit", "reduce", "trim", "flatten", "cut"):
        return replace(base, kind="close", pct=_pct(text) or 100.0)
    if size:
        return replace(
            base,
            kind="size",
            entry=_number_after("entry", text),
            stop=_number_after(_STOP, text),
            risk_pct=(float(m.group(1)) if (m := re.search(rf"risk\s*({_DEC})\s*%?", text)) else None),
            capital=_number_after("capital", text),
        )
    if _has(text, "chart", "picture", "plot"):
        return replace(base, kind="chart")
    if _has(text, "evaluate", "risk check", "check my", "how is my", "hold my", "should i hold"):
        return replace(base, kind="evaluate")
    if _has(text, "positions", "position", "open trades", "my trades"):
        return replace(base, kind="positions")
    if _has(text, "balance", "equity", "margin", "wallet"):
        return replace(base, kind="balance")
    if _has(text, "levels", "level", "structure", "support", "supports", "resistance", "resistances", "sr", "mcf"):
        return replace(base, kind="levels")
    if _has(text, "analyze", "analyse", "analysis", "setup", "trade idea", "should i") or (
        _has(text, "long", "short") and "or" in text.split()
    ):
        return replace(base, kind="analyze")
    if _has(text, "overview", "funding", "open interest", "oi", "volatility", "market"):
        return replace(base, kind="overview")
    if _has(text, "price", "quote", "how much is", "trading at", "worth") or (symbol and len(text.split()) == 1):
        return replace(base, kind="price")
    return base
