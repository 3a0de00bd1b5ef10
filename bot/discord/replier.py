"""The core's repliers on Discord: a channel or DM message, a slash command interaction, a button press.

Personal data never lands in a public channel: the core sends what it marks private through `send_private`
(ephemeral for a slash command, a DM for a message), and an approval (its buttons carry an order) asked for in a
server goes to the owner's DM, with a short note where it was asked. The DM's message is the one recorded for the
approval, so the expiry sweep edits the message that has the buttons.
"""

from __future__ import annotations

import logging
from typing import Any

import discord

from bot.core.messages import Outbound
from bot.discord.convert import approval_token, message_ref
from bot.discord.out import DiscordOut

log = logging.getLogger(__name__)
SENT_TO_DM = "I sent you the confirmation in a direct message: approvals are personal."
DM_CLOSED = (
    "That needs a direct message, and I cannot write to you: allow direct messages from server members "
    "(Privacy Settings of this server) and ask again."
)


def _ref(message: discord.Message | None) -> str | None:
    return message_ref(message.channel.id, message.id) if message is not None else None


def carries_approval(out: Outbound) -> str | None:
    """The approval token when `out` has approval buttons."""
    return approval_token([b.data for b in out.buttons])


class _Personal:
    """Shared by the repliers: the user's DM, and approvals asked for in a server redirected into it."""

    def __init__(self, out: DiscordOut, user: discord.User | discord.Member, in_guild: bool) -> None:
        self.out = out
        self.user = user
        self.in_guild = in_guild
        # token → DM message ref of approvals redirected from a server (the channel records them after the core).
        self.redirected: dict[str, str] = {}

    async def send_dm(self, out: Outbound) -> str | None:
        """Send to the user's DM; None when they do not accept DMs from the bot."""
        try:
            dm = self.user.dm_channel or await self.user.create_dm()
            return _ref(await self.out.send(dm, out))
        except (discord.Forbidden, discord.NotFound):
            log.info("cannot DM discord user %s", self.user.id)
            return None

    async def _to_dm(self, out: Outbound, token: str) -> str | None:
        ref = await self.send_dm(out)
        if ref is not None:
            self.redirected[token] = ref
        return ref


def manages_server(user: discord.User | discord.Member) -> bool:
    """Whether a server member has Manage Server (administrators have it too); False outside a server."""
    return isinstance(user, discord.Member) and user.guild_permissions.manage_guild


class MessageReplier(_Personal):
    """The core's `Replier` for one message typed in a DM or a server channel."""

    def __init__(self, out: DiscordOut, message: discord.Message) -> None:
        super().__init__(out, message.author, message.guild is not None)
        self.message = message

    async def send(self, out: Outbound) -> str | None:
        """Send into the channel of the message (an approval from a server goes to the DM)."""
        token = carries_approval(out)
        if token is not None and self.in_guild:
            ref = await self._to_dm(out, token)
            await self.out.send(self.message.channel, Outbound(SENT_TO_DM if ref else DM_CLOSED))
            return ref
        return _ref(await self.out.send(self.message.channel, out))

    async def edit(self, message_ref_: str, out: Outbound) -> None:
        """Edit a message the bot sent (the end of a streamed answer; its buttons go to the DM in a server)."""
        token = carries_approval(out)
        if token is not None and self.in_guild:
            ref = await self._to_dm(out, token)
            public = Outbound(f"{out.text}\n\n{SENT_TO_DM if ref else DM_CLOSED}")
            await self.out.edit(message_ref_, public)
            return
        await self.out.edit(message_ref_, out)

    async def send_private(self, out: Outbound) -> str | None:
        """Personal data asked for in a server: to the user's DM (an approval is recorded with its DM message)."""
        token = carries_approval(out)
        return await (self._to_dm(out, token) if token is not None else self.send_dm(out))

    async def is_chat_admin(self) -> bool:
        """A server's admin is a member with Manage Server (commands that act for the whole channel)."""
        return manages_server(self.message.author)

    async def delete_user_message(self) -> bool:
        """Delete the message being handled (it carried secrets)."""
        try:
            await self.out.patience(self.message.delete)
            return True
        except (discord.Forbidden, discord.NotFound):
            log.warning("could not delete a message in discord channel %s", self.message.channel.id)
            return False


