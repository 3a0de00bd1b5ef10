"""Sending and editing on Discord for the core: Markdown rendering, 2,000/4,096 splitting, embeds, 429 waits.

Text goes out as messages of at most 2,000 characters; a picture goes out as an embed whose description holds up
to 4,096 characters with the PNG attached and shown as the embed's image. Buttons ride on the last message.
Interactive calls wait out a 429 (`retry_after`) a bounded number of times; the outbox sender does not wait but
hands the delay to the delivery worker, which pauses the platform.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import discord

from bot.core.messages import Outbound
from bot.core.render import DISCORD_EMBED_LIMIT, DISCORD_LIMIT, render_for, split_message, to_discord
from bot.discord.buttons import view_of
from bot.discord.convert import retry_after, split_ref
from storage.retry import RetryPolicy, retry_async

log = logging.getLogger(__name__)
T = TypeVar("T")
CHART_NAME = "chart.png"
# Interactive calls: five tries within a minute in all; the outbox sender tries once (the worker paces).
INTERACTIVE_RETRY = RetryPolicy(attempts=5, budget_s=60.0)
EMBED_COLOUR = discord.Colour.dark_teal()


def render(out: Outbound) -> list[dict[str, Any]]:
    """The keyword arguments of each message `out` becomes (content or embed+file; the view on the last)."""
    messages: list[dict[str, Any]] = []
    if out.photo is not None:
        parts = split_message(to_discord(out.text), DISCORD_EMBED_LIMIT, "markdown") if out.text.strip() else []
        embed = discord.Embed(description=parts[0] if parts else None, colour=EMBED_COLOUR)
        embed.set_image(url=f"attachment://{CHART_NAME}")
        messages.append({"embed": embed, "file": discord.File(io.BytesIO(out.photo), filename=CHART_NAME)})
        for part in parts[1:]:
            messages.extend({"content": c} for c in split_message(part, DISCORD_LIMIT, "markdown") if c.strip())
    elif out.text:
        messages.extend({"content": c} for c in render_for("discord", out.text))
    view = view_of(out.buttons)
    if messages and view is not None:
        messages[-1]["view"] = view
    return messages


class Patience:
    """Waits out Discord's 429s for interactive calls: sleep `retry_after`, try again, within a budget."""

    def __init__(self, policy: RetryPolicy = INTERACTIVE_RETRY) -> None:
        self.policy = policy
        self.waited = 0  # 429s waited out, for tests and logs

    async def __call__(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one REST call, retrying after each 429 until the attempts or the time budget run out."""

        def note(retry: int, exc: BaseException, wait: float) -> None:
            log.info("discord asked to wait %.2f s (attempt %d)", wait, retry + 1)
            self.waited += 1

        return await retry_async(call, self.policy, retry_on=_rate_limited, wait_of=retry_after, on_retry=note)


def _rate_limited(exc: BaseException) -> bool:
    return retry_after(exc) is not None


class DiscordOut:
    """Discord operations on the bot's own messages, shared by replies, presses, expiry edits and the outbox."""

    def __init__(self, client: discord.Client, patience: Patience | None = None) -> None:
        self.client = client
        self.patience = patience or Patience()

    async def channel(self, channel_id: int) -> Any:
        """A messageable channel by id (cache first, then the API)."""
        found = self.client.get_channel(channel_id)
        if found is None:
            found = await self.patience(lambda: self.client.fetch_channel(channel_id))
        return found

    async def send_with(self, send: Callable[..., Awaitable[Any]], out: Outbound) -> discord.Message | None:
        """Send `out` through `send` (a channel's send or an interaction followup); returns the last message."""
        last = None
        for kwargs in render(out):

            def call(kwargs: dict[str, Any] = kwargs) -> Awaitable[Any]:
                return send(**_fresh(kwargs))

            last = await self.patience(call)
        return last

    async def send(self, channel: Any, out: Outbound) -> discord.Message | None:
        """Send `out` into a channel or DM."""
        return await self.send_with(channel.send, out)

    async def edit(self, ref: str, out: Outbound) -> None:
        """Replace a message's text and buttons (its embed and picture go); text beyond one message goes out anew."""
        channel_id, message_id = split_ref(ref)
        channel = await self.channel(channel_id)
        await self.edit_message(channel.get_partial_message(message_id).edit, out, channel.send)

    async def edit_message(
        self, edit: Callable[..., Awaitable[Any]], out: Outbound, send_more: Callable[..., Awaitable[Any]]
    ) -> None:
        """Edit one of the bot's messages to `out` (the first chunk; further chunks follow through `send_more`)."""
        chunks = render_for("discord", out.text) or ["\u200b"]
        view = view_of(out.buttons) if len(chunks) == 1 else None
        await self.patience(lambda: edit(content=chunks[0], embeds=[], attachments=[], view=view))
        for i, chunk in enumerate(chunks[1:], start=2):
            rest_view = view_of(out.buttons) if i == len(chunks) else None
            more: dict[str, Any] = {"content": chunk}
            if rest_view is not None:
                more["view"] = rest_view

            def call(more: dict[str, Any] = more) -> Awaitable[Any]:
                return send_more(**more)

            await self.patience(call)


def _fresh(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A retry must not resend a consumed file: rewind it (discord.py closes nothing it was not asked to)."""
    file = kwargs.get("file")
    if isinstance(file, discord.File):
        file.reset()
    return kwargs
