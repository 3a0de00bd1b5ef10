"""The pre-trade calculator commands: /size (position size, optional Kelly) and /montecarlo.

Both read the calculator's grammar (`tools.calculators.phrases`, shared with free text) and answer with the
offline model's renderers through the read-only tools: no graph, no checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import Field

from agents.offline.intents import Request
from bot.core.commands.args import SizeArgs, _Args
from bot.core.commands.deps import CommandDeps, answer
from bot.core.messages import Outbound
from bot.core.registry import Command, CommandCall, CommandRegistry, UsageError
from tools.calculators.phrases import read_sizing

_NOT_FINITE = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)
# In this order on Discord too, where each field is a typed option written back as text.
SIZE_ORDER = ("entry", "stop", "risk_pct", "capital", "win_rate", "payoff")
MONTE_CARLO_ORDER = ("win_rate", "payoff", "risk_pct", "trades")
# The tool's names for the command's fields.
_FIELD = {"risk_pct": "risk"}


class SizeCommandArgs(SizeArgs):
    """`/size`: the calculator's inputs as typed; a win rate with a payoff adds the Kelly fraction."""

    capital: float | None = Field(default=None, gt=0, le=1e12, allow_inf_nan=False, description="capital in USDT")
    win_rate: float | None = Field(default=None, gt=0, lt=100, allow_inf_nan=False, description="win rate in %")
    payoff: float | None = Field(default=None, gt=0, le=1000, allow_inf_nan=False, description="avg win / avg loss")


class MonteCarloCommandArgs(_Args):
    """`/montecarlo`: win rate, payoff, and optionally the risk per trade, trades per path and paths."""

    win_rate: float = Field(gt=0, lt=100, allow_inf_nan=False, description="win rate in %")
    payoff: float = Field(gt=0, le=1000, allow_inf_nan=False, description="average win / average loss")
    risk: float | None = Field(default=None, gt=0, le=10, allow_inf_nan=False, description="risk % per trade")
    trades: int = Field(default=100, ge=1, le=1000)
    paths: int = Field(default=50_000, ge=100, le=200_000)


def calculator_parser(order: tuple[str, ...], with_symbol: bool) -> Callable[[list[str]], dict[str, Any]]:
    """The calculator grammar over a command's tokens; a word it does not read is refused, never ignored."""

    def parse(tokens: list[str]) -> dict[str, Any]:
        text = " ".join(tokens)
        if any(_NOT_FINITE.fullmatch(t) for t in tokens):
            # Numbers as typed, in order, so the argument model refuses inf / nan by name.
            values = [t for t in tokens if _NOT_FINITE.fullmatch(t) or re.fullmatch(r"[+-]?[\d.,$]+(e[+-]?\d+)?%?", t)]
            return {_FIELD.get(k, k): v.rstrip("%") for k, v in zip(order, values, strict=False)} | (
                {"symbol": tokens[0]} if with_symbol and tokens else {}
            )
        typed, words = read_sizing(text, positional=order)
        if typed.pop("kelly", False) and ("win_rate" not in typed or "payoff" not in typed):
            raise UsageError("kelly needs a win rate and a payoff, e.g. `kelly win 55% payoff 2`")
        out: dict[str, Any] = {_FIELD.get(k, k): v for k, v in typed.items()}
        if "win_rate" in out:
            out["win_rate"] = round(float(out["win_rate"]) * 100, 6)  # the command takes it in %
        for name in ("trades", "paths"):
            if name in out:
                out[name] = int(out[name])
        if with_symbol and words:
            out["symbol"] = words.pop(0)
        if words:
            raise UsageError(f"I do not understand {words[0]!r}")
        return out

    return parse


def size_request(a: SizeCommandArgs) -> Request:
    """The offline model's request for validated /size arguments (the values exactly as typed)."""
    typed: dict[str, object] = {"entry": a.entry, "stop": a.stop}
    for key, value in (("risk_pct", a.risk), ("capital", a.capital), ("payoff", a.payoff)):
        if value is not None:
            typed[key] = value
    if a.win_rate is not None:
        typed["win_rate"] = a.win_rate / 100
    return Request("size", symbol=a.symbol, size_args=tuple(sorted(typed.items())))


def monte_carlo_request(a: MonteCarloCommandArgs) -> Request:
    """The offline model's request for validated /montecarlo arguments."""
    typed: dict[str, object] = {"win_rate": a.win_rate / 100, "payoff": a.payoff, "trades": a.trades, "paths": a.paths}
    if a.risk is not None:
        typed["risk_pct"] = a.risk
    return Request("montecarlo", size_args=tuple(sorted(typed.items())))


def register(reg: CommandRegistry, deps: CommandDeps) -> None:
    """Add /size and /montecarlo."""

    async def size(call: CommandCall) -> Outbound:
        return await answer(deps, call, size_request(call.args))

    async def montecarlo(call: CommandCall) -> Outbound:
        return await answer(deps, call, monte_carlo_request(call.args))

    reg.add(
        Command("size", "Position size for an entry and a stop (capital, risk %, Kelly)", size, SizeCommandArgs,
                "<symbol> <entry> <stop> [risk%] [of <capital>] [kelly win <%> payoff <x>]",
                "/size btc 95000 93000 1% of 20k kelly win 55% payoff 2",
                parse=calculator_parser(SIZE_ORDER, with_symbol=True))
    )  # fmt: skip
    reg.add(
        Command("montecarlo", "Monte Carlo of N trades: return and drawdown distribution", montecarlo,
                MonteCarloCommandArgs, "<win%> <payoff> [risk%] [trades] [paths N]",
                "/montecarlo 45% 2 1% 100", parse=calculator_parser(MONTE_CARLO_ORDER, with_symbol=False))
    )  # fmt: skip
