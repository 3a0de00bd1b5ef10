"""The update loop's pulse without a handler group of its own: PTB's update processor (PulseProcessor) counts every
update it starts, those no handler matches too, on the queue (polling, webhook feed) and on the inbox's direct path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.telegram.app import CONCURRENT_UPDATES, PulseProcessor, TelegramChannel
from tests.bot.test_telegram_updates import price_update
from tests.fakes.telegram_api import FakeTelegram


class StubCore:
    """Records what the channel hands to the core."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.handled = asyncio.Event()

    async def handle(self, msg: Any, replier: Any) -> None:
        self.texts.append(msg.text)
        self.handled.set()

    async def press(self, press: Any, replier: Any) -> None:
        raise AssertionError("no presses here")


@pytest.fixture
async def channel() -> AsyncIterator[tuple[TelegramChannel, StubCore]]:
    """A started webhook-mode channel (no webhook registered) over a stub core."""
    async with FakeTelegram() as fake:
        core = StubCore()
        tg = TelegramChannel(core, fake.token, base_url=fake.base_url, mode="webhook")  # type: ignore[arg-type]
        app = tg.application
        await app.initialize()
        await app.start()
        try:
            yield tg, core
        finally:
            await app.stop()
            await app.shutdown()


async def test_the_processor_bounds_concurrency_and_has_no_handler_group_of_its_own(
    channel: tuple[TelegramChannel, StubCore],
) -> None:
    tg, _ = channel
    processor = tg.application.update_processor
    assert isinstance(processor, PulseProcessor) and processor.max_concurrent_updates == CONCURRENT_UPDATES
    assert list(tg.application.handlers) == [0]  # messages and presses only: nothing runs before them


async def test_every_update_started_is_counted_on_the_queue_and_on_the_inbox_path(
    channel: tuple[TelegramChannel, StubCore],
) -> None:
    tg, core = channel
    assert await tg.feed(price_update(1, 11)) == "queued"
    assert await tg.feed({"update_id": 2}) == "queued"  # no payload: matches no handler, still processed
    await asyncio.wait_for(core.handled.wait(), 10)
    for _ in range(100):
        if tg.guard.started == 2:
            break
        await asyncio.sleep(0.02)
    assert (tg.guard.received, tg.guard.started) == (2, 2)
    await tg.process(price_update(3, 12))  # the durable inbox's path: handled to the end, not queued
    assert (tg.guard.received, tg.guard.started) == (3, 3)
    assert core.texts == ["/price btc", "/price btc"]
    assert tg.stall_reason() is None
