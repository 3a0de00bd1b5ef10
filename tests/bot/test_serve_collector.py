"""`serve` freezes its start-up heap while it runs (full collections skip it) and gives it back when it stops."""

from __future__ import annotations

import gc
from pathlib import Path

from tests.bot.telegram_harness import bot_settings, running, telegram_services
from tests.fakes.telegram_api import FakeTelegram


async def test_a_stopped_server_leaves_the_collector_unfrozen(sqlite_url: str, tmp_path: Path) -> None:
    gc.unfreeze()
    async with FakeTelegram() as fake, telegram_services(bot_settings(fake, sqlite_url, tmp_path)) as services:
        async with running(services, fake):
            assert gc.get_freeze_count() > 1000  # the start-up heap, out of later collections while it serves
        # A process that goes on after a server (the tests, an embedding) collects all its objects again.
        assert gc.get_freeze_count() == 0
