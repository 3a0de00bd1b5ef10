"""The channel-agnostic heart of the bots: the access chain, commands, free text, button presses."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agents.runner import AnalystChat, Reply
from agents.state import TurnContext
from bot.api.metrics import Metrics
from bot.core.approvals import EXPIRED_TEXT, NOT_VALID, ApprovalsService, closed_text
from bot.core.identities import IdentityBatcher
from bot.core.messages import (
    ButtonPress,
    ButtonReplier,
    Inbound,
    Outbound,
    Replier,
    approval_buttons,
    parse_button,
)
from bot.core.middleware import Data, Event, access_chain
from bot.core.permissions import AccessPolicy
from bot.core.registry import CommandCall, CommandRegistry, Permission, UsageError
from bot.core.streaming import StreamedAnswer
from bot.core.userlimit import UserRateLimiter
from engine.alerts.parse import is_alert_request
from engine.reports.phrases import spoken_command
from tools.market.cache import CoalescingCache

log = logging.getLogger(__name__)
USER_CACHE_S = 60.0
USER_CACHE_MAX = 4096


class MessageEditor(Protocol):
    """Edits a message the bot sent earlier, by its stored ref (approval expiry)."""

    async def edit_ref(self, message_ref: str, out: Outbound) -> None:
        """Replace the text of the message and remove its buttons."""
        ...


@dataclass
class _CachedUser:
    user_id: int
    permission: Permission
    at: float


def thread_id_of(msg: Inbound | ButtonPress) -> str:
    """The conversation: the private chat, or one user within a group (memories never mix)."""
    if msg.chat_kind == "private":
        return f"{msg.platform}:{msg.chat_ref}"
    return f"{msg.platform}:{msg.chat_ref}:{msg.user_ref}"


def turn_context(msg: Inbound | ButtonPress, user_id: int, *, may_trade: bool = False) -> TurnContext:
    """The analyst's context for a message or press: the user, the platform, the conversation, trading access."""
    return TurnContext(user_id=user_id, platform=msg.platform, chat_ref=thread_id_of(msg), may_trade=may_trade)


def reply_outbound(reply: Reply) -> Outbound:
    """A graph reply as a message: text, the first chart as a picture, approval buttons."""
    text = reply.text
    if reply.approval is not None:
        text += "\n\nApprove or reject below (the buttons stop working when the confirmation expires)."
    return Outbound(
        text=text,
        buttons=approval_buttons(reply.approval.token) if reply.approval else [],
        photo=reply.photos[0] if reply.photos else None,
    )