class InteractionReplier(_Personal):
    """The core's `Replier` for one slash command; the interaction is deferred (ephemerally when personal)."""

    def __init__(self, out: DiscordOut, interaction: discord.Interaction[Any], *, ephemeral: bool) -> None:
        super().__init__(out, interaction.user, interaction.guild is not None)
        self.interaction = interaction
        self.ephemeral = ephemeral
        self.answered = False
        self._private_in_place = False
        self._ephemeral_ids: set[int] = set()

    async def _followup(self, out: Outbound, ephemeral: bool) -> str | None:
        followup = self.interaction.followup

        async def send(**kwargs: Any) -> discord.WebhookMessage:
            return await followup.send(**kwargs, ephemeral=ephemeral, wait=True)

        message = await self.out.send_with(send, out)
        self.answered = self.answered or message is not None
        if message is not None and ephemeral:
            self._ephemeral_ids.add(message.id)
        return message_ref(self.interaction.channel_id or 0, message.id) if message is not None else None

    async def send(self, out: Outbound) -> str | None:
        """Answer the command (an approval from a server goes to the DM, with an ephemeral note)."""
        if self._private_in_place:
            # The core follows a private answer with "I sent it to your private chat"; here the answer was
            # ephemeral right where it was asked, so that note would only mislead.
            self._private_in_place = False
            return None
        token = carries_approval(out)
        if token is not None and self.in_guild:
            ref = await self._to_dm(out, token)
            await self._followup(Outbound(SENT_TO_DM if ref else DM_CLOSED), True)
            return ref
        return await self._followup(out, self.ephemeral)

    async def send_private(self, out: Outbound) -> str | None:
        """Personal data asked for in a server: an ephemeral answer only the user sees."""
        if not self.in_guild:
            return await self._followup(out, False)
        token = carries_approval(out)
        if token is not None:
            return await self._to_dm(out, token)  # the core's note that follows is true: it went to the DM
        ref = await self._followup(out, True)
        self._private_in_place = ref is not None
        return ref

    async def edit(self, message_ref_: str, out: Outbound) -> None:
        """Edit an answer of this interaction (ephemeral ones through the interaction's webhook)."""
        message_id = int(message_ref_.rpartition(":")[2])
        if message_id in self._ephemeral_ids:
            webhook = self.interaction.followup

            async def edit(**kwargs: Any) -> Any:
                return await webhook.edit_message(message_id, **kwargs)

            async def more(**kwargs: Any) -> Any:
                return await webhook.send(**kwargs, ephemeral=True, wait=True)

            await self.out.edit_message(edit, out, more)
            return
        await self.out.edit(message_ref_, out)

    async def is_chat_admin(self) -> bool:
        """A server's admin is a member with Manage Server (commands that act for the whole channel)."""
        return manages_server(self.interaction.user)

    async def delete_user_message(self) -> bool:
        """A slash command's options are never posted in the channel: there is no message to delete."""
        return True


class PressReplier:
    """The core's `ButtonReplier` for one button press."""

    def __init__(self, out: DiscordOut, interaction: discord.Interaction[Any]) -> None:
        self.out = out
        self.interaction = interaction

    async def answer(self, text: str) -> None:
        """Answer the press with a notice only the presser sees (once)."""
        if self.interaction.response.is_done():
            return
        await self.out.patience(lambda: self.interaction.response.send_message(text[:2000], ephemeral=True))

    async def edit(self, out: Outbound) -> None:
        """Edit the pressed message with the outcome (its buttons removed)."""
        message = self.interaction.message
        if message is None:
            return
        await self.out.edit_message(message.edit, out, message.channel.send)


class DiscordEditor:
    """Edits messages by ref (approval expiry, settled orders)."""

    def __init__(self, out: DiscordOut) -> None:
        self.out = out

    async def edit_ref(self, message_ref: str, out: Outbound) -> None:
        """Replace the text of the message and remove its buttons."""
        await self.out.edit(message_ref, out)
