"""The Telegram replier with a webhook request's reply slot, over real HTTP against the fake Bot API: only a final,
single, text-only message is held for the response body; anything after it (another message, an edit of it, the
end of the request's budget) sends it the normal way first, in order, and never twice."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot

from bot.api.webhook_reply import ReplySlot
from bot.core.messages import Button, Outbound
from bot.telegram.replier import TelegramOut, TelegramReplier
from bot.telegram.request import AiohttpRequest
from tests.fakes.telegram_api import FakeTelegram

CHAT = 4343


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    """The fake Bot API server with one user who started a private chat."""
    async with FakeTelegram() as server:
        server.user_message(CHAT, CHAT, "/start")
        yield server


@pytest.fixture
async def out(fake: FakeTelegram) -> AsyncIterator[TelegramOut]:
    """The channel's Telegram operations through a PTB bot on the fake."""
    async with Bot(fake.token, base_url=fake.base_url, request=AiohttpRequest(4)) as bot:
        yield TelegramOut(bot)


def _replier(out: TelegramOut, slot: ReplySlot) -> TelegramReplier:
    return TelegramReplier(out, CHAT, CHAT, 1, slot)


async def test_a_single_final_message_is_held_for_the_response_and_never_sent_by_the_bot(
    out: TelegramOut, fake: FakeTelegram
) -> None:
    slot = ReplySlot()
    ref = await _replier(out, slot).send(Outbound("**BTC** 97,000"))
    call = slot.take()
    assert call == {"method": "sendMessage", "chat_id": CHAT, "text": "<b>BTC</b> 97,000", "parse_mode": "HTML"}
    assert ref == f"{CHAT}:0"  # no message exists yet: a ref no chat has
    slot.resolve(call)  # answered in the body
    assert slot.release() is None and not slot.close()  # nothing is sent the normal way afterwards
    assert fake.sent(CHAT) == []


async def test_a_second_message_sends_the_held_one_first_in_order(out: TelegramOut, fake: FakeTelegram) -> None:
    slot = ReplySlot()
    replier = _replier(out, slot)
    assert await replier.send(Outbound("first")) == f"{CHAT}:0"
    second = await replier.send(Outbound("second"))
    sent = fake.sent(CHAT)
    assert [m.text for m in sent] == ["first", "second"]  # a multi-message reply: all of it the normal way
    assert second == f"{CHAT}:{sent[-1].message_id}"
    assert slot.take() is None  # the request answers empty


async def test_an_edit_of_the_held_message_sends_it_then_edits_it(out: TelegramOut, fake: FakeTelegram) -> None:
    slot = ReplySlot()
    replier = _replier(out, slot)  # a streamed answer: a preview, then its edits
    ref = await replier.send(Outbound("thinking…"))
    await replier.edit(ref, Outbound("the answer"))
    [message] = fake.sent(CHAT)
    assert message.edits == ["the answer"]
    assert slot.take() is None


async def test_buttons_photos_and_long_replies_are_sent_normally(out: TelegramOut, fake: FakeTelegram) -> None:
    long_text = "\n\n".join(f"Paragraph {i}: " + "word " * 150 for i in range(8))  # over 4096: two messages
    for reply in (Outbound("confirm?", buttons=[Button("Approve", "v1:tok:y")]), Outbound(long_text)):
        slot = ReplySlot()
        ref = await _replier(out, slot).send(reply)
        assert slot.take() is None
        assert ref is not None and ref == f"{CHAT}:{fake.sent(CHAT)[-1].message_id}"  # a real message's ref
    assert any(m.reply_markup for m in fake.sent(CHAT))
    assert len(fake.sent(CHAT)) >= 3


async def test_the_end_of_the_budget_sends_the_held_message_once(out: TelegramOut, fake: FakeTelegram) -> None:
    slot = ReplySlot()
    replier = _replier(out, slot)
    await replier.send(Outbound("late"))
    assert slot.close()  # the request answers empty
    sending = slot.release()
    assert sending is not None
    await sending
    assert slot.take() is None  # the turn's end finds nothing left to answer with
    await replier.send(Outbound("after"))  # goes normally; the held one is not sent again
    assert [m.text for m in fake.sent(CHAT)] == ["late", "after"]


async def test_a_chat_held_back_by_a_flood_wait_is_never_answered_in_the_body(out: TelegramOut) -> None:
    out.gate._close(CHAT, 30)  # a 429 closed the chat's gate: Telegram would drop a response call into it
    assert out.body_call(CHAT, Outbound("hello")) is None
    assert out.body_call(CHAT + 1, Outbound("hello")) is not None
