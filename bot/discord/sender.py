"""The outbox delivery worker's Discord sender: 429 → RetryAfter (the worker pauses), unreachable → RecipientGone.

A recipient is a snowflake: a channel (a subscribed server channel, or a DM channel) or a user, whose DM is opened
on first use. Snowflakes are unique across kinds, so a channel lookup that finds nothing means "a user". The
sender tries once; waiting and retrying is the worker's job, so it can pause the whole platform on a 429.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot.core.delivery import RecipientGone
from bot.core.delivery import RetryAfter as DeliveryRetryAfter
from bot.core.notify import outbound_of
from bot.discord.convert import PLATFORM, message_ref, retry_after
from bot.discord.out import DiscordOut, Patience
from storage.retry import RetryPolicy

log = logging.getLogger(__name__)
OnSent = Callable[[dict[str, Any], str], Awaitable[None]]
RESOLVED_MAX = 4096  # recipients whose channel is remembered (bounded: recipients are unbounded)


class DiscordSender:
    """Sends outbox payloads (Markdown text, approval buttons) with the bot; a single attempt per call."""

    platform = PLATFORM

    def __init__(self, client: discord.Client, on_sent: OnSent | None = None) -> None:
        self.client = client
        self.out = DiscordOut(client, Patience(RetryPolicy(attempts=1)))
        self.on_sent = on_sent
        self._channels: OrderedDict[int, Any] = OrderedDict()

    def is_group(self, recipient: str) -> bool:
        """True for a server channel (known once resolved)."""
        channel = self._channels.get(int(recipient)) or self.client.get_channel(int(recipient))
        return isinstance(channel, discord.abc.GuildChannel | discord.Thread)

    async def _resolve(self, recipient: int) -> Any:
        channel = self._channels.get(recipient) or self.client.get_channel(recipient)
        if channel is None:
            try:
                channel = await self.client.fetch_channel(recipient)
            except discord.NotFound:
                user = await self.client.fetch_user(recipient)  # NotFound here: nobody by that id either
                channel = user.dm_channel or await user.create_dm()
        self._channels[recipient] = channel
        self._channels.move_to_end(recipient)
        while len(self._channels) > RESOLVED_MAX:
            self._channels.popitem(last=False)
        return channel

    async def send(self, recipient: str, payload: dict[str, Any]) -> None:
        """Send one payload; maps Discord's errors onto the worker's retry vocabulary."""
        out = outbound_of(payload)
        try:
            channel = await self._resolve(int(recipient))
            message = await self.out.send(channel, out)
        except (discord.HTTPException, discord.RateLimited) as exc:
            wait = retry_after(exc)
            if wait is not None:
                raise DeliveryRetryAfter(wait) from None
            if isinstance(exc, discord.Forbidden | discord.NotFound):
                self._channels.pop(int(recipient), None)
                raise RecipientGone(str(exc)) from None
            raise
        if message is not None and self.on_sent is not None:
            await self.on_sent(payload, message_ref(message.channel.id, message.id))
