"""Grounding check: every price-like number of an answer must come from this turn's tool data (or be derived)."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

TOLERANCE = 0.001  # 0.1 %
# Derived sums/differences are only formed over this many source numbers (the pairs grow quadratically).
MAX_PAIR_SOURCES = 400
MARK = "[figure removed: not in the data]"
REMOVED_NOTE = "Note: figures that did not match the market data were removed from this answer."

_NUMBER = re.compile(r"(?<![\w.])[-+]?\$?(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?![\w.]*\d)")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?|\b\d{1,2}:\d{2}\b")
# After the number: percent, R multiple, leverage, timeframe, counts: derived or not a price.
_DERIVED_AFTER = re.compile(
    r"^\s?(?:%|r\b|x\b|:1\b|m\b|h\b|d\b|w\b|atr|touch|bar|candle|day|hour|minute|week|month|year|sensitiv|/16|"
    r"position|trade|level|target|step|path|sigma|percentile|bps|basis|of \d)",
    re.IGNORECASE,
)
_NOT_PRICE_BEFORE = re.compile(r"(?:grade|\bg|\bt|#|r:r|rr|\btop|\bnumber|\bno\.|step|\bv|score|x)\s?$", re.IGNORECASE)
_SOURCE_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclass
class GroundingResult:
    """Which price-like figures of an answer are supported by the data and which are not."""

    checked: list[float] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every checked figure is supported."""
        return not self.unsupported


@dataclass(frozen=True)
class _Figure:
    text: str
    value: float
    start: int
    end: int


def source_numbers(texts: Iterable[str]) -> list[float]:
    """Every number in the tool outputs (and the user's own message)."""
    out: list[float] = []
    for text in texts:
        # The pattern has no capturing group, so findall gives the whole numbers (thousands separators gone).
        out.extend(map(float, _SOURCE_NUMBER.findall(text.replace(",", ""))))
    return out


def price_figures(answer: str) -> list[_Figure]:
    """Price-like numbers of an answer: not percentages, R multiples, counts, grades, dates or small integers."""
    blanked = _DATE_TIME.sub(lambda m: " " * len(m.group()), answer)
    figures = []
    for m in _NUMBER.finditer(blanked):
        raw = m.group(1)
        value = float(raw.replace(",", ""))
        after = blanked[m.end() : m.end() + 14]
        before = blanked[max(0, m.start() - 6) : m.start()]
        if _DERIVED_AFTER.match(after) or _NOT_PRICE_BEFORE.search(before):
            continue
        if "." not in raw and "," not in raw and value < 10:
            continue  # counts, grades, list numbers
        figures.append(_Figure(m.group(), value, m.start(), m.end()))
    return figures


class _Index:
    """Sorted source values (and, when a figure is not among them, their pairwise sums/differences)."""

    def __init__(self, sources: Sequence[float]) -> None:
        self.direct = sorted({abs(x) for x in sources if x != 0})
        self._derived: list[float] | None = None

    @property
    def derived(self) -> list[float]:
        """Pairwise sums and differences, built on first use: most answers quote the data directly."""
        if self._derived is None:
            base = self.direct
            pool = base[-MAX_PAIR_SOURCES:] if len(base) > MAX_PAIR_SOURCES else base
            derived = {abs(a - b) for i, a in enumerate(pool) for b in pool[i + 1 :]}
            derived |= {a + b for i, a in enumerate(pool) for b in pool[i:]}
            self._derived = sorted(derived)
        return self._derived

    @staticmethod
    def _near(values: list[float], x: float, rounding: float = 0.0) -> bool:
        low, high = min(x * (1 - TOLERANCE), x - rounding), max(x * (1 + TOLERANCE), x + rounding)
        lo = bisect.bisect_left(values, low)
        return lo < len(values) and values[lo] <= high

    def supports(self, x: float, rounding: float = 0.0) -> bool:
        """Whether `x` is a source value (or a sum/difference of two) within 0.1 %, or within `rounding` of one."""
        x = abs(x)
        return x == 0 or self._near(self.direct, x, rounding) or self._near(self.derived, x, rounding)


def rounding_of(text: str) -> float:
    """Half a unit of the last digit written: "1.15" may be any source value from 1.145 to 1.155 shown at a tick."""
    digits = text.replace(",", "").strip().lstrip("+-$")
    decimals = len(digits.split(".", 1)[1]) if "." in digits else 0
    return 0.5 * 10.0**-decimals * (1 + 1e-9)


def check_answer(answer: str, sources: Iterable[str]) -> GroundingResult:
    """Check each price-like figure of `answer` against the numbers of `sources` (within 0.1 %)."""
    figures = price_figures(answer)
    result = GroundingResult(checked=[f.value for f in figures])
    if not figures:
        return result
    index = _Index(source_numbers(sources))
    # A price shown at its instrument's tick (a liquidation near 1.14593 written "1.15") is the data, rounded.
    result.unsupported = [f.text for f in figures if not index.supports(f.value, rounding_of(f.text))]
    return result


def remove_unsupported(answer: str, unsupported: Sequence[str]) -> str:
    """The answer with unsupported figures replaced by a marker, and a note saying so."""
    bad = set(unsupported)
    parts, last = [], 0
    for f in price_figures(answer):
        if f.text in bad:
            parts.append(answer[last : f.start])
            parts.append(MARK)
            last = f.end
    parts.append(answer[last:])
    return "".join(parts).rstrip() + "\n\n" + REMOVED_NOTE


def correction_request(unsupported: Sequence[str]) -> str:
    """The one message asking the model to correct itself."""
    figures = ", ".join(unsupported[:12])
    return (
        f"Grounding check: these figures in your answer are not in the tool data of this turn: {figures}. "
        "Rewrite the answer using only numbers from the tool results (call a tool if you need more data). "
        "Do not invent prices."
    )
