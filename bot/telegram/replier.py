"""Sending, editing and deleting on Telegram for the core: HTML rendering, splitting, 429 retries."""

from __future__ import annotations

import datetime as dtm
import functools
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from telegram import Bot, CallbackQuery, ChatMember, Message
from telegram._utils.types import JSONDict
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter

from bot.api.webhook_reply import ReplySlot
from bot.core.messages import Outbound
from bot.core.render import render_for
from bot.telegram.convert import PLATFORM, keyboard, message_ref, retry_seconds, split_ref
from storage.retry import RetryPolicy, retry_async

log = logging.getLogger(__name__)
T = TypeVar("T")
CAPTION_LIMIT = 1024
# Interactive calls: five tries within a minute in all. Telegram's flood waits for a busy group reach tens of
# seconds, and a reply that arrives late beats an apology that is itself refused with 429.
INTERACTIVE_RETRY = RetryPolicy(attempts=5, budget_s=60.0)
ChatKey = int | str


async def _once(chat_id: ChatKey, call: Callable[[], Awaitable[T]]) -> T:
    return await call()


class FloodGate:
    """Honours Telegram's `retry_after` per chat for interactive calls: wait, retry (bounded), never hammer.

    A 429 closes the chat's gate until its retry_after has passed; every call into that chat (the answer, the
    streamed edits, an apology) waits for the gate instead of being refused again at once. A call whose wait would
    exceed its budget raises RetryAfter without touching Telegram.
    """

    def __init__(self, policy: RetryPolicy = INTERACTIVE_RETRY) -> None:
        self.policy = policy
        self._until: dict[ChatKey, float] = {}

    def closed_for(self, chat_id: ChatKey) -> float:
        """Seconds until the chat's gate opens (0 when open)."""
        return max(0.0, self._until.get(chat_id, 0.0) - self.policy.clock())

    def _close(self, chat_id: ChatKey, seconds: float) -> None:
        now = self.policy.clock()
        # Bounded by the chats flooded right now: expired gates go whenever another closes.
        for key in [k for k, until in self._until.items() if until <= now]:
            del self._until[key]
        self._until[chat_id] = max(self._until.get(chat_id, 0.0), now + seconds)

    async def _wait_open(self, chat_id: ChatKey, deadline: float) -> None:
        wait = self.closed_for(chat_id)
        if wait <= 0:
            return
        if self.policy.clock() + wait > deadline:
            log.info("chat %s must wait %.0f s more; this message is not sent", chat_id, wait)
            raise _HeldBack(dtm.timedelta(seconds=math.ceil(wait)))
        await self.policy.sleep(wait)

    async def __call__(self, chat_id: ChatKey, call: Callable[[], Awaitable[T]]) -> T:
        """Run a Bot API call into `chat_id`, waiting out 429s within the policy's attempts and budget."""
        deadline = self.policy.clock() + (self.policy.budget_s if self.policy.budget_s is not None else math.inf)

        async def attempt() -> T:
            await self._wait_open(chat_id, deadline)  # another call's 429 may have closed the gate meanwhile
            try:
                return await call()
            except RetryAfter as exc:
                self._close(chat_id, retry_seconds(exc))
                raise

        def note(retry: int, exc: BaseException, wait: float) -> None:
            log.info("telegram asked chat %s to wait %.0f s (attempt %d)", chat_id, wait, retry + 1)

        try:
            return await retry_async(attempt, self.policy, retry_on=_is_flood, wait_of=_flood_wait, on_retry=note)
        except RetryAfter as exc:
            if not isinstance(exc, _HeldBack):
                wait = retry_seconds(exc)
                log.warning("telegram asked chat %s to wait %.0f s; giving up on this message", chat_id, wait)
            raise


class _HeldBack(RetryAfter):
    """The chat's gate stays closed past this call's budget: not sent, and not worth another try."""


def _is_flood(exc: BaseException) -> bool:
    return isinstance(exc, RetryAfter) and not isinstance(exc, _HeldBack)


def _flood_wait(exc: BaseException) -> float | None:
    return retry_seconds(exc) if isinstance(exc, RetryAfter) else None


