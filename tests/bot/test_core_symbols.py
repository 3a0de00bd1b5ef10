"""Unknown and misspelled symbols are refused with suggestions on every bot path (slash and free text)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bastion.app import Services
from bastion.serve import build_core
from bot.core.dispatcher import BotCore
from tests.bot.telegram_harness import ALICE, telegram_services
from tests.bot.test_core import RecordingReplier, said, settings


@pytest.fixture
async def core(sqlite_url: str, tmp_path: Path) -> AsyncIterator[BotCore]:
    """A core over migrated services on the simulated market, ALICE allowed to trade."""
    from agents.persistence import sqlite_persistence
    from agents.wiring import build_chat

    s = settings(sqlite_url, tmp_path, allowed_users=[f"telegram:{ALICE}"])
    services: Services
    async with telegram_services(s) as services, sqlite_persistence(tmp_path / "cp.db") as persistence:
        yield build_core(services, build_chat(services, persistence), persistence.store)


async def _answer(core: BotCore, text: str) -> str:
    replier = RecordingReplier()
    await core.handle(said(ALICE, text), replier)
    return "\n".join(o.text for o in replier.sent + [e[1] for e in replier.edits])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/price ZZZNOTACOIN", "available: BTC, ETH, SOL"),
        ("/price btcc", "did you mean BTC/USDT:USDT"),
        ("/levels NOTACOIN 4h", "did you mean"),
        ("/chart ETHH", "did you mean ETH/USDT:USDT"),
        ("price of NOTACOINUSDT", "did you mean"),
        ("what is the price of SOLLUSDT?", "did you mean SOL/USDT:USDT"),
    ],
)
async def test_unknown_symbol_is_refused_with_suggestions(core: BotCore, text: str, expected: str) -> None:
    answer = await _answer(core, text)
    assert "Unknown symbol '" in answer and expected in answer, answer


async def test_known_symbol_still_answers(core: BotCore) -> None:
    answer = await _answer(core, "/price sol")
    assert "SOL/USDT:USDT" in answer and "Unknown symbol" not in answer
