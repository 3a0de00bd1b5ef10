"""Report and subscription requests in plain words, read into the slash commands' own grammar.

"subscribe me to BTC and ETH reports every 4 hours" is `/subscribe btc eth every 4h`, "send me the daily scan" is
`/subscribe scan`, "unsubscribe from reports" is `/unsubscribe`, "what am I subscribed to?" is `/subscriptions`,
"give me a BTC report" is `/report btc`. The words become the command's argument text, so free text and the
slash command share one parser, one validation, one set of messages and the group-admin rule; a word that is not
filler is kept, so the command refuses it by name instead of silently subscribing to something else.
"""

from __future__ import annotations

import re

from engine.reports.body import REPORT_SYMBOLS

ALIASES = {"bitcoin": "btc", "ethereum": "eth", "ether": "eth", "solana": "sol", "ripple": "xrp", "dogecoin": "doge"}
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "six": 6, "eight": 8, "twelve": 12, "an": 1, "a": 1}
_FILLER_WORDS = (
    "subscribe sub me us to the and or please pls kindly report reports for of this chat group channel server "
    "send i we want would like with a an updates update market structure sign up could can you thanks thank hey "
    "hi also too my our all get receive them it be will start give post deliver regular regularly scheduled "
    "from stop cancel end no more unsubscribe unsub remove turn off any"
)
_FILLER = frozenset(_FILLER_WORDS.split())
_NOT_SYMBOLS = _FILLER | {"today", "now", "latest", "last", "recent", "stored", "previous", "what", "is", "on", "in"}
_NOT_SYMBOLS |= {"make", "show", "create", "write", "run", "need", "new", "fresh", "sending", "current"}
_POLITE = r"^(?:(?:please|pls|hey|hi|bastion)\s+)*(?:(?:can|could|would|will) you\s+)?(?:please\s+)?"
_TF = re.compile(r"^(15m|1h|4h|1d)$")
_TZ = re.compile(r"^(?:utc|gmt)(?:[+-]\d{1,2}(?::?\d{2})?)?$|^[a-z]+/[a-z_]+(?:/[a-z_]+)?$", re.IGNORECASE)
_HOUR_UNITS = frozenset({"h", "hr", "hrs", "hour", "hours"})
_CLOCK = re.compile(r"^(\d{1,2})(?::(\d{2}))?(am|pm)?$")

_LIST = re.compile(
    r"\b(?:what|which)\b.*\bsubscri|\bam i subscribed\b"
    r"|\b(?:my|our|list|show|the chat'?s?)\s+(?:\w+\s+)?subscriptions\b"
)
_UNSUBSCRIBE = re.compile(
    _POLITE + r"(?:unsubscribe|unsub)\b"
    r"|" + _POLITE + r"(?:stop|cancel|end|turn off|no more)\b.*\b(?:reports?|scans?|subscriptions?|setups)\b"
)
_SUBSCRIBE = re.compile(_POLITE + r"(?:subscribe|sub|sign (?:me|us|this chat|the group) up)\b")
_SEND = re.compile(_POLITE + r"(?:send|post|deliver|i want|i'd like|we want)\b")
_SCHEDULED = re.compile(r"\b(?:every|daily|hourly|each|twice|once a day|a day|per day|regular\w*|scheduled)\b")
_ABOUT = re.compile(r"\b(?:reports?|scans?|setups)\b")
_SCAN_NOW = re.compile(
    r"\b(?:today'?s|elite|best)\s+(?:\w+\s+)?setups\b|^(?:please\s+)?(?:run|show|give)\s+(?:me\s+)?(?:the|today'?s)\s+"
    r"(?:daily\s+|elite\s+)?scan\b"
)
# Asked for, not talked about: a request verb first ("show me the latest btc reports", "give me a BTC report").
_REPORTS = re.compile(
    _POLITE + r"(?:(?:show|list|give|get)\s+(?:me\s+|us\s+)?)?(?:the\s+)?(?:latest|last|recent|stored|previous)\s+"
    r"(?:\w+\s+)?reports\b"
)
_COINS = "|".join(sorted({s.lower() for s in REPORT_SYMBOLS} | set(ALIASES)))
_REPORT_NOW = re.compile(
    _POLITE + r"(?:(?:i|we)\s+(?:would like|need|want)|(?:give|show|make|get|send|need|want|create|write|run)\b)"
    r"(?:\s+\w+){0,4}?\s+report\b"
    r"|" + _POLITE + rf"(?:(?:a\s+)?report\s+(?:on|for)\b|(?:{_COINS})\s+report$)"
)


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s,;]+", text.strip().rstrip("?!.")) if w]


def spoken_command(text: str) -> tuple[str, str] | None:
    """(command, argument text) of a report or subscription request in words, or None when it is not one."""
    low = " ".join(_words(text.lower()))
    if not low or low.startswith("/"):
        return None
    if _LIST.search(low):
        return "subscriptions", ""
    if _UNSUBSCRIBE.search(low):
        return "unsubscribe", " ".join(unsubscribe_tokens(text))
    if _SUBSCRIBE.search(low) or (_SEND.search(low) and _SCHEDULED.search(low) and _ABOUT.search(low)):
        return "subscribe", " ".join(subscribe_tokens(text))
    if _SCAN_NOW.search(low):
        return "scan", ""
    if _REPORTS.search(low):
        return "reports", " ".join([w for w in _symbols(text) if w != "scan"][:1])
    if _REPORT_NOW.search(low):
        symbols = [w for w in _symbols(text) if w != "scan"]
        tf = next((w for w in _words(low) if _TF.match(w)), None)
        return "report", " ".join([*symbols[:1], *([tf] if tf else [])])
    return None