class BotCore:
    """Turns inbound messages and button presses into answers; shared by Telegram, Discord and the console."""

    def __init__(
        self,
        *,
        registry: CommandRegistry,
        chat: AnalystChat,
        approvals: ApprovalsService,
        sessions: async_sessionmaker[AsyncSession],
        policy: AccessPolicy,
        limiter: UserRateLimiter,
        stream_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        user_cache_size: int = USER_CACHE_MAX,
    ) -> None:
        self.registry = registry
        self.chat = chat
        self.approvals = approvals
        self.sessions = sessions
        self.policy = policy
        self.limiter = limiter
        self.stream_interval_s = stream_interval_s
        self.clock = clock
        # Bounded: every user who ever wrote would otherwise stay in memory for the life of the process.
        self._users = CoalescingCache(max_entries=user_cache_size, clock=clock)
        self._identities = IdentityBatcher(sessions)
        self._forgotten = 0  # counts forget_user calls
        self.not_valid = NOT_VALID
        self.metrics: Metrics | None = None  # counted by the observe middleware when `bastion serve` sets it
        self._inbound = access_chain(self, self._on_inbound)
        self._press = access_chain(self, self._on_press)

    async def user(self, platform: str, user_ref: str, display_name: str | None = None) -> _CachedUser:
        """The user's id and permission (created on first contact; cached briefly, in a bounded LRU)."""
        key = (platform, user_ref)
        cached = self._users.peek(key)
        if cached is not None:
            return cached
        # Batched with the other lookups of the moment: one read for all, one write for the new ones. Four columns,
        # not the ORM row: this runs once a minute per active user.
        forgotten = self._forgotten
        row = await self._identities.identity(platform, user_ref, display_name)
        fresh = _CachedUser(row.id, self.policy.permission(platform, user_ref, row.roles or []), self.clock())
        if forgotten == self._forgotten:  # roles changed while this read was out: it may predate them, keep it not
            self._users.put(key, fresh, USER_CACHE_S)
        return fresh

    def forget_user(self, platform: str, user_ref: str) -> None:
        """Drop a cached permission (after roles changed); a lookup under way meanwhile is not cached either."""
        self._forgotten += 1
        self._users.invalidate((platform, user_ref))

    @property
    def cached_users(self) -> int:
        """How many users' permissions are cached (bounded by `user_cache_size`)."""
        return len(self._users)

    async def may_trade_now(self, user_id: int) -> bool:
        """Whether the user may trade, read fresh from the database (the cache is for reads, not for orders)."""
        async with self.sessions() as session:
            return await self.policy.may_trade(session, user_id)

    async def handle(self, msg: Inbound, replier: Replier) -> None:
        """Answer one inbound message through the access chain; never raises (failures become a polite message)."""
        if msg.command is None and not msg.addressed:
            return  # group chatter not meant for the bot
        spoken = spoken_command(msg.text) if msg.command is None else None
        if spoken is not None and self.registry.get(spoken[0]) is not None:
            # A report or subscription asked in words is that command, through the whole chain: its parser, its
            # messages and its group-admin rule, exactly as if the slash command had been typed.
            msg = replace(msg, text=f"/{spoken[0]} {spoken[1]}".strip())
        await self._inbound(msg, {"replier": replier})

    async def _on_inbound(self, event: Event, data: Data) -> None:
        assert isinstance(event, Inbound)
        command = event.command
        if command is None and is_alert_request(event.text) and self.registry.get("alert") is not None:
            command = ("alert", event.text)  # an alert in plain words: the same reader and buttons as /alert
        if command is not None:
            await self._command(event, command[0], command[1], data)
        else:
            await self._free_text(event, data["user"], bool(data.get("may_trade")), data["replier"])

    async def _command(self, msg: Inbound, name: str, arg_text: str, data: Data) -> None:
        replier: Replier = data["replier"]
        user: _CachedUser = data["user"]
        command = data.get("command") or self.registry.get(name)
        if command is None:
            await replier.send(Outbound(f"Unknown command /{name}. Send /help for the list."))
            return
        deleted: bool | None = data.get("deleted")
        if command.private_only and not msg.is_private:
            if command.name == "connect" and deleted is not None:
                # Keys typed in a group are compromised: never store them (the chain already removed the message).
                note = " I deleted your message." if deleted else " Delete that message and rotate those keys now."
                await replier.send(Outbound(f"Keys are only accepted in a private chat with me.{note}"))
            else:
                await replier.send(Outbound(f"/{command.name} works only in a private chat with me."))
            return
        try:
            args = self.registry.parse_args(command, arg_text)
        except UsageError as exc:
            await replier.send(Outbound(str(exc)))
            return
        call = CommandCall(msg, user.user_id, args, replier, user.permission, deleted=deleted)
        result = await command.handler(call)
        outs = [result] if isinstance(result, Outbound) else list(result or [])
        for out in outs:
            await self.deliver(msg, out, replier)

    async def deliver(self, msg: Inbound, out: Outbound, replier: Replier) -> str | None:
        """Send an answer; personal data asked for in a group goes to the user's private chat instead."""
        if out.empty:
            return None
        if out.private and not msg.is_private:
            ref = await replier.send_private(out)
            note = (
                "I sent you the answer in a private chat."
                if ref
                else "That is personal: open a private chat with me (press Start there) and ask again."
            )
            await replier.send(Outbound(note))
            return ref
        ref = await replier.send(out)
        await self._track_buttons(msg.platform, out, ref)
        return ref

    async def _track_buttons(self, platform: str, out: Outbound, ref: str | None) -> None:
        for button in out.buttons:
            parsed = parse_button(button.data)
            if parsed is not None and ref is not None:
                await self.approvals.attach_message(parsed[0], platform, ref)
                return

    async def _free_text(self, msg: Inbound, user: _CachedUser, may_trade: bool, replier: Replier) -> None:
        ctx = turn_context(msg, user.user_id, may_trade=may_trade)
        async with StreamedAnswer(replier, self.stream_interval_s) as stream:  # no preview outlives a failed turn
            reply = await self.chat.ask(ctx, ctx.chat_ref, msg.text, on_token=stream.on_token)
            out = reply_outbound(reply)
            ref = await stream.finish(out)
        await self._track_buttons(msg.platform, out, ref)

    async def press(self, press: ButtonPress, replier: ButtonReplier) -> None:
        """Handle an approval button through the access chain: answer at once, decide once, edit with the outcome."""
        await self._press(press, {"replier": replier})

    async def _on_press(self, event: Event, data: Data) -> None:
        assert isinstance(event, ButtonPress)
        replier: ButtonReplier = data["replier"]
        user: _CachedUser = data["user"]
        token, approve = data["button"]
        async with self.approvals.lock(token):
            row = await self.approvals.get(token)
            problem = self.approvals.refusal(row, user.user_id)
            if problem is not None or row is None:
                await replier.answer(problem or NOT_VALID)
                return
            await replier.answer(self.approvals.acknowledgement(row, approve))
            ctx = turn_context(event, user.user_id, may_trade=bool(data.get("may_trade")))
            outcome = await self.approvals.decide(ctx, row, approve)
            await replier.edit(Outbound(closed_text(row.summary, outcome)))

    async def expire_approvals(self, editors: Mapping[str, MessageEditor]) -> int:
        """Expire overdue approvals and edit their button messages to say so; returns how many expired."""
        rows = await self.approvals.expire()
        for row in rows:
            editor = editors.get(row.platform or "")
            if editor is None or not row.message_ref:
                continue
            try:
                await editor.edit_ref(row.message_ref, Outbound(closed_text(row.summary, EXPIRED_TEXT)))
            except Exception:
                log.warning("could not mark approval %s… as expired in its chat", row.token[:6], exc_info=True)
        return len(rows)
