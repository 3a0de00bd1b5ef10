"""The outbox delivery worker's Telegram sender: 429 → RetryAfter, blocked or gone chats → RecipientGone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Bot
from telegram.error import BadRequest, Forbidden, RetryAfter

from bot.core.delivery import RecipientGone
from bot.core.delivery import RetryAfter as DeliveryRetryAfter
from bot.core.notify import outbound_of
from bot.telegram.convert import PLATFORM, retry_seconds
from bot.telegram.replier import TelegramOut

GONE_HINTS = ("chat not found", "user is deactivated", "bot was kicked", "have no rights to send")
OnSent = Callable[[dict[str, Any], str], Awaitable[None]]


class TelegramSender:
    """Sends outbox payloads (Markdown text, buttons) with the bot; single attempt, the worker retries."""

    platform = PLATFORM

    def __init__(self, bot: Bot, on_sent: OnSent | None = None) -> None:
        self.out = TelegramOut(bot, retry=False)
        self.on_sent = on_sent

    def is_group(self, recipient: str) -> bool:
        """Group and channel chat ids are negative on Telegram."""
        return recipient.startswith("-")

    async def send(self, recipient: str, payload: dict[str, Any]) -> None:
        """Send one payload; maps Telegram's errors onto the worker's retry vocabulary."""
        out = outbound_of(payload)
        try:
            ref = await self.out.send(int(recipient), out)
        except RetryAfter as exc:
            raise DeliveryRetryAfter(retry_seconds(exc)) from None
        except Forbidden as exc:
            raise RecipientGone(str(exc)) from None
        except BadRequest as exc:
            if any(h in str(exc).lower() for h in GONE_HINTS):
                raise RecipientGone(str(exc)) from None
            raise
        if ref is not None and self.on_sent is not None:
            await self.on_sent(payload, ref)