class TelegramOut:
    """Telegram operations on the bot's own messages, shared by replies, button presses and expiry edits."""

    def __init__(self, bot: Bot, *, retry: bool = True, gate: FloodGate | None = None) -> None:
        self.bot = bot
        # Interactive answers wait through a 429; the outbox worker sends once and paces the platform itself.
        self.gate = gate or FloodGate()
        self.call: Callable[[ChatKey, Callable[[], Awaitable[Any]]], Awaitable[Any]] = self.gate if retry else _once

    async def send(self, chat_id: int | str, out: Outbound) -> str | None:
        """Send `out` (split if long; a picture with its caption); returns the ref of the message with the buttons."""
        chunks = render_for(PLATFORM, out.text) if out.text else []
        markup = keyboard(out.buttons)
        last: str | None = None
        if out.photo is not None:
            caption = chunks.pop(0) if chunks and len(chunks[0]) <= CAPTION_LIMIT else None
            photo = out.photo if isinstance(out.photo, bytes) else out.photo.read_bytes()
            sent: Message = await self.call(
                chat_id,
                lambda: self.bot.send_photo(
                    chat_id,
                    photo=photo,
                    caption=caption,
                    parse_mode=ParseMode.HTML if caption else None,
                    reply_markup=markup if not chunks else None,
                ),
            )
            last = message_ref(sent.chat_id, sent.message_id)
        return await self._send_rendered(chat_id, chunks, markup) or last

    async def _send_rendered(self, chat_id: int | str, chunks: list[str], markup: Any) -> str | None:
        last: str | None = None
        for i, chunk in enumerate(chunks):
            data: JSONDict = {"chat_id": chat_id, "text": chunk, "parse_mode": ParseMode.HTML}
            if markup is not None and i == len(chunks) - 1:
                data["reply_markup"] = markup
            last = _ref_of(await self.call(chat_id, functools.partial(self._post, "sendMessage", data)))
        return last

    def _post(self, method: str, data: JSONDict) -> Awaitable[Any]:
        # The Bot API call itself, answered as plain JSON: only the new message's id is needed, and parsing the
        # answer into a PTB Message (about 200 attributes set one by one) cost a third of the send's CPU.
        return self.bot._post(method, data)

    def body_call(self, chat_id: ChatKey, out: Outbound) -> JSONDict | None:
        """`out` as the sendMessage call of a webhook response, when it can go that way: text only (a message with
        buttons needs its id, to edit it later), one message long, into a chat no 429 holds back (Telegram drops a
        response's call that fails, so only one that cannot be refused for flooding goes)."""
        if out.photo is not None or out.buttons or not out.text or self.gate.closed_for(chat_id) > 0:
            return None
        chunks = render_for(PLATFORM, out.text)
        if len(chunks) != 1:
            return None
        return {"method": "sendMessage", "chat_id": chat_id, "text": chunks[0], "parse_mode": ParseMode.HTML}

    async def send_call(self, chat_id: ChatKey, call: JSONDict) -> str:
        """Make a `body_call` as a request of the bot's own (the webhook response could not carry it); its ref."""
        data = {key: value for key, value in call.items() if key != "method"}
        return _ref_of(await self.call(chat_id, functools.partial(self._post, str(call["method"]), data)))

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


def _ref_of(result: Any) -> str:
    """The ref of the message a Bot API call answered with (its JSON: message_id and chat.id)."""
    return message_ref(result["chat"]["id"], result["message_id"])


class TelegramReplier:
    """The core's `Replier` for one incoming Telegram message.

    With the `slot` of a webhook request waiting for this update, a message that may be the reply's last is held
    for the response body (`bot.api.webhook_reply`); anything the turn does next in the chat sends it first.
    """

    def __init__(
        self, out: TelegramOut, chat_id: int, user_id: int, message_id: int | None, slot: ReplySlot | None = None
    ) -> None:
        self.out = out
        self.chat_id = chat_id
        self.user_id = user_id
        self.message_id = message_id
        self.slot = slot
        self._held = False  # a message is held in the slot; its ref is HELD_REF until it is sent
        self._sent_ref: str | None = None  # the held message's real ref, once it was sent the normal way

    @property
    def held_ref(self) -> str:
        """The ref handed out for the held message (message id 0 exists in no chat)."""
        return message_ref(self.chat_id, 0)

    async def _send_held(self) -> str | None:
        """Send the held message the normal way (once), before anything else happens in the chat; its ref."""
        if self._held and self.slot is not None:
            self._held = False
            pending = self.slot.release()
            self._sent_ref = await pending if pending is not None else None
        return self._sent_ref

    async def send(self, out: Outbound) -> str | None:
        """Send into the chat of the message (or hold it for the webhook response)."""
        await self._send_held()
        if self.slot is not None and self.slot.open:
            call = self.out.body_call(self.chat_id, out)
            if call is not None and self.slot.hold(call, functools.partial(self.out.send_call, self.chat_id, call)):
                self._held = True
                return self.held_ref
        return await self.out.send(self.chat_id, out)

    async def edit(self, ref: str, out: Outbound) -> None:
        """Edit a message the bot sent."""
        if ref == self.held_ref:  # the held message itself (a streamed preview): it must exist first
            sent = await self._send_held()
            if sent is None:
                return
            ref = sent
        else:
            await self._send_held()
        await self.out.edit(ref, out)

    async def send_private(self, out: Outbound) -> str | None:
        """Send to the user's private chat; None when they never started one or blocked the bot."""
        try:
            return await self.out.send(self.user_id, out)
        except (Forbidden, BadRequest):
            return None

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
