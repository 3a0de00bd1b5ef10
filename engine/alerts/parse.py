"""Plain-language alert rules → `RuleSpec`: a deterministic grammar for the common phrasings, then the model.

Read clause by clause: the lead-in ("tell me when", "alert me if") and a cooldown ("at most once every 4h") are
taken off, the rest is split on and/while/but or on or, and each clause names a metric, a comparator and a
number or a volume-profile level. Anything it cannot read raises `RuleError` saying which part; a configured
model then gets the whole text with the rule's JSON schema, and its answer is validated the same way.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

from pydantic import ValidationError

from engine.alerts.rules import Comparator, Condition, RuleError, RuleSpec, Timeframe

log = logging.getLogger(__name__)
SymbolFinder = Callable[[str], str | None]
EXAMPLES: tuple[str, ...] = (
    "/alert BTC funding above 0.05% while price holds above the 4h POC",
    "/alert ETH below 3000 or volume above 3x average",
    "/alert SOL open interest up 5% and funding above 0.1%, at most once every 4h",
)
UNPARSEABLE = "I could not turn that into a rule."

_LEAD = re.compile(
    r"^\s*(?:please\s+)?(?:(?:(?:tell|alert|notify|ping|warn|message|remind|wake)\s+me|let me know|alert)\s+)?"
    r"(?:when(?:ever)?|if|once|as soon as)\s+"
    r"|^\s*(?:please\s+)?(?:(?:tell|alert|notify|ping|warn|message)\s+me|alert)\s+"
)
_UNIT_MIN = {"m": 1, "min": 1, "minute": 1, "h": 60, "hr": 60, "hour": 60, "d": 1440, "day": 1440}
_UNIT = r"(m|min|minutes?|h|hrs?|hours?|d|days?)"
_COOLDOWNS = (
    re.compile(rf"[,;]?\s*\b(?:at most\s+|no more than\s+)?once\s+(?:an?|per|every|each)\s+(\d+\s*)?{_UNIT}\b"),
    re.compile(rf"[,;]?\s*\b(?:with\s+an?\s+)?cool\s?-?down\s+(?:of\s+)?(\d+)\s*{_UNIT}\b"),
    re.compile(rf"[,;]?\s*\b(?:at most\s+)?every\s+(\d+\s*)?{_UNIT}\b"),
)
_AND = re.compile(r"\s*(?:,\s*)?\b(?:and|while|but|whilst|with)\b\s*|\s*&\s*")
_OR = re.compile(r"\s*(?:,\s*)?\bor\b\s*")
_NUM = r"(-?\$?\d[\d,]*(?:\.\d+)?|-?\.\d+)\s*(k|m)?\b"
_TF = re.compile(r"\b(15m|1h|4h|1d)\b|\b(15 ?min(?:ute)?s?|hourly|1 ?hour|4 ?hours?|daily|1 ?day)\b")
_TF_WORDS = {"hourly": "1h", "daily": "1d"}
_LEVELS = (
    (re.compile(r"\b(?:poc|point of control)\b"), "poc"),
    (re.compile(r"\b(?:vah|value area high)\b"), "vah"),
    (re.compile(r"\b(?:val|value area low)\b"), "val"),
)
_GREATER = re.compile(
    r"\b(?:above|over|greater than|more than|higher than|exceeds?|beyond|past|at least|>=?)(?=\s|\$|\d|-|\.|$)"
    r"|>=?"
)
_LESS = re.compile(r"\b(?:below|under|less than|lower than|beneath|at most|<=?)(?=\s|\$|\d|-|\.|$)|<=?")
_UP = re.compile(r"\b(?:up|rises?|rising|increases?|jumps?|grows?|pumps?|gains?|climbs?|spikes?)\b")
_DOWN = re.compile(r"\b(?:down|falls?|falling|drops?|dropping|decreases?|dumps?|loses?|sinks?|declines?)\b")
_OI = re.compile(r"\b(?:open interest|oi)\b")
_MULTIPLE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:x|×|times)\b")


# "tell me when ...", "alert me if ...": free text asking for an alert rule (the bot routes it to /alert).
_REQUEST = re.compile(
    r"^\s*(?:please\s+)?(?:(?:tell|alert|notify|ping|warn|message)\s+me|let me know)\s+"
    r"(?:when(?:ever)?|if|once|as soon as)\b",
    re.IGNORECASE,
)


def is_alert_request(text: str) -> bool:
    """True when a message asks to be told about a market condition (an alert rule in plain words)."""
    return bool(_REQUEST.match(text))


def _number(text: str) -> float | None:
    m = re.search(_NUM, text)
    if m is None:
        return None
    value = float(m.group(1).replace(",", "").replace("$", ""))
    return value * {"k": 1e3, "m": 1e6}.get(m.group(2) or "", 1.0)


def _timeframe(text: str) -> str | None:
    m = _TF.search(text)
    if m is None:
        return None
    if m.group(1):
        return m.group(1)
    word = m.group(2).replace(" ", "")
    if word in _TF_WORDS:
        return _TF_WORDS[word]
    if word.startswith("15"):
        return "15m"
    return "4h" if word.startswith("4") else "1d" if "day" in word else "1h"


def _comparator(text: str) -> tuple[Comparator, int] | None:
    """The comparator named in a clause and where it ends; 'at least' / 'at most' are inclusive."""
    found = [(m.start(), m.end(), m.group(0), ">") for m in _GREATER.finditer(text)]
    found += [(m.start(), m.end(), m.group(0), "<") for m in _LESS.finditer(text)]
    if not found:
        return None
    _start, end, word, side = min(found)
    inclusive = word in {"at least", "at most", ">=", "<="}
    op = f"{side}=" if inclusive else side
    return op, end  # type: ignore[return-value]


def _cooldown(text: str) -> tuple[str, int | None]:
    for pattern in _COOLDOWNS:
        m = pattern.search(text)
        if m is not None:
            amount = int(m.group(1).strip()) if m.group(1) and m.group(1).strip() else 1
            unit = m.group(2).rstrip("s")
            minutes = amount * _UNIT_MIN.get(unit, _UNIT_MIN.get(unit[:1], 60))
            return (text[: m.start()] + text[m.end() :]).strip(), minutes
    return text, None


def _funding(clause: str) -> Condition:
    if re.search(r"\b(?:turns?|goes|is|gets)?\s*negative\b", clause):
        return Condition(metric="funding", comparator="<", threshold=0.0)
    if re.search(r"\b(?:turns?|goes|is|gets)?\s*positive\b", clause):
        return Condition(metric="funding", comparator=">", threshold=0.0)
    cmp = _comparator(clause)
    if cmp is None:
        raise RuleError(f"say whether funding should be above or below a number in “{clause}”")
    value = _number(clause[cmp[1] :])
    if value is None:
        raise RuleError(f"a funding rule needs a rate, like 0.05%, in “{clause}”")
    return Condition(metric="funding", comparator=cmp[0], threshold=value)


def _moved(clause: str, metric: str) -> Condition | None:
    """'up 5%' / 'drops 3%' / 'change above 5%' as a change in %."""
    pct = re.search(rf"{_NUM}\s*%", clause)
    if pct is None:
        return None
    value = abs(float(pct.group(1).replace(",", "").replace("$", "")))
    if _DOWN.search(clause):
        return Condition(metric=metric, comparator="<", threshold=-value)  # type: ignore[arg-type]
    if _UP.search(clause):
        return Condition(metric=metric, comparator=">", threshold=value)  # type: ignore[arg-type]
    cmp = _comparator(clause)
    if cmp is None:
        return None
    signed = _number(clause[cmp[1] :])
    return Condition(metric=metric, comparator=cmp[0], threshold=signed if signed is not None else value)  # type: ignore[arg-type]


def _volume(clause: str, tf: Timeframe) -> Condition:
    m = _MULTIPLE.search(clause)
    if m is not None:
        cmp = _comparator(clause)
        return Condition(
            metric="volume_ratio", comparator=cmp[0] if cmp else ">", threshold=float(m.group(1)), timeframe=tf
        )
    if re.search(r"\bspik|\bsurge|\bexplod", clause):
        return Condition(metric="volume_ratio", comparator=">", threshold=3.0, timeframe=tf)  # SPEC's 3x
    raise RuleError(f"say how much volume, like “volume above 3x average”, in “{clause}”")


def _price(clause: str, tf: Timeframe) -> Condition:
    cmp = _comparator(clause)
    if cmp is None:
        if re.search(r"\bcross(?:es)?\b", clause):
            raise RuleError(f"say whether price should cross above or below in “{clause}”")
        raise RuleError(f"I could not read “{clause}”")
    rest = clause[cmp[1] :]
    for pattern, level in _LEVELS:
        if pattern.search(rest):
            return Condition(metric="price", comparator=cmp[0], level=level, timeframe=tf)  # type: ignore[arg-type]
    value = _number(rest)
    if value is None:
        raise RuleError(f"a price rule needs a price or a level (POC, value area high/low) in “{clause}”")
    return Condition(metric="price", comparator=cmp[0], threshold=value, timeframe=tf)


def _clause(clause: str, default_tf: str) -> Condition:
    tf = cast(Timeframe, _timeframe(clause) or default_tf)
    if "funding" in clause:
        return _funding(clause)
    if _OI.search(clause):
        found = _moved(clause, "oi_change")
        if found is None:
            raise RuleError(f"say by how many % open interest should change, in “{clause}”")
        return found
    if "volume" in clause:
        return _volume(clause, tf)
    if "%" in clause and not any(p.search(clause) for p, _ in _LEVELS):
        found = _moved(clause, "change_24h")
        if found is not None:
            return found
    return _price(clause, tf)


def _split(text: str) -> tuple[list[str], str]:
    ands = [p for p in _AND.split(text) if p.strip()]
    ors = [p for p in _OR.split(text) if p.strip()]
    if len(ands) > 1 and len(ors) > 1:
        raise RuleError("use either “and” or “or” in one rule, not both")
    return (ors, "or") if len(ors) > 1 else (ands, "and")


def parse_rule(text: str, find_symbol: SymbolFinder) -> RuleSpec:
    """The rule a message describes; `RuleError` saying which part could not be read."""
    body = text.strip().rstrip(".!?").lower()
    body = _LEAD.sub("", body, count=1).strip()
    body, cooldown = _cooldown(body)
    symbol = find_symbol(text)
    if symbol is None:
        raise RuleError("name the coin, like BTC or ETH")
    body = re.sub(rf"\b{re.escape(symbol.lower())}(?:/?usdt)?(?:'s)?\b", " ", body)
    body = re.sub(r"\s+", " ", body).strip(" ,;")
    if not body:
        raise RuleError("say what should happen, like “funding above 0.05%”")
    clauses, join = _split(body)
    default_tf = _timeframe(body) or "1h"
    try:
        conditions = [_clause(c.strip(" ,;"), default_tf) for c in clauses]
        extra: dict[str, Any] = {"cooldown_minutes": cooldown} if cooldown is not None else {}
        return RuleSpec(symbol=symbol, conditions=conditions, join=join, **extra)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise RuleError(_validation_text(exc)) from None


def _validation_text(exc: ValidationError) -> str:
    msgs = [str(e["msg"]).removeprefix("Value error, ") for e in exc.errors(include_url=False, include_input=False)]
    return "; ".join(dict.fromkeys(msgs))


class JsonModel(Protocol):
    """What reading a rule needs from the inference client (`inference.client.ModelClient` fits)."""

    async def complete_json(self, task: Any, messages: Sequence[Any], model_cls: type[RuleSpec]) -> RuleSpec:
        """An answer validated against `model_cls`'s JSON schema."""
        ...


SYSTEM_PROMPT = (
    "You turn a trader's alert request into a JSON rule for one crypto symbol. metric is one of price, funding "
    "(% per 8h), oi_change (% over 4h), volume_ratio (last candle volume / its average), change_24h (%). "
    "comparator is >, >=, < or <=. Give threshold (a number) or level (poc, vah, val; price only), never both. "
    "timeframe is 15m, 1h, 4h or 1d. join is and/or. cooldown_minutes defaults to 60. If the text is not an "
    "alert request, answer with an empty conditions list."
)


async def read_rule(
    text: str, find_symbol: SymbolFinder, model: JsonModel | None = None, *, timeout_s: float = 20.0
) -> RuleSpec:
    """The grammar's rule, else the model's (validated); `RuleError` (the grammar's reason) when neither reads it."""
    try:
        return parse_rule(text, find_symbol)
    except RuleError as grammar:
        if model is None:
            raise
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}]
        try:
            return await asyncio.wait_for(model.complete_json("risk", messages, RuleSpec), timeout_s)
        except Exception as exc:  # an unusable or absent answer is the grammar's refusal, never a traceback
            log.info("model could not read an alert rule either: %s", exc)
            raise grammar from None
