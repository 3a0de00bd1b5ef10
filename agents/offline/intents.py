"""Deterministic reading of common requests (price, levels, chart, positions, close half ...) for the offline model."""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, replace

from agents.offline.fallback import language_of
from engine.reports.phrases import spoken_command
from tools.calculators.phrases import is_monte_carlo, parse_sizing

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
# Timeframes in words; weekly and monthly read as 1d, the longest timeframe the engines analyse.
_TF_WORDS = {
    "15 min": "15m",
    "15-min": "15m",
    "quarter-hour": "15m",
    "4 hour": "4h",
    "4-hour": "4h",
    "4 hr": "4h",
    "four hour": "4h",
    "four-hour": "4h",
    "hourly": "1h",
    "1 hour": "1h",
    "1-hour": "1h",
    "one hour": "1h",
    "daily": "1d",
    "1 day": "1d",
    "the day": "1d",
    "weekly": "1d",
    "the week": "1d",
    "monthly": "1d",
    "1w": "1d",
}
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

# Entries: one grammar for `/long`, `/short` and free text ("open a long 0.05 btc with the stop at 93k").
ENTRY_USAGE = "<symbol> <size|risk%> [stop <price>|auto] [tp <p1,p2>] [lev <n>] [limit <price> [for 4h]] [15m|1h|4h|1d]"
ENTRY_EXAMPLES = (
    "long 0.1 sol stop auto",
    "short btc 1% stop 97000 tp 93000,91000 lev 3",
    "long eth 0.5 limit 3000 stop 2900",
)
_ENTRY_START = re.compile(
    r"^(?:(?:please|pls)\s+)?(long|short|buy|sell)\b"
    r"|\b(?:open|go|enter|take|place|start)\s+(?:me\s+)?(?:a\s+|an\s+)?(?:new\s+)?(long|short)\b"
)
_NUM = r"\$?(\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?|\.\d+)(k)?"
# "stop 3% below": an entry's stop is a price or the structural one; a percentage is never read as either (nor as
# the risk), it gets a question instead.
_ENTRY_STOP_PCT = re.compile(rf"\b(?:stop[ -]?loss|stop|sl)\b(?:\s+(?:at|@|=|to|of|is|on))?\s*{_NUM}\s*%")
_ENTRY_STOP = re.compile(
    rf"\b(?:stop[ -]?loss|stop|sl)\b(?:\s+(?:at|@|=|to|of|is|on))?\s*(?:{_NUM}(?![\d.%x])|(auto\w*|structur\w*|"
    r"above|below|under|over|behind|beyond)\b)"
)
_ENTRY_AUTO = re.compile(r"\b(?:structural|auto)\s+stop\b")
_ENTRY_TP = re.compile(
    r"\b(?:tp|targets?|take[ -]?profits?)\b(?:\s+(?:at|@|=|of))?\s*"
    r"(\$?\d[\d.]*(?:e[+-]?\d+)?k?(?:\s*[,/]\s*\$?\d[\d.]*(?:e[+-]?\d+)?k?)*)"
)
_ENTRY_LEV = re.compile(r"\b(?:lev(?:erage)?|x)\s*(?:of\s+|at\s+|=\s*)?(\d+)\s*x?\b|\b(\d+)\s*x\b")
_ENTRY_LIMIT = re.compile(rf"\blimit\b(?:\s+(?:order|entry))?(?:\s+(?:at|@|=))?\s*{_NUM}")
# How long a limit entry rests: "limit 95000 for 4h", "expires in 90m", "good for 2 days".
_ENTRY_EXPIRY = re.compile(
    r"\b(?:for|expir(?:es|y|ing)?(?:\s+in|\s+after)?|valid\s+for|good\s+for|gtd)\s+"
    r"(\d+(?:\.\d+)?)\s*(m|mins?|minutes?|h|hrs?|hours?|d|days?)\b"
)
_EXPIRY_UNIT_H = {"m": 1 / 60, "h": 1.0, "d": 24.0}
_ENTRY_RISK = re.compile(
    rf"\brisk(?:ing)?\b(?:\s+(?:of|at|=))?\s*({_DEC})\s*%?|({_DEC})\s*%(?:\s+(?:risk|of\s+(?:my\s+)?capital))?"
)
_WORD_LIST = (
    "long short buy sell open go enter take place start me a an new with the my at of on stop sl loss auto tp "
    "target targets lev leverage limit risk risking please pls and size units coins position trade entry market x "
    "for expires expiry valid good gtd"
)
_ENTRY_WORDS = frozenset(_WORD_LIST.split())


