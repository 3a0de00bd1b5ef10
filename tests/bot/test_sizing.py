"""The calculator uses what the user typed (or refuses it, with the reason) on every entry point: free text, /size,
/montecarlo and the CLI; the answer says where each number came from; Kelly and the Monte Carlo are reachable."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bastion.app import Services
from bastion.cli import app
from bot.core.dispatcher import BotCore
from tests.bot.telegram_harness import ALICE, SECRET_KEY
from tests.bot.test_access import core_with
from tests.bot.test_core import RecordingReplier, said
from tools.calculators.phrases import parse_sizing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("size a trade: BTC entry 95000 stop 93000, 1% risk of 20k",
         {"entry": 95000, "stop": 93000, "risk_pct": 1, "capital": 20000}),
        ("size btc entry 95000 stop 93000 risk 0%", {"entry": 95000, "stop": 93000, "risk_pct": 0}),
        ("size btc entry -5 stop 93000", {"entry": -5, "stop": 93000}),
        ("2% of my 15,000 account: sol entry 150 stop 140", {"entry": 150, "stop": 140, "risk_pct": 2,
                                                             "capital": 15000}),
        ("size eth entry 3000 stop 2900 kelly win rate 55% payoff 2",
         {"entry": 3000, "stop": 2900, "win_rate": 0.55, "payoff": 2, "kelly": True}),
        ("monte carlo 200 trades win rate 45% rr 2 risk 1% 10000 paths",
         {"trades": 200, "win_rate": 0.45, "payoff": 2, "risk_pct": 1, "paths": 10000}),
    ],
)  # fmt: skip
def test_the_calculator_grammar_returns_what_was_typed(text: str, expected: dict[str, float]) -> None:
    assert parse_sizing(text) == expected


@pytest.fixture
async def alice(sqlite_url: str, tmp_path: Path) -> AsyncIterator[tuple[Services, BotCore]]:
    # Many questions in a row: a burst the per-user rate limit lets through.
    bot = {"burst": 50, "rate_per_minute": 600}
    async with core_with(
        sqlite_url, tmp_path, allowed_users=[f"telegram:{ALICE}"], secret_keys=SECRET_KEY, bot=bot
    ) as pair:
        yield pair


async def ask(core: BotCore, text: str) -> str:
    replier = RecordingReplier()
    await core.handle(said(ALICE, text), replier)
    return (replier.edits[-1][1] if replier.edits else replier.sent[-1]).text


async def test_free_text_sizing_uses_the_typed_capital_risk_entry_and_stop(alice: tuple[Services, BotCore]) -> None:
    _, core = alice
    out = await ask(core, "size a trade: BTC entry 95000 stop 93000, 1% risk of 20k")
    assert "Capital 20,000.00 (typed), risk 1% (typed) = 200.00 USD" in out, out
    assert "Entry 95,000 (typed), stop 93,000 (typed" in out and "0.1 units" in out
    # Nothing typed but the levels: risk and capital come from the defaults, and the answer says so.
    out = await ask(core, "size btc entry 95000 stop 93000")
    assert re.search(r"Capital [\d,.]+ \((?:account balance|default)\), risk 2% \(default\)", out), out


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("size btc entry 95000 stop 93000 risk 0%", "A risk of 0% sizes nothing"),
        ("size btc entry -5 stop 93000", "Entry -5 is not a price"),
        ("size btc entry 95000 stop 95000", "The stop 95000 is the entry"),
        ("size btc entry 95000 stop 93000 risk 40%", "above the calculator's 10% limit"),
        ("size btc entry 95000 stop 93000 1% of 0 capital", "A capital of 0 cannot be sized from"),
        ("size btc entry 95000 stop 93000 kelly win rate 150% payoff 2", "is not a probability"),
    ],
)
async def test_bad_typed_numbers_are_refused_never_replaced(
    alice: tuple[Services, BotCore], text: str, reason: str
) -> None:
    _, core = alice
    out = await ask(core, text)
    assert reason in out, out
    assert "Position size" not in out  # nothing computed from a replaced number (the market price, 2%)


async def test_kelly_and_monte_carlo_in_free_text(alice: tuple[Services, BotCore]) -> None:
    _, core = alice
    out = await ask(core, "size eth entry 3000 stop 2900 risk 1% kelly win rate 55% payoff 2")
    assert "Kelly: win rate 55%, payoff 2: full Kelly risks 32.5% per trade, half Kelly 16.25%." in out, out
    out = await ask(core, "kelly with win rate 40% payoff 1")
    assert "Kelly fraction -0.2" in out, out  # no edge, said with the distribution it leads to
    out = await ask(core, "run a monte carlo of 100 trades, win rate 45% payoff 2 risk 1%")
    assert "Monte Carlo of 100 trades x 50,000 paths at 1% risk per trade (typed), win rate 45%" in out, out
    assert "of paths end in loss" in out and "Maximum drawdown: median" in out


async def test_slash_size_and_montecarlo(alice: tuple[Services, BotCore]) -> None:
    _, core = alice
    out = await ask(core, "/size btc 95000 93000 1% of 20k kelly win 55% payoff 2")
    assert "Capital 20,000.00 (typed), risk 1% (typed)" in out and "full Kelly risks 32.5%" in out, out
    assert "Risk: Input should be greater than 0" in await ask(core, "/size btc 95000 93000 0%")
    assert "Entry: Input should be greater than 0" in await ask(core, "/size btc -5 93000")
    assert "I do not understand 'banana'" in await ask(core, "/size btc 95000 93000 1 banana")
    assert "Kelly needs a win rate and a payoff" in await ask(core, "/size btc 95000 93000 kelly")
    out = await ask(core, "/montecarlo 45% 2 1% 100 paths 2000")
    assert out.startswith("Monte Carlo of 100 trades x 2,000 paths at 1% risk per trade (typed), win rate 45%"), out
    assert "Payoff: Field required" in await ask(core, "/montecarlo 45%")


def test_cli_size_and_montecarlo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BASTION_") and name != "BASTION_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BASTION_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()
    result = runner.invoke(
        app, ["size", "btc", "95000", "93000", "1%", "of", "20k", "kelly", "win", "55%", "payoff", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "Capital 20,000.00 (typed), risk 1% (typed)" in result.output and "half Kelly 16.25%" in result.output
    result = runner.invoke(app, ["size", "btc", "-5", "93000"])
    assert result.exit_code == 2 and "entry: Input should be greater than 0" in result.output, result.output
    result = runner.invoke(app, ["montecarlo", "45%", "2", "1%", "50", "paths", "1000"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Monte Carlo of 50 trades x 1,000 paths at 1% risk per trade (typed)")
