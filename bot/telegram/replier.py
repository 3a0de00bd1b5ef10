"""Sending, editing and deleting on Telegram for the core: HTML rendering, splitting, 429 retries."""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from telegram import Bot, CallbackQuery, ChatMember, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter

from bot.core.messages import Outbound
from bot.core.render import render_for
from bot.telegram.convert import PLATFORM, keyboard, message_ref, retry_seconds, split_ref

log = logging.getLogger(__name__)
T = TypeVar("T")
CAPTION_LIMIT = 1024
ATTEMPTS = 5
# Patience of one interactive call in total: Telegram's flood waits for a busy group reach tens of seconds, and a
# reply that arrives late beats an apology that is itself refused with 429.
MAX_WAIT_S = 60.0
ChatKey = int | str


async def _once(chat_id: ChatKey, call: Callable[[], Awaitable[T]]) -> T:
    return await call()


class FloodGate:
    """Honours Telegram's `retry_after` per chat for interactive calls: wait, retry (bounded), never hammer.

    A 429 closes the chat's gate until its retry_after has passed; every call into that chat (the answer, the
    streamed edits, an apology) waits for the gate instead of being refused again at once. A call whose wait would
    exceed its budget raises RetryAfter without touching Telegram.
    """

    def __init__(
        self,
        *,
        max_wait_s: float = MAX_WAIT_S,
        attempts: int = ATTEMPTS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.max_wait_s = max_wait_s
        self.attempts = attempts
        self.clock = clock
        self.sleep = sleep
        self._until: dict[ChatKey, float] = {}

    def closed_for(self, chat_id: ChatKey) -> float:
        """Seconds until the chat's gate opens (0 when open)."""
        return max(0.0, self._until.get(chat_id, 0.0) - self.clock())

    def _close(self, chat_id: ChatKey, seconds: float) -> None:
        now = self.clock()
        # Bounded by the chats flooded right now: expired gates go whenever another closes.
        for key in [k for k, until in self._until.items() if until <= now]:
            del self._until[key]
        self._until[chat_id] = max(self._until.get(chat_id, 0.0), now + seconds)

    async def _wait_open(self, chat_id: ChatKey, deadline: float) -> None:
        wait = self.closed_for(chat_id)
        if wait <= 0:
            return
        if self.clock() + wait > deadline:
            log.info("chat %s must wait %.0f s more; this message is not sent", chat_id, wait)
            raise RetryAfter(dtm.timedelta(seconds=math.ceil(wait)))
        await self.sleep(wait)

    async def __call__(self, chat_id: ChatKey, call: Callable[[], Awaitable[T]]) -> T:
        """Run a Bot API call into `chat_id`, waiting out 429s within the budget."""
        deadline = self.clock() + self.max_wait_s
        for attempt in range(1, self.attempts + 1):
            await self._wait_open(chat_id, deadline)
            try:
                return await call()
            except RetryAfter as exc:
                wait = retry_seconds(exc)
                self._close(chat_id, wait)
                if attempt == self.attempts or self.clock() + wait > deadline:
                    log.warning("telegram asked chat %s to wait %.0f s; giving up on this message", chat_id, wait)
                    raise
                log.info("telegram asked chat %s to wait %.0f s (attempt %d)", chat_id, wait, attempt)
        raise AssertionError("unreachable")


class TelegramOut:
    """Telegram operations on the bot's own messages, shared by replies, button presses and expiry edits."""

    def __init__(self, bot: Bot, *, retry: bool = True, gate: FloodGate | None = None) -> None:
        self.bot = bot
        # Interactive answers wait through a 429; the outbox worker sends once and paces the platform itself.
        self.gate = gate or FloodGate()
        self.call: Callable[[ChatKey, Callable[[], Awaitable[Any]]], Awaitable[Any]] = self.gate if retry else _once

    async def send(self, chat_id: int | str, out: Outbound) -> Message | None:
        """Send `out` (split if long; a picture with its caption); returns the message carrying the buttons."""
        chunks = render_for(PLATFORM, out.text) if out.text else []
        markup = keyboard(out.buttons)
        last: Message | None = None
        if out.photo is not None:
            caption = chunks.pop(0) if chunks and len(chunks[0]) <= CAPTION_LIMIT else None
            photo = out.photo if isinstance(out.photo, bytes) else out.photo.read_bytes()
            last = await self.call(
                chat_id,
                lambda: self.bot.send_photo(
                    chat_id,
                    photo=photo,
                    caption=caption,
                    parse_mode=ParseMode.HTML if caption else None,
                    reply_markup=markup if not chunks else None,
                ),
            )
        return await self._send_rendered(chat_id, chunks, markup) or last

    async def _send_rendered(self, chat_id: int | str, chunks: list[str], markup: Any) -> Message | None:
        last: Message | None = None
        for i, chunk in enumerate(chunks):
            is_last = i == len(chunks) - 1

            def send_chunk(chunk: str = chunk, is_last: bool = is_last) -> Awaitable[Message]:
                return self.bot.send_message(
                    chat_id, chunk, parse_mode=ParseMode.HTML, reply_markup=markup if is_last else None
                )

            last = await self.call(chat_id, send_chunk)
        return last

    async def edit(self, ref: str, out: Outbound) -> None:
        """Replace a message's text and buttons; text beyond one message goes out as new messages."""
        chat_id, message_id = split_ref(ref)
        chunks = render_for(PLATFORM, out.text) or [" "]
        markup = keyboard(out.buttons)
        try:
            await self.call(
                chat_id,
                lambda: self.bot.edit_message_text(
                    chunks[0],
                    chat_id=chat_id,
                    message_id=message_id,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup if len(chunks) == 1 else None,
                ),
            )
        except BadRequest as exc:
            if "not modified" not in str(exc).lower():
                raise
        if len(chunks) > 1:
            await self._send_rendered(chat_id, chunks[1:], markup)


class TelegramReplier:
    """The core's `Replier` for one incoming Telegram message."""

    def __init__(self, out: TelegramOut, chat_id: int, user_id: int, message_id: int | None) -> None:
        self.out = out
        self.chat_id = chat_id
        self.user_id = user_id
        self.message_id = message_id

    async def send(self, out: Outbound) -> str | None:
        """Send into the chat of the message."""
        msg = await self.out.send(self.chat_id, out)
        return message_ref(msg.chat_id, msg.message_id) if msg else None

    async def edit(self, ref: str, out: Outbound) -> None:
        """Edit a message the bot sent."""
        await self.out.edit(ref, out)

    async def send_private(self, out: Outbound) -> str | None:
        """Send to the user's private chat; None when they never started one or blocked the bot."""
        try:
            msg = await self.out.send(self.user_id, out)
        except (Forbidden, BadRequest):
            return None
        return message_ref(msg.chat_id, msg.message_id) if msg else None

    async def is_chat_admin(self) -> bool:
        """Whether the sender owns or administers the chat (getChatMember); a private chat is theirs."""
        if self.chat_id == self.user_id:
            return True
        try:
            chat, user = self.chat_id, self.user_id
            member = await self.out.gate(chat, lambda: self.out.bot.get_chat_member(chat, user))
        except (BadRequest, Forbidden):
            log.warning("could not read the member status of %s in chat %s", self.user_id, self.chat_id)
            return False
        return member.status in (ChatMember.ADMINISTRATOR, ChatMember.OWNER)

    async def delete_user_message(self) -> bool:
        """Delete the message being handled."""
        if self.message_id is None:
            return False
        try:
            chat, message = self.chat_id, self.message_id
            return bool(await self.out.gate(chat, lambda: self.out.bot.delete_message(chat, message)))
        except (BadRequest, Forbidden):
            log.warning("could not delete a message in chat %s", self.chat_id)
            return False


class TelegramButtonReplier:
    """The core's `ButtonReplier` for one callback query."""

    def __init__(self, out: TelegramOut, query: CallbackQuery) -> None:
        self.out = out
        self.query = query
        self.answered = False

    async def answer(self, text: str) -> None:
        """Answer the callback query (once)."""
        if self.answered:
            return
        self.answered = True
        try:
            # Answers are limited apart from messages: their own gate key, so a flooded chat does not delay them.
            await self.out.gate(f"callback:{self.query.id}", lambda: self.query.answer(text[:200]))
        except BadRequest:
            log.info("callback query too old to answer")

    async def edit(self, out: Outbound) -> None:
        """Edit the message whose button was pressed."""
        msg: Any = self.query.message
        await self.out.edit(message_ref(msg.chat.id, msg.message_id), out)


class TelegramEditor:
    """Edits messages by ref (approval expiry)."""

    def __init__(self, out: TelegramOut) -> None:
        self.out = out

    async def edit_ref(self, message_ref: str, out: Outbound) -> None:
        """Replace the text of the message and remove its buttons."""
        await self.out.edit(message_ref, out)
