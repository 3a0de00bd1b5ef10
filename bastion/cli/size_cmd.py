"""`bastion size btc 95000 93000 1% of 20k [kelly win 55% payoff 2]` and `bastion montecarlo 45% 2 1% 100`.

The same grammar, arguments and answers as the chat's /size and /montecarlo: the calculator tools run directly
(no model, no graph). Capital and risk not typed come from the settings' defaults, and the answer says so.
"""

from __future__ import annotations

from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console

from bastion.app import Services
from bastion.cli.chat_cmd import ensure_schema
from bastion.cli.common import fail, run_with_services
from bastion.cli.output import JSON_OPTION, print_json

_out = Console(highlight=False, soft_wrap=True)
# No chat user: nothing saved is read, no account is looked at (the defaults of the settings apply).
CLI_USER = 0
# The calculator tool behind each command: its result is what `--json` prints.
TOOLS = {"size": "size_trade", "montecarlo": "monte_carlo"}


def _answer(kind: str, words: list[str]) -> tuple[str, dict[str, Any] | None]:
    """The calculator's answer in words and its tool's result (None when the tool refused the input)."""
    from agents.offline.model import answer_directly
    from agents.wiring import build_toolkit
    from bot.core.commands.sizing import (
        MONTE_CARLO_ORDER,
        SIZE_ORDER,
        MonteCarloCommandArgs,
        SizeCommandArgs,
        calculator_parser,
        monte_carlo_request,
        size_request,
    )
    from bot.core.registry import UsageError
    from tools.agent_tools.base import ToolContext

    try:
        if kind == "size":
            req = size_request(SizeCommandArgs.model_validate(calculator_parser(SIZE_ORDER, with_symbol=True)(words)))
        else:
            raw = calculator_parser(MONTE_CARLO_ORDER, with_symbol=False)(words)
            req = monte_carlo_request(MonteCarloCommandArgs.model_validate(raw))
    except UsageError as exc:
        raise fail(str(exc), 2) from None
    except ValidationError as exc:  # say which input, as the chat command does
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "input"
        raise fail(f"{where}: {str(first['msg']).removeprefix('Value error, ')}", 2) from None
    except ValueError as exc:
        raise fail(str(exc), 2) from None

    async def go(services: Services) -> tuple[str, dict[str, Any] | None]:
        await ensure_schema(services)
        text, data = await answer_directly(build_toolkit(services), ToolContext(user_id=CLI_USER), req)
        return text, data.get(TOOLS[kind])

    return run_with_services(go)


def _show(kind: str, words: list[str], as_json: bool) -> None:
    text, data = _answer(kind, words)
    if not as_json:
        _out.print(text, markup=False)
    elif data is None:
        raise fail(text)  # the refusal in words on stderr, nothing on stdout
    else:
        print_json(_out, data)


def register(app: typer.Typer) -> None:
    """Add `size` and `montecarlo`."""

    @app.command("size", context_settings={"ignore_unknown_options": True})
    def size(
        words: list[str] = typer.Argument(..., help="symbol entry stop [risk%] [of capital] [kelly win N% payoff X]"),
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Position size from capital, risk % and stop distance (optional Kelly fraction)."""
        _show("size", words, as_json)

    @app.command("montecarlo", context_settings={"ignore_unknown_options": True})
    def montecarlo(
        words: list[str] = typer.Argument(..., help="win% payoff [risk%] [trades] [paths N]"),
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Monte Carlo of N trades at a fixed risk: return and drawdown distribution (50,000 paths)."""
        _show("montecarlo", words, as_json)
