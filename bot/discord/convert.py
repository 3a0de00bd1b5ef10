"""Discord messages and interactions → channel-agnostic messages; message refs; how long a 429 asks to wait."""

from __future__ import annotations

import re

import discord

from bot.core.messages import ChatKind, Inbound, parse_button

PLATFORM = "discord"
# When Discord's 429 carries no usable delay (no header, no body field), wait this long before the next try.
DEFAULT_RETRY_S = 1.0


def message_ref(channel_id: int, message_id: int) -> str:
    """How a Discord message is referred to outside the adapter: "<channel id>:<message id>"."""
    return f"{channel_id}:{message_id}"


def split_ref(ref: str) -> tuple[int, int]:
    """(channel id, message id) of a message ref."""
    channel, _, message = ref.rpartition(":")
    return int(channel), int(message)


def retry_after(exc: BaseException) -> float | None:
    """Seconds a rate-limit error asks to wait, None when `exc` is not one (429 or discord.py's RateLimited)."""
    if isinstance(exc, discord.RateLimited):
        return float(exc.retry_after)
    if isinstance(exc, discord.HTTPException) and exc.status == 429:
        headers = getattr(exc.response, "headers", None) or {}
        for name in ("Retry-After", "X-RateLimit-Reset-After"):
            value = headers.get(name)
            if value is not None:
                try:
                    return max(0.0, float(value))
                except ValueError:
                    continue
        return DEFAULT_RETRY_S
    return None


def kind_of(channel: object) -> ChatKind:
    """A DM is the private chat; guild channels and threads are groups."""
    return ChatKind.PRIVATE if isinstance(channel, discord.DMChannel) else ChatKind.GROUP


def _without_mention(text: str, bot_id: int) -> str:
    return re.sub(rf"<@!?{bot_id}>", "", text).strip()


def to_inbound(message: discord.Message, bot_user: discord.ClientUser) -> Inbound | None:
    """The message as an `Inbound`, or None when it is not for the core (bots, empty, system messages)."""
    author = message.author
    if author.bot or message.type not in (discord.MessageType.default, discord.MessageType.reply):
        return None
    kind = kind_of(message.channel)
    replied = message.reference.resolved if message.reference is not None else None
    mentioned = any(u.id == bot_user.id for u in message.mentions) and f"{bot_user.id}>" in message.content
    addressed = (
        kind is ChatKind.PRIVATE
        or mentioned
        or (isinstance(replied, discord.Message) and replied.author.id == bot_user.id)
    )
    text = _without_mention(message.content, bot_user.id)
    if not text:
        return None
    return Inbound(
        platform=PLATFORM,
        user_ref=str(author.id),
        chat_ref=str(message.channel.id),
        text=text,
        chat_kind=kind,
        display_name=author.display_name,
        addressed=addressed,
        message_ref=message_ref(message.channel.id, message.id),
    )


def approval_token(buttons_data: list[str]) -> str | None:
    """The approval token carried by a message's buttons, if any."""
    for data in buttons_data:
        parsed = parse_button(data)
        if parsed is not None:
            return parsed[0]
    return None