def _amount_text(value: str, k: str | None) -> float:
    return float(value.replace(",", "").replace("$", "")) * (1000 if k else 1)


def is_entry(text: str) -> bool:
    """Whether the message asks to open a position ("long 0.1 sol stop auto", "open a short on eth ...")."""
    low = text.strip().lstrip("/").lower()
    return _ENTRY_START.search(low) is not None and not _has(low, "close", "exit", "reduce", "or")


def parse_entry(text: str, side: str | None = None) -> dict[str, object]:
    """The arguments of an entry in the shared grammar (`ENTRY_USAGE`): symbol, side, size or risk, stop, targets,
    leverage, limit price and timeframe; only what the text says (validation happens on the arguments)."""
    low = text.strip().lstrip("/").lower()
    out: dict[str, object] = {}
    if side is None and (m := _ENTRY_START.search(low)):
        word = m.group(1) or m.group(2)
        side = {"buy": "long", "sell": "short"}.get(word, word)
    if side:
        out["side"] = side
    rest = low
    if m := _ENTRY_STOP_PCT.search(rest):
        out["relative_stop"] = m.group(0)
        rest = rest[: m.start()] + " " + re.sub(r"^\s*(?:below|under|above|over)\b", " ", rest[m.end() :])
    elif m := _ENTRY_STOP.search(rest):
        if m.group(1) is not None:
            out["stop_price"] = _amount_text(m.group(1), m.group(2))
        else:
            out["auto_stop"] = True
        rest = rest[: m.start()] + " " + rest[m.end() :]
    elif _ENTRY_AUTO.search(rest):
        out["auto_stop"] = True
        rest = _ENTRY_AUTO.sub(" ", rest)
    if m := _ENTRY_TP.search(rest):
        out["targets"] = [
            _amount_text(t.strip().rstrip("k"), "k" if t.strip().endswith("k") else None)
            for t in re.split(r"[,/]", m.group(1))
            if t.strip()
        ]
        rest = rest[: m.start()] + " " + rest[m.end() :]
    if m := _ENTRY_LIMIT.search(rest):
        out["limit_price"] = _amount_text(m.group(1), m.group(2))
        rest = rest[: m.start()] + " " + rest[m.end() :]
    if "limit_price" in out and (m := _ENTRY_EXPIRY.search(rest)):  # only a resting limit can expire
        out["expiry_hours"] = round(float(m.group(1)) * _EXPIRY_UNIT_H[m.group(2)[0]], 6)
        rest = rest[: m.start()] + " " + rest[m.end() :]
    if m := _ENTRY_LEV.search(rest):
        out["leverage"] = int(m.group(1) or m.group(2))
        rest = rest[: m.start()] + " " + rest[m.end() :]
    if m := _ENTRY_RISK.search(rest):
        out["risk_pct"] = float(m.group(1) or m.group(2))
        rest = rest[: m.start()] + " " + rest[m.end() :]
    if tf := _timeframe(rest):
        out["timeframe"] = tf
        rest = _TF.sub(" ", rest)
    if m := re.search(rf"(?<![\w.]){_NUM}(?![\w%])", rest):
        out["amount"] = _amount_text(m.group(1), m.group(2))
        rest = rest[: m.start()] + " " + rest[m.end() :]
    symbol = find_symbol(rest)
    if symbol is None:
        words = [w for w in re.findall(r"[a-z][a-z0-9/:]*", rest) if w not in _ENTRY_WORDS]
        symbol = words[0].upper() if words else None
    if symbol:
        out["symbol"] = symbol
    return out


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
    # An entry's arguments in the shared grammar (see `parse_entry`), as sorted (name, value) pairs.
    entry_args: tuple[tuple[str, object], ...] = ()
    # The calculator's inputs as typed (see `tools.calculators.phrases`), as sorted (name, value) pairs.
    size_args: tuple[tuple[str, object], ...] = ()
    language: str = "en"  # of an unmapped question, for its short answer (`agents.offline.fallback`)


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


