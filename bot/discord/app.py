"""The Discord channel on discord.py 2.7: slash commands from the registry, free text, persistent approval buttons.

Every entry point ends in the same `BotCore` as Telegram (one access chain, one approvals service): a slash
command is written back as its command text, a DM or a message that mentions or replies to the bot is free text
(the message content intent), and an approval button press is a `ButtonPress` with the button's custom_id.
Personal commands run from a server answer ephemerally; approvals asked for in a server go to the owner's DM.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord
from discord import app_commands

from bot.core.dispatcher import BotCore
from bot.core.messages import ButtonPress, ChatKind, Inbound
from bot.core.permissions import Permission
from bot.core.registry import Command
from bot.discord.buttons import ApprovalButton
from bot.discord.convert import PLATFORM, kind_of, message_ref, to_inbound
from bot.discord.out import DiscordOut
from bot.discord.replier import DiscordEditor, InteractionReplier, MessageReplier, PressReplier, _Personal
from bot.discord.tree import add_registry

log = logging.getLogger(__name__)
# discord.py waits out shorter 429s itself; a longer one is raised (RateLimited) so a caller can decide.
MAX_RATELIMIT_WAIT_S = 30.0
DEFAULT_SYMBOLS = ("BTC", "ETH", "SOL", "AVAX", "XRP", "DOGE", "LINK", "ADA", "POL")
Connect = Callable[[discord.Client], Awaitable[None]]


def default_symbols() -> Sequence[str]:
    """Symbols offered by autocomplete when the market cannot list its own (the report symbols)."""
    return DEFAULT_SYMBOLS


def intents() -> discord.Intents:
    """Guilds, DMs and guild messages, with the privileged message content intent (free text on mention/reply)."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_messages = True
    wanted.dm_messages = True
    wanted.message_content = True
    return wanted


class BastionClient(discord.Client):
    """A discord.py client that hands everything to its `DiscordChannel`."""

    def __init__(self, channel: DiscordChannel, **options: Any) -> None:
        super().__init__(intents=intents(), max_ratelimit_timeout=MAX_RATELIMIT_WAIT_S, **options)
        self.bastion = channel
        self.tree: app_commands.CommandTree[BastionClient] = app_commands.CommandTree(self)

    async def setup_hook(self) -> None:
        """Register the persistent buttons (they work on messages sent before this start) and sync commands."""
        self.add_dynamic_items(ApprovalButton)
        await self.bastion.sync_commands()

    async def on_message(self, message: discord.Message) -> None:
        """Free text and typed commands."""
        await self.bastion.on_message(message)


class DiscordChannel:
    """The Discord bot wired to the core; `start`/`stop` it beside the other channels on one loop."""

    def __init__(
        self,
        core: BotCore,
        token: str,
        *,
        guild_ids: Sequence[int] = (),
        symbols: Callable[[], Sequence[str]] | None = None,
        sync: bool = True,
    ) -> None:
        self.core = core
        self.token = token
        self.guild_ids = list(guild_ids)
        self.sync = sync
        self.client = BastionClient(self)
        self.out = DiscordOut(self.client)
        self.editor = DiscordEditor(self.out)
        self.commands = add_registry(self.client.tree, core.registry, self.run_command, symbols or default_symbols)
        # How the client connects: discord.py's gateway by default; tests attach an in-memory Discord instead.
        self.connect: Connect = self._login
        self._task: asyncio.Task[None] | None = None

    async def sync_commands(self) -> None:
        """Publish the command tree: to each configured guild at once, else globally (Discord takes up to an hour)."""
        if not self.sync:
            return
        tree = self.client.tree
        if self.guild_ids:
            for guild_id in self.guild_ids:
                guild = discord.Object(id=guild_id)
                tree.copy_global_to(guild=guild)
                await tree.sync(guild=guild)
            log.info("discord commands synced to %d guild(s)", len(self.guild_ids))
        else:
            await tree.sync()
            log.info("discord commands synced globally")

    async def _login(self, client: discord.Client) -> None:
        self._task = asyncio.create_task(client.start(self.token), name="discord")
        ready = asyncio.create_task(client.wait_until_ready())
        await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            ready.cancel()
            await self._task  # surfaces a bad token or a missing privileged intent
        log.info("discord channel started as %s", client.user)

    async def start(self) -> None:
        """Connect and wait until Discord says the bot is ready."""
        await self.connect(self.client)

    async def stop(self) -> None:
        """Disconnect."""
        if not self.client.is_closed():
            await self.client.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _record_redirects(self, replier: _Personal) -> None:
        # After the core: it records the ref it was given (the public note); the buttons live in the DM.
        for token, ref in replier.redirected.items():
            await self.core.approvals.attach_message(token, PLATFORM, ref)

    async def on_message(self, message: discord.Message) -> None:
        """A message: free text (DM, mention, reply to the bot) or a typed /command, through the core."""
        user = self.client.user
        if user is None:
            return
        inbound = to_inbound(message, user)
        if inbound is None:
            return
        replier = MessageReplier(self.out, message)
        await self.core.handle(inbound, replier)
        await self._record_redirects(replier)

    async def run_command(self, interaction: discord.Interaction[Any], command: Command, text: str) -> None:
        """A slash command: acknowledged at once (ephemerally when personal and in a server), then the core."""
        in_guild = interaction.guild is not None
        personal = command.permission >= Permission.TRADER or command.private_only
        ephemeral = in_guild and personal
        await interaction.response.defer(ephemeral=ephemeral, thinking=True)
        inbound = Inbound(
            platform=PLATFORM,
            user_ref=str(interaction.user.id),
            chat_ref=str(interaction.channel_id),
            text=text,
            chat_kind=ChatKind.GROUP if in_guild else ChatKind.PRIVATE,
            display_name=interaction.user.display_name,
        )
        replier = InteractionReplier(self.out, interaction, ephemeral=ephemeral)
        await self.core.handle(inbound, replier)
        await self._record_redirects(replier)
        if not replier.answered:
            # Nothing to say (a throttled user was already told once): do not leave "thinking…" forever.
            await interaction.delete_original_response()

    async def on_press(self, interaction: discord.Interaction[Any], data: str) -> None:
        """An approval button: the core answers the presser, decides once and edits the message."""
        message = interaction.message
        if message is None:
            return
        press = ButtonPress(
            platform=PLATFORM,
            user_ref=str(interaction.user.id),
            chat_ref=str(message.channel.id),
            message_ref=message_ref(message.channel.id, message.id),
            data=data,
            chat_kind=kind_of(message.channel),
            display_name=interaction.user.display_name,
        )
        await self.core.press(press, PressReplier(self.out, interaction))
