"""Sizes at the venue's step, rounded down: an entry and a partial close show it and place it; dust is refused."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.agents.test_entries import PINNED
from tests.bot.telegram_harness import ALICE, executions, sol_size
from tests.bot.test_access import core_with, press_of
from tests.bot.test_core import RecordingReplier, said
from tools.numbers import register_step


async def test_an_entry_is_proposed_and_placed_at_the_step_and_dust_is_refused(sqlite_url: str, tmp_path: Any) -> None:
    register_step("SOL/USDT:USDT", Decimal("0.1"), Decimal("0.1"))  # as a venue's market list says
    fast = {"burst": 50, "rate_per_minute": 600}
    async with core_with(sqlite_url, tmp_path, allowed_users=[f"telegram:{ALICE}"], bot=fast) as (services, core):
        services.market.set_now(PINNED)  # type: ignore[attr-defined]  # a moment with an accepted SOL long plan
        replier = RecordingReplier()
        for text in ("/connect paper", "/arm"):
            await core.handle(said(ALICE, text), replier)
        await core.handle(said(ALICE, "/long sol 0.05 stop auto"), replier)
        refused = replier.sent[-1]
        assert "rounds down to 0 at the SOL step of 0.1" in refused.text and not refused.buttons, refused.text
        await core.handle(said(ALICE, "/long sol 0.29 stop auto"), replier)
        entry = replier.sent[-1]
        assert entry.text.startswith("Proposed order: Open a SOL/USDT:USDT long of 0.2 SOL"), entry.text
        await core.press(press_of(ALICE, entry.buttons[0].data.split(":")[1]), replier)  # type: ignore[arg-type]
        assert "Executed: Open a SOL/USDT:USDT long of 0.2 SOL" in replier.edits[-1][1].text
        user_id = (await core.user("telegram", str(ALICE))).user_id
        assert await executions(services) == 1 and await sol_size(services, user_id) == pytest.approx(0.2)
        # 33% of 0.2 SOL is 0.066: nothing at a step of 0.1, refused; half is 0.1 exactly.
        await core.handle(said(ALICE, "/close sol 33%"), replier)
        assert "too small to close" in replier.sent[-1].text and not replier.sent[-1].buttons, replier.sent[-1].text
        await core.handle(said(ALICE, "/close sol half"), replier)
        assert "Close 50% of the SOL/USDT:USDT long (0.1 of 0.2 SOL)" in replier.sent[-1].text
