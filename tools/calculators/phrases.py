"""The pre-trade calculator's grammar: what a trader types to size a trade, ask for Kelly or a Monte Carlo.

"size a trade: BTC entry 95000 stop 93000, 1% risk of 20k", "/size btc 60000 59000 1.5% kelly win 55% payoff 2",
"monte carlo 200 trades win rate 45% payoff 2 risk 1%". Numbers are returned exactly as typed (a negative entry
stays negative) so the calculator refuses them with the reason instead of replacing them; only what the text
says is returned.
"""

from __future__ import annotations

import re

_NUM = r"([+-]?\$?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:e[+-]?\d+)?)\s*(k|m)?\b"
_OPT = r"(?:\s+(?:at|@|=|of|is|price))*\s*"
_WIN = r"(?:win[ -]?rate|winrate|wr|hit[ -]?rate|win probability|win(?:s|ning)?)"
_PAYOFF = r"(?:payoff|pay[ -]?off|reward[ /:-]*to[ /:-]*risk|reward[/:]risk|r:r|rr|win/loss)(?:\s+ratio)?"
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("entry", re.compile(rf"\b(?:entry|enter(?:ing)?|in at|buy at|sell at){_OPT}{_NUM}")),
    ("stop", re.compile(rf"\b(?:stop[ -]?loss|stop|sl){_OPT}{_NUM}")),
    ("win_rate", re.compile(rf"\b{_WIN}{_OPT}{_NUM}\s*%?")),
    ("win_rate", re.compile(rf"{_NUM}\s*%\s*(?:win[ -]?rate|winners|wins|win|winning)\b")),
    ("payoff", re.compile(rf"\b{_PAYOFF}{_OPT}{_NUM}")),
    # "1% risk of 20k", "2% of my 15,000 account": a risk followed by the capital it is taken from.
    ("risk_capital", re.compile(rf"{_NUM}\s*%\s*(?:risk\s+)?of\s+(?:my\s+|a\s+)?(?:capital\s+of\s+)?{_NUM}")),
    ("risk_pct", re.compile(rf"\brisk(?:ing)?{_OPT}{_NUM}\s*%?")),
    ("risk_pct", re.compile(rf"{_NUM}\s*%\s*(?:risk|of\s+(?:my\s+)?(?:capital|account|equity|balance))")),
    ("capital", re.compile(rf"\b(?:capital|account|balance|equity|bankroll|portfolio){_OPT}{_NUM}")),
    ("capital", re.compile(rf"{_NUM}\s*(?:usdt|usd|\$)?\s+(?:account|capital|portfolio)\b")),
    ("trades", re.compile(rf"{_NUM}\s+trades\b")),
    ("trades", re.compile(rf"\btrades{_OPT}{_NUM}")),
    ("paths", re.compile(rf"\bpaths{_OPT}{_NUM}")),  # "paths 2000" first: "100 paths 2000" is 100 trades
    ("paths", re.compile(rf"{_NUM}\s+(?:paths|simulations|runs)\b")),
)
_KELLY = re.compile(r"\bkelly\b")
# Words around the numbers that carry no value of their own ("1% risk of my 20k account").
_FILLER = frozenset(
    {"a", "an", "the", "of", "my", "with", "at", "for", "and", "to", "on", "is", "=", "@", "usdt", "usd", "$"}
    | {"trade", "size", "sizing", "position", "risk", "account", "capital"}
)
_MONTE_CARLO = re.compile(r"\bmonte[ -]?carlo\b|\bmontecarlo\b|\bsimulate\b")
_BARE = re.compile(rf"(?<![\w.%]){_NUM}\s*%?")


def _value(number: str, suffix: str | None) -> float:
    scale = {"k": 1e3, "m": 1e6}.get(suffix or "", 1.0)
    return float(number.replace(",", "").replace("$", "")) * scale


def is_monte_carlo(text: str) -> bool:
    """Whether the text asks for a Monte Carlo of a trading plan."""
    return _MONTE_CARLO.search(text.lower()) is not None


def parse_sizing(text: str, *, positional: tuple[str, ...] = ()) -> dict[str, float | bool]:
    """The calculator's inputs found in `text`: entry, stop, risk_pct, capital, win_rate (a fraction), payoff,
    trades, paths, kelly. Bare numbers left over fill the `positional` fields in turn (the slash commands:
    `/size btc 60000 59000 1%`, `/montecarlo 45% 2 1% 100`)."""
    return read_sizing(text, positional=positional)[0]


def read_sizing(text: str, *, positional: tuple[str, ...] = ()) -> tuple[dict[str, float | bool], list[str]]:
    """`parse_sizing` and the words it did not read (a command refuses what it does not understand)."""
    rest = " " + text.lower().replace("\u00a0", " ") + " "
    out: dict[str, float | bool] = {}
    for name, pattern in _PATTERNS:
        if name in out or (name == "risk_capital" and "risk_pct" in out):
            continue
        m = pattern.search(rest)
        if m is None:
            continue
        if name == "risk_capital":
            out["risk_pct"] = _value(m.group(1), m.group(2))
            out["capital"] = _value(m.group(3), m.group(4))
        else:
            out[name] = _value(m.group(1), m.group(2))
        rest = rest[: m.start()] + " " + rest[m.end() :]
    if _KELLY.search(rest):
        out["kelly"] = True
    for name in positional:
        if name in out:
            continue
        if (m := _BARE.search(rest)) is None:
            break
        out[name] = _value(m.group(1), m.group(2))
        rest = rest[: m.start()] + " " + rest[m.end() :]
    if (win := out.get("win_rate")) is not None and not isinstance(win, bool) and win > 1:
        out["win_rate"] = win / 100  # "55" and "55%" both mean 0.55
    rest = _KELLY.sub(" ", rest)
    return out, [w for w in re.split(r"[\s,;:]+", rest) if w and w not in _FILLER]