def _typed(values: dict[str, float | bool], name: str) -> float | None:
    value = values.get(name)
    return None if value is None or isinstance(value, bool) else float(value)


def _is_size(text: str) -> bool:
    if _has(text, "size", "sizing", "calculator", "how much should i", "position size", "kelly"):
        return True
    return _number_after("entry", text) is not None and _number_after(_STOP, text) is not None


_WINNERS = re.compile(r"\b(?:winners|winning|profitable|in profit|green)\b")
_ALL = re.compile(r"\b(?:all|everything|every)\b")


def _batch(text: str, symbol: str | None) -> str | None:
    """flatten_winners ("flatten all winners"), close_all ("close everything"), cancel_all ("cancel all orders")."""
    if _has(text, "flatten", "close", "exit", "take profit on") and _WINNERS.search(text):
        return "flatten_winners"
    if symbol is None and _has(text, "close", "flatten", "exit") and _ALL.search(text):
        return "close_all"
    if _has(text, "cancel") and (_ALL.search(text) or _has(text, "orders")) and symbol is None:
        return "cancel_all"
    return None


def parse_request(raw: str) -> Request:
    """Map a message to one of the requests the offline model knows."""
    text = raw.strip().lstrip("/").lower()
    symbol, tf = find_symbol(raw), _timeframe(text)
    side = "long" if _has(text, "long") else "short" if _has(text, "short") else None
    base = Request("unknown", symbol=symbol, timeframe=tf, side=side)
    if _has(text, "help", "commands", "start") and len(text.split()) <= 3:
        return Request("help")
    if (spoken := spoken_command(raw)) is not None and spoken[0] == "report":
        # Chats run /report for these words before any model; where no command runs (the console) the report's
        # own analysis answers.
        return replace(base, kind="analyze", timeframe=tf or "4h")
    if is_entry(text):
        return replace(base, kind="open", entry_args=tuple(sorted(parse_entry(text).items())))
    if (batch := _batch(text, symbol)) is not None:
        return Request(batch)
    if _has(text, "breakeven", "break even", "break-even") and not _OFFSET.search(text):
        return replace(base, kind="breakeven")
    if _PARTIAL_CLOSE.search(text):
        return replace(base, kind="close", pct=_pct(text) or 100.0)
    if is_monte_carlo(text):
        return replace(base, kind="montecarlo", size_args=tuple(sorted(parse_sizing(text).items())))
    size = _is_size(text)
    if not size and (order := _protective(text, base)) is not None:
        return order
    if _has(text, "close", "exit", "reduce", "trim", "flatten", "cut"):
        return replace(base, kind="close", pct=_pct(text) or 100.0)
    if size:
        typed = parse_sizing(text)
        return replace(
            base,
            kind="size",
            entry=_typed(typed, "entry"),
            stop=_typed(typed, "stop"),
            risk_pct=_typed(typed, "risk_pct"),
            capital=_typed(typed, "capital"),
            size_args=tuple(sorted(typed.items())),
        )
    if _has(text, "chart", "picture", "plot"):
        return replace(base, kind="chart")
    if _has(text, "portfolio", "my account", "how am i doing", "my pnl", "my p&l", "my book") or (
        _has(text, "how are my") and _has(text, "positions", "trades")
    ):
        return replace(base, kind="portfolio")
    if _has(text, "evaluate", "risk check", "check my", "how is my", "hold my", "should i hold"):
        return replace(base, kind="evaluate")
    if _has(text, "positions", "position", "open trades", "my trades"):
        return replace(base, kind="positions")
    if _has(text, "balance", "equity", "margin", "wallet"):
        return replace(base, kind="balance")
    if _has(text, "levels", "level", "structure", "support", "supports", "resistance", "resistances", "sr", "mcf"):
        return replace(base, kind="levels")
    if _has(
        text, "analyze", "analyse", "analysis", "setup", "trade idea", "should i", "bullish", "bearish", "outlook"
    ) or (_has(text, "long", "short") and "or" in text.split()):
        return replace(base, kind="analyze")
    if _has(text, "overview", "funding", "open interest", "oi", "volatility", "market"):
        return replace(base, kind="overview")
    if _has(text, "price", "quote", "how much is", "trading at", "worth") or (symbol and len(text.split()) == 1):
        return replace(base, kind="price")
    return replace(base, language=language_of(raw))
