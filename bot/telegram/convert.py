"""Telegram updates → channel-agnostic messages, and outbound buttons → inline keyboards."""

from __future__ import annotations

import datetime as dtm

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


def to_inbound(update: Update, bot_id: int, bot_username: str) -> Inbound | None:
    """The message of an update, or None when it is not for us (other bots' commands, non-text, no sender)."""
    msg = update.effective_message
    user = update.effective_user
    if msg is None or user is None or user.is_bot or not msg.text:
        return None
    text = msg.text.strip()
    mention = f"@{bot_username}".lower()
    if text.startswith("/"):
        head = text.split(maxsplit=1)[0]
        if "@" in head and not head.lower().endswith(mention):
            return None  # a command for another bot in the same group
    kind = _kind(msg.chat.type)
    replied = msg.reply_to_message
    addressed = (
        kind is ChatKind.PRIVATE
        or mention in text.lower()
        or (replied is not None and replied.from_user is not None and replied.from_user.id == bot_id)
    )
    if mention in text.lower() and not text.startswith("/"):
        start = text.lower().index(mention)
        text = (text[:start] + text[start + len(mention) :]).strip()
    return Inbound(
        platform=PLATFORM,
        user_ref=str(user.id),
        chat_ref=str(msg.chat_id),
        text=text,
        chat_kind=kind,
        display_name=user.first_name,
        addressed=addressed,
        message_ref=message_ref(msg.chat_id, msg.message_id),
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
