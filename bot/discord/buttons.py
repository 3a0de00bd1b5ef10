"""Approval buttons as persistent `discord.ui.DynamicItem`s: the core's button data is the custom_id.

A `DynamicItem` is rebuilt from the custom_id of whatever message it sits on, so a press works after a restart
with no view kept in memory: the token in the custom_id is all the state there is, and the core decides the rest
(owner, expiry, single use, exact action) through the same access chain as every other entry point.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import discord

from bot.core.messages import APPROVE, BUTTON_VERSION, REJECT, Button

if TYPE_CHECKING:
    from bot.discord.app import DiscordChannel

log = logging.getLogger(__name__)
TEMPLATE = rf"{BUTTON_VERSION}:(?P<token>[A-Za-z0-9_-]{{1,90}}):(?P<choice>[{APPROVE}{REJECT}])"


class ApprovalButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=TEMPLATE):
    """[Approve] or [Reject] of one approval; its custom_id is the core's button data."""

    def __init__(self, data: str, label: str) -> None:
        approve = data.endswith(f":{APPROVE}")
        style = discord.ButtonStyle.success if approve else discord.ButtonStyle.danger
        super().__init__(discord.ui.Button(label=label, style=style, custom_id=data))
        self.data = data

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ApprovalButton:
        """The button of a pressed message (also one sent before a restart)."""
        label = getattr(item, "label", None) or ("Approve" if match["choice"] == APPROVE else "Reject")
        return cls(match.group(0), label)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Hand the press to the channel, which runs it through the core."""
        channel: DiscordChannel | None = getattr(interaction.client, "bastion", None)
        if channel is None:
            log.error("a Discord button was pressed on a client without the Bastion channel")
            return
        await channel.on_press(interaction, self.data)


def view_of(buttons: list[Button]) -> discord.ui.View | None:
    """A persistent view (no timeout) of approval buttons; None when there are none (an edit then removes them)."""
    items = [ApprovalButton(b.data, b.label) for b in buttons if re.fullmatch(TEMPLATE, b.data)]
    if len(items) != len(buttons):
        log.warning("dropped %d button(s) Discord cannot carry", len(buttons) - len(items))
    if not items:
        return None
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return view
