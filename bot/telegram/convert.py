"""Telegram updates → channel-agnostic messages, and outbound buttons → inline keyboards."""

from __future__ import annotations

import datetime as dtm
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import RetryAfter

from bot.core.messages import Button, ButtonPress, ChatKind, Inbound

PLATFORM = "telegram"


def message_ref(chat_id: int | str, message_id: int) -> str:
    """How a Telegram message is referred to outside the adapter."""
    return f"{chat_id}:{message_id}"


def split_ref(ref: str) -> tuple[int, int]:
    """(chat_id, message_id) of a message ref."""
    chat, _, message = ref.rpartition(":")
    return int(chat), int(message)


def retry_seconds(exc: RetryAfter) -> float:
    """RetryAfter's delay in seconds (PTB gives an int or a timedelta depending on its settings)."""
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def keyboard(buttons: list[Button]) -> InlineKeyboardMarkup | None:
    """One row of inline buttons (None when there are none: an edit without markup removes old buttons)."""
    if not buttons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=b.data) for b in buttons]])


def _kind(chat_type: str) -> ChatKind:
    return ChatKind.PRIVATE if chat_type == "private" else ChatKind.GROUP


@dataclass(frozen=True, slots=True)
class PlainMessage:
    """What the core needs of a text message, and where its answer goes."""

    user_id: int
    user_is_bot: bool
    first_name: str
    chat_id: int
    chat_type: str
    message_id: int
    text: str
    replied_to: int | None  # the sender of the message it replies to (None: not a reply, or no sender)


def to_plain(update: Update) -> PlainMessage | None:
    """The text message of a parsed update, or None when it has no message or no sender."""
    msg = update.effective_message
    user = update.effective_user
    if msg is None or user is None:
        return None
    replied = msg.reply_to_message
    return PlainMessage(
        user_id=user.id,
        user_is_bot=user.is_bot,
        first_name=user.first_name,
        chat_id=msg.chat_id,
        chat_type=msg.chat.type,
        message_id=msg.message_id,
        text=msg.text or "",
        replied_to=None if replied is None or replied.from_user is None else replied.from_user.id,
    )


def inbound_of(msg: PlainMessage, bot_id: int, bot_username: str) -> Inbound | None:
    """The core's message, or None when it is not for us (other bots' commands, a bot's message, no text)."""
    if msg.user_is_bot or not msg.text:
        return None
    text = msg.text.strip()
    mention = f"@{bot_username}".lower()
    if text.startswith("/"):
        head = text.split(maxsplit=1)[0]
        if "@" in head and not head.lower().endswith(mention):
            return None  # a command for another bot in the same group
    kind = _kind(msg.chat_type)
    addressed = kind is ChatKind.PRIVATE or mention in text.lower() or msg.replied_to == bot_id
    if mention in text.lower() and not text.startswith("/"):
        start = text.lower().index(mention)
        text = (text[:start] + text[start + len(mention) :]).strip()
    return Inbound(
        platform=PLATFORM,
        user_ref=str(msg.user_id),
        chat_ref=str(msg.chat_id),
        text=text,
        chat_kind=kind,
        display_name=msg.first_name,
        addressed=addressed,
        message_ref=message_ref(msg.chat_id, msg.message_id),
    )


# The raw shape `plain_message` reads without PTB: every key PTB would parse here, each of a type it accepts.
_USER_KEYS = {
    "id": int,
    "is_bot": bool,
    "first_name": str,
    "last_name": str,
    "username": str,
    "language_code": str,
    "is_premium": bool,
}
_CHAT_KEYS = {
    "id": int,
    "type": str,
    "title": str,
    "username": str,
    "first_name": str,
    "last_name": str,
    "is_forum": bool,
}
_MESSAGE_KEYS = {
    "message_id": int,
    "from": dict,
    "chat": dict,
    "date": int,
    "text": str,
    "entities": list,
    "message_thread_id": int,
    "is_topic_message": bool,
}
_ENTITY_KEYS = {"type": str, "offset": int, "length": int}
_REQUIRED = {
    "user": ("id", "is_bot", "first_name"),
    "chat": ("id", "type"),
    "message": ("message_id", "from", "chat", "date", "text"),
}


def _typed(data: object, keys: dict[str, type], required: tuple[str, ...]) -> dict[str, Any] | None:
    if not isinstance(data, dict) or not data.keys() <= keys.keys() or not all(k in data for k in required):
        return None
    for key, value in data.items():
        kind = keys[key]
        # bool is an int in Python; PTB's ids and counts are never booleans here
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return None
    return data


def plain_message(data: object) -> PlainMessage | None:
    """The text message of a raw webhook update read straight from its JSON, or None unless the update is the
    common, simple shape (a new text message from a user: no reply, no buttons, no media, no edits): anything
    else goes through PTB's parsing. For an update it reads, PTB's parsing and `to_plain` give the same
    message (tests/bot/test_telegram_plain_message.py checks it over generated updates)."""
    if not isinstance(data, dict) or data.keys() != {"update_id", "message"}:
        return None
    update_id = data["update_id"]
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return None
    msg = _typed(data["message"], _MESSAGE_KEYS, _REQUIRED["message"])
    if msg is None:
        return None
    user = _typed(msg["from"], _USER_KEYS, _REQUIRED["user"])
    chat = _typed(msg["chat"], _CHAT_KEYS, _REQUIRED["chat"])
    if user is None or chat is None:
        return None
    if not all(_typed(e, _ENTITY_KEYS, ("type", "offset", "length")) for e in msg.get("entities", ())):
        return None
    return PlainMessage(
        user_id=user["id"],
        user_is_bot=user["is_bot"],
        first_name=user["first_name"],
        chat_id=chat["id"],
        chat_type=chat["type"],
        message_id=msg["message_id"],
        text=msg["text"],
        replied_to=None,
    )


def to_press(update: Update) -> ButtonPress | None:
    """The button press of a callback-query update."""
    query = update.callback_query
    if query is None or query.message is None:
        return None
    msg = query.message
    return ButtonPress(
        platform=PLATFORM,
        user_ref=str(query.from_user.id),
        chat_ref=str(msg.chat.id),
        message_ref=message_ref(msg.chat.id, msg.message_id),
        data=query.data or "",
        chat_kind=_kind(msg.chat.type),
        display_name=query.from_user.first_name,
    )
