"""Channel-agnostic messages: what a user sent (`Inbound`, `ButtonPress`) and what the bot answers (`Outbound`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Protocol

# Callback payload of approval buttons: "v1:<token>:y" approves, "v1:<token>:n" rejects (≤ 64 bytes on Telegram).
BUTTON_VERSION = "v1"
APPROVE, REJECT = "y", "n"


class ChatKind(StrEnum):
    """Where a message was written."""

    PRIVATE = "private"
    GROUP = "group"


@dataclass(frozen=True)
class Inbound:
    """One message from a user, already stripped of platform details."""

    platform: str
    user_ref: str  # the platform's user id
    chat_ref: str  # the platform's chat id
    text: str
    chat_kind: ChatKind = ChatKind.PRIVATE
    display_name: str | None = None
    addressed: bool = True  # private chat, or the bot was mentioned / replied to in a group
    message_ref: str | None = None  # the message itself (e.g. deleted after /connect)

    @property
    def is_private(self) -> bool:
        """True in a one-to-one chat with the bot."""
        return self.chat_kind is ChatKind.PRIVATE

    @cached_property  # read by every middleware and the core: parsed once per message (the text never changes)
    def command(self) -> tuple[str, str] | None:
        """(name, argument text) of a slash command, else None; `/price@bot btc` → ("price", "btc")."""
        if not self.text.startswith("/"):
            return None
        head, _, rest = self.text[1:].partition(" ")
        name = head.split("@", 1)[0].lower()
        return (name, rest.strip()) if name else None


@dataclass(frozen=True)
class ButtonPress:
    """A user pressed an inline button under one of the bot's messages."""

    platform: str
    user_ref: str
    chat_ref: str
    message_ref: str
    data: str
    chat_kind: ChatKind = ChatKind.PRIVATE
    display_name: str | None = None


@dataclass(frozen=True)
class Button:
    """An inline button: label shown, data sent back when pressed."""

    label: str
    data: str


@dataclass
class Outbound:
    """An answer: Markdown text, optional buttons (one row), optional picture (PNG bytes, never a server path)."""

    text: str = ""
    buttons: list[Button] = field(default_factory=list)
    photo: bytes | None = None
    private: bool = False  # personal data: in a group it goes to the user's private chat instead

    @property
    def empty(self) -> bool:
        """True when there is nothing to send."""
        return not self.text and self.photo is None


def approval_buttons(token: str) -> list[Button]:
    """[Approve] [Reject] for an approval token."""
    return [
        Button("Approve", f"{BUTTON_VERSION}:{token}:{APPROVE}"),
        Button("Reject", f"{BUTTON_VERSION}:{token}:{REJECT}"),
    ]


def parse_button(data: str) -> tuple[str, bool] | None:
    """(token, approve) of approval button data, None for anything else (old versions, garbage)."""
    parts = data.split(":")
    if len(parts) != 3 or parts[0] != BUTTON_VERSION or not parts[1] or parts[2] not in (APPROVE, REJECT):
        return None
    return parts[1], parts[2] == APPROVE


class Replier(Protocol):
    """How the core answers in the chat a message came from (implemented by each channel adapter)."""

    async def send(self, out: Outbound) -> str | None:
        """Send a message into the chat; returns its message ref (None when it could not be sent)."""
        ...

    async def edit(self, message_ref: str, out: Outbound) -> None:
        """Replace the text (and buttons) of a message the bot sent earlier."""
        ...

    async def send_private(self, out: Outbound) -> str | None:
        """Send to the user's private chat (group answers with personal data); None when impossible."""
        ...

    async def delete_user_message(self) -> bool:
        """Delete the message being handled (it carried secrets); False when the platform refused."""
        ...


class ButtonReplier(Protocol):
    """How the core answers a button press (implemented by each channel adapter)."""

    async def answer(self, text: str) -> None:
        """Answer the press itself (a short notice only the presser sees); call once, quickly."""
        ...

    async def edit(self, out: Outbound) -> None:
        """Replace the pressed message (its text, and its buttons with `out.buttons`)."""
        ...
