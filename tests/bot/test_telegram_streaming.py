"""Streaming never loses an answer: failed preview edits are skipped, a failed final edit becomes a new message, the
pump ends with its turn; then the same over real HTTP with PTB against the fake Bot API refusing every edit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.core.messages import Outbound
from bot.core.streaming import CURSOR, StreamedAnswer
from tests.bot.telegram_harness import ALICE, bot_settings, running, telegram_services
from tests.fakes.telegram_api import FakeTelegram


class Flaky(Exception):
    """A transient platform failure (timeout, 5xx, message gone)."""


@dataclass
class FlakyReplier:
    """A Replier whose sends and edits fail when `fail_send` / `fail_edit` say so for that call number (1-based)."""

    fail_send: Callable[[int], bool] = lambda n: False
    fail_edit: Callable[[int, Outbound], bool] = lambda n, out: False
    sent: list[Outbound] = field(default_factory=list)
    edits: list[Outbound] = field(default_factory=list)
    send_calls: int = 0
    edit_calls: int = 0

    async def send(self, out: Outbound) -> str | None:
        self.send_calls += 1
        if self.fail_send(self.send_calls):
            raise Flaky("send failed")
        self.sent.append(out)
        return f"chat:{len(self.sent)}"

    async def edit(self, ref: str, out: Outbound) -> None:
        self.edit_calls += 1
        if self.fail_edit(self.edit_calls, out):
            raise Flaky("edit failed")
        self.edits.append(out)

    async def send_private(self, out: Outbound) -> str | None:
        return None

    async def delete_user_message(self) -> bool:
        return False


async def stream_words(stream: StreamedAnswer, n: int, pause_s: float = 0.02) -> None:
    """Feed `n` tokens with a pause between them."""
    for i in range(n):
        stream.on_token(f"word{i} ")
        await asyncio.sleep(pause_s)


async def test_a_failed_preview_edit_is_skipped_and_the_final_answer_edited_in() -> None:
    replier = FlakyReplier(fail_edit=lambda n, out: n == 1)
    stream = StreamedAnswer(replier, interval_s=0.1)  # type: ignore[arg-type]
    await stream_words(stream, 20)
    ref = await stream.finish(Outbound("final answer"))
    assert ref == "chat:1" and len(replier.sent) == 1  # one message, edited
    assert replier.edits[-1].text == "final answer"
    assert stream.failed_writes == 1 and stream.edits >= 2  # previews went on after the failed one


async def test_a_final_edit_that_keeps_failing_is_sent_as_a_new_message() -> None:
    replier = FlakyReplier(fail_edit=lambda n, out: True)  # the message was deleted, or is too old to edit
    stream = StreamedAnswer(replier, interval_s=0.1)  # type: ignore[arg-type]
    await stream_words(stream, 10)
    ref = await stream.finish(Outbound("final answer"))
    assert [o.text for o in replier.sent] == [replier.sent[0].text, "final answer"]
    assert replier.sent[0].text.endswith(CURSOR)
    assert ref == "chat:2"  # the buttons of the answer are tracked on the message that carries them


async def test_a_final_edit_failing_once_is_tried_again_not_posted_twice() -> None:
    finals: list[Outbound] = []

    def first_final_times_out(n: int, out: Outbound) -> bool:  # the edit may have landed; the answer must not
        if out.text != "final answer":
            return False
        finals.append(out)
        return len(finals) == 1

    replier = FlakyReplier(fail_edit=first_final_times_out)
    stream = StreamedAnswer(replier, interval_s=0.1)  # type: ignore[arg-type]
    await stream_words(stream, 5)
    ref = await stream.finish(Outbound("final answer"))
    assert len(replier.sent) == 1 and ref == "chat:1" and len(finals) == 2
    assert replier.edits[-1].text == "final answer"


async def test_a_failed_first_send_stops_previews_and_the_answer_still_arrives() -> None:
    replier = FlakyReplier(fail_send=lambda n: n == 1)
    stream = StreamedAnswer(replier, interval_s=0.05)  # type: ignore[arg-type]
    await stream_words(stream, 10)
    assert replier.send_calls == 1  # no second preview: the first may have arrived although it failed
    ref = await stream.finish(Outbound("final answer"))
    assert [o.text for o in replier.sent] == ["final answer"] and ref == "chat:1"


async def test_the_pump_ends_with_its_turn_even_without_finish() -> None:
    replier = FlakyReplier()
    streams: list[StreamedAnswer] = []

    async def turn() -> None:
        stream = StreamedAnswer(replier, interval_s=0.05)  # type: ignore[arg-type]
        streams.append(stream)
        await stream_words(stream, 3)
        raise RuntimeError("the model call failed")  # nobody calls finish() or close()

    with pytest.raises(RuntimeError):
        await asyncio.create_task(turn())
    await asyncio.sleep(0)  # the turn's done-callbacks run
    await asyncio.sleep(0.2)
    assert not streams[0].running
    writes = replier.send_calls + replier.edit_calls
    streams[0].on_token("late token")  # a straggler from the agent's stream starts nothing
    await asyncio.sleep(0.2)
    assert replier.send_calls + replier.edit_calls == writes and not streams[0].running


async def test_leaving_the_block_on_an_error_stops_the_pump_at_once() -> None:
    replier = FlakyReplier()
    with pytest.raises(RuntimeError):
        async with StreamedAnswer(replier, interval_s=0.05) as stream:  # type: ignore[arg-type]
            await stream_words(stream, 3)
            raise RuntimeError("the model call failed")
    assert not stream.running
    writes = replier.send_calls + replier.edit_calls
    stream.on_token("more")
    await asyncio.sleep(0.2)
    assert replier.send_calls + replier.edit_calls == writes


async def test_over_telegram_every_edit_refused_still_delivers_the_whole_answer(
    sqlite_url: str, tmp_path: Path
) -> None:
    from tests.fakes.openai_server import FakeOpenAIServer, Reply

    words = [f"word{i} " for i in range(8)]
    async with FakeTelegram() as fake, FakeOpenAIServer(models=["bastion"]) as model:
        model.script(Reply.stream(["The market is quiet. ", *words], chunk_delay_s=0.25))
        settings = bot_settings(fake, sqlite_url, tmp_path)
        settings.model.base_url = model.base_url
        fake.fail_next("editMessageText", status=400, description="Bad Request: message to edit not found", count=100)
        async with telegram_services(settings) as services, running(services, fake):
            fake.user_message(ALICE, ALICE, "how does the market feel today?")
            await fake.wait_for(
                lambda: any("word7" in (m.plain or "") and not (m.plain or "").endswith("…") for m in fake.sent(ALICE)),
                timeout=25,
            )
            await asyncio.sleep(0.5)
    texts = [m.plain or "" for m in fake.sent(ALICE)]
    assert texts[0].endswith("…")  # the preview that could not be edited
    assert "word7" in texts[-1] and not texts[-1].endswith("…")  # the answer, whole, as a new message
    assert not any("went wrong" in t for t in texts)
    assert sum(1 for c in fake.calls if c.method == "editMessageText") >= 2