def _symbols(text: str) -> list[str]:
    """The words of `text` that are not filler, aliases resolved: the symbols (or unknown words) it names."""
    out = []
    for word in _words(text):
        low = word.lower()
        if low in _NOT_SYMBOLS:
            continue
        if low.startswith(("scan", "setup", "elite")):
            out.append("scan")
            continue
        if _TF.match(low):
            continue
        out.append(ALIASES.get(low, low))
    return out


def unsubscribe_tokens(text: str) -> list[str]:
    """The `/unsubscribe` arguments in `text`: "scan", or the symbols to drop (none: every report)."""
    words = _symbols(text)
    if "scan" in words:
        return ["scan"]
    return list(dict.fromkeys(words))


def subscribe_tokens(text: str) -> list[str]:
    """The `/subscribe` token grammar (`[scan] [SYMBOL...] [every 4h | cron ...] [tz Z] [quiet 22-07] [on 1h]`)
    of `text`, whether it was typed that way or in words; words that are not filler are kept for the validation."""
    words = _words(text)
    out: list[str] = []
    scan = False
    i = 0
    while i < len(words):
        raw = words[i]
        w = raw.lower()
        nxt = words[i + 1].lower() if i + 1 < len(words) else ""
        if w == "cron":
            out += ["cron", *words[i + 1 : i + 6]]
            i += 6
        elif w in ("tz", "timezone") or (w == "time" and nxt == "zone") or (w == "in" and _TZ.match(nxt)):
            step = 2 if w == "time" else 1
            out += ["tz", *words[i + step : i + step + 1]]
            i += step + 1
        elif _TZ.match(w) and w.startswith(("utc", "gmt")):
            out += ["tz", raw]
            i += 1
        elif w in ("quiet", "between"):
            i, quiet = _quiet(words, i + (2 if nxt == "hours" else 1) if w == "quiet" else i)
            out += ["quiet", quiet] if quiet else ["quiet"]
        elif w == "every":
            i, hours = _every(words, i + 1)
            out += ["every", hours]
        elif w in ("hourly",):
            out += ["every", "1h"]
            i += 1
        elif w in ("daily",) or (w == "once" and nxt == "a" and i + 2 < len(words) and words[i + 2] == "day"):
            out += ["every", "24h"]
            i += 3 if w == "once" else 1
        elif w == "twice" and nxt in ("a", "daily"):
            out += ["every", "12h"]
            i += 3 if nxt == "a" else 2
        elif w == "at" and _CLOCK.match(nxt):
            m = _CLOCK.match(nxt)
            assert m is not None
            hour = int(m.group(1)) % 12 + (12 if m.group(3) == "pm" else 0) if m.group(3) else int(m.group(1))
            out += ["cron", m.group(2) or "0", str(hour), "*", "*", "*"]
            i += 2
        elif w == "on" and re.fullmatch(r"\d+[a-z]+", nxt):
            out += ["on", nxt]  # "on 5m" is refused as a timeframe, not taken for a symbol
            i += 2
        elif w == "on" and nxt in _FILLER:
            i += 1
        elif _TF.match(w) and nxt in ("chart", "charts", "timeframe", "candles"):
            out += ["on", w]
            i += 2
        elif w.startswith(("scan", "setup", "elite")):
            scan = True
            i += 1
        elif w in _FILLER:
            i += 1
        else:
            out.append(ALIASES.get(w, raw))
            i += 1
    # "every 24h" with a clock time is the clock time: a daily cron.
    if "cron" in out and "every" in out:
        j = out.index("every")
        if out[j + 1 : j + 2] == ["24h"]:
            del out[j : j + 2]
    return (["scan"] if scan else []) + out


def _every(words: list[str], i: int) -> tuple[int, str]:
    """'every 4 hours' / 'every 4h' / 'every four hours' / 'every hour' / 'every day' → (next index, '4h')."""
    if i >= len(words):
        return i, ""
    w = words[i].lower()
    if w in ("hour", "hr"):
        return i + 1, "1h"
    if w == "day":
        return i + 1, "24h"
    n = _NUMBER_WORDS.get(w)
    if n is None and w.isdigit():
        n = int(w)
    if n is not None and i + 1 < len(words) and words[i + 1].lower() in _HOUR_UNITS:
        return i + 2, f"{n}h"
    if n is not None and i + 1 < len(words) and words[i + 1].lower().startswith("day"):
        return i + 2, f"{24 * n}h"
    return i + 1, words[i]  # "4h" as typed, or a word the command refuses with its reason


def _quiet(words: list[str], i: int) -> tuple[int, str]:
    """'22-07' / '22 to 7' / 'between 22 and 7' → (next index, '22-07')."""
    if i < len(words) and words[i].lower() == "between":
        i += 1
    if i < len(words) and "-" in words[i]:
        return i + 1, words[i]
    joined = i + 2 < len(words) and words[i + 1].lower() in ("to", "and", "until", "-")
    if joined and words[i].isdigit() and words[i + 2].isdigit():
        return i + 3, f"{int(words[i]):02d}-{int(words[i + 2]):02d}"
    return i + 1, words[i] if i < len(words) else ""
