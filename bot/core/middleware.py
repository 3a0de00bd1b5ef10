"""The access chain around every entry point (slash command, free text, button press), composed once.

Each middleware is `async (handler, event, data) -> None` (aiogram's shape): it may stop the event, add to
`data` for the ones after it, or wrap the rest of the chain. `data["replier"]` is how to answer. The bot core
composes, outermost first:

1. error rendering — any failure below becomes one polite message and a log entry, never a traceback;
2. secret scrubbing — a message that carries keys is deleted first of all (before rate limit, permission or
   argument parsing can refuse it and leave it in the chat); key-like free text never reaches the model;
3. rate limit — per user, one polite notice when exceeded;
4. identity — the user row (created on first contact) and its permission;
5. authorisation — the command's permission; free text learns whether the user may trade (read-only public
   tools otherwise); an Approve press re-reads the role fresh from the database.

Scrubbing sits before the rate limit on purpose: a refused or throttled message must still not leave keys
readable in a group.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from bot.core.messages import ButtonPress, Inbound, Outbound, parse_button
from bot.core.observed import observe
from bot.core.permissions import Permission, refusal
from bot.core.userlimit import polite_message
from storage.exchange_ids import SUPPORTED_EXCHANGES

if TYPE_CHECKING:
    from bot.core.dispatcher import BotCore

log = logging.getLogger(__name__)
Event = Inbound | ButtonPress
Data = dict[str, Any]
Handler = Callable[[Event, Data], Awaitable[None]]
Middleware = Callable[[Handler, Event, Data], Awaitable[None]]

SORRY = "Something went wrong on my side; please try again in a moment."
CONNECT = "connect"
KEYS_IN_CHAT = (
    "That looks like an exchange API key and secret. I did not read it, pass it on or keep it{deleted}. "
    "Treat that key as exposed: rotate it (delete it at the exchange and make a new one), then connect the new "
    "one with `/connect <exchange> <key> <secret>` in a private chat with me."
)
# A credential-like token: long, letters and digits mixed, in the alphabets exchanges use (hex, base62,
# base64, UUIDs). Ordinary words, prices and symbols never qualify.
_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{16,}")
_KEY_WORDS = re.compile(r"\b(api[\s_-]?key|apikey|secret|passphrase|private key|key)\b", re.IGNORECASE)


def compose(middlewares: Sequence[Middleware], handler: Handler) -> Handler:
    """One handler running `middlewares` in order (the first is outermost) around `handler`."""
    chained = handler
    for middleware in reversed(middlewares):
        chained = functools.partial(middleware, chained)
    return chained


def _credential_tokens(text: str) -> list[str]:
    found = []
    for raw in text.split():
        token = raw.strip("\"'`.,;:()[]{}<>")
        if "://" in raw or token.lower().startswith("0x"):
            continue  # links, and on-chain addresses or hashes, are not exchange keys
        if _TOKEN.fullmatch(token) and re.search(r"[A-Za-z]", token) and re.search(r"\d", token):
            found.append(token)
    return found


def looks_like_credentials(text: str) -> bool:
    """Whether a message seems to carry an API key/secret pair (two key-like tokens, or one named as a key)."""
    tokens = _credential_tokens(text)
    return len(tokens) >= 2 or (len(tokens) == 1 and _KEY_WORDS.search(text) is not None)


def connect_carries_keys(arg_text: str) -> bool:
    """Whether `/connect`'s argument text may hold secrets (anything beyond one known exchange name)."""
    tokens = arg_text.split()
    return len(tokens) > 1 or (len(tokens) == 1 and tokens[0].lower() not in SUPPORTED_EXCHANGES)


async def _say(event: Event, data: Data, text: str) -> None:
    replier = data["replier"]
    if isinstance(event, ButtonPress):
        await replier.answer(text)
    else:
        await replier.send(Outbound(text))


async def render_errors(handler: Handler, event: Event, data: Data) -> None:
    """A failure anywhere below becomes one polite message (the traceback goes to the log, not the user)."""
    try:
        await handler(event, data)
    except Exception:
        kind = "button press" if isinstance(event, ButtonPress) else "message"
        log.exception("handling a %s %s failed", event.platform, kind)
        try:
            await _say(event, data, SORRY)
        except Exception:
            log.debug("could not even apologise on %s", event.platform, exc_info=True)


async def scrub_secrets(handler: Handler, event: Event, data: Data) -> None:
    """Delete a message carrying keys before anything else; key-like free text stops here with advice."""
    if not isinstance(event, Inbound):
        await handler(event, data)
        return
    command = event.command
    if command is not None and command[0] == CONNECT:
        if connect_carries_keys(command[1]):
            data["deleted"] = await data["replier"].delete_user_message()
        await handler(event, data)
        return
    if looks_like_credentials(event.text):
        deleted = await data["replier"].delete_user_message()
        log.warning("dropped a %s message that looked like exchange credentials", event.platform)
        note = ", and I deleted your message" if deleted else "; delete your message now"
        await data["replier"].send(Outbound(KEYS_IN_CHAT.format(deleted=note)))
        return
    await handler(event, data)


def rate_limit(core: BotCore) -> Middleware:
    """Per-user rate limit: over the limit, one polite notice and the event is dropped."""

    async def middleware(handler: Handler, event: Event, data: Data) -> None:
        verdict = await core.limiter.take(f"{event.platform}:{event.user_ref}")
        if not verdict.allowed:
            if verdict.notify:
                await _say(event, data, polite_message(verdict))
            return
        await handler(event, data)

    return middleware


def identify(core: BotCore) -> Middleware:
    """The user's id and permission (created on first contact), as `data["user"]`."""

    async def middleware(handler: Handler, event: Event, data: Data) -> None:
        data["user"] = await core.user(event.platform, event.user_ref, event.display_name)
        await handler(event, data)

    return middleware


GROUP_ADMINS_ONLY = "Only this group's admins can use /{name} here: it acts for the whole group."


async def _chat_admin(data: Data) -> bool:
    """Whether the sender administers the group, asked of the channel adapter (no check offered: refused)."""
    check = getattr(data["replier"], "is_chat_admin", None)
    return bool(await check()) if check is not None else False


def authorise(core: BotCore) -> Middleware:
    """The command's permission; `data["may_trade"]` for free text and presses (fresh from the DB at a press)."""

    async def middleware(handler: Handler, event: Event, data: Data) -> None:
        user = data["user"]
        if isinstance(event, ButtonPress):
            parsed = parse_button(event.data)
            if parsed is None:
                await data["replier"].answer(core.not_valid)
                return
            data["button"] = parsed
            # Rejecting places nothing, so anyone may close their own proposal; approving needs the trader
            # role now — not 60 s ago in the cache.
            may_trade = await core.may_trade_now(user.user_id)
            if parsed[1] and not may_trade and not await core.approvals.trade_free(parsed[0]):
                log.info("approve press refused: %s user %s may not trade", event.platform, event.user_ref)
                # Someone else's button says so (the truer reason in a group); one's own says why not.
                row = await core.approvals.get(parsed[0])
                foreign = row is None or row.owner_user_id != user.user_id
                problem = core.approvals.refusal(row, user.user_id) if foreign else None
                await data["replier"].answer(problem or refusal(Permission.TRADER))
                return
            data["may_trade"] = may_trade
            await handler(event, data)
            return
        command = event.command
        if command is not None:
            found = core.registry.get(command[0])
            if found is not None and found.permission > user.permission:
                await data["replier"].send(Outbound(refusal(found.permission)))
                return
            if found is not None and found.group_admin and not event.is_private and not await _chat_admin(data):
                await data["replier"].send(Outbound(GROUP_ADMINS_ONLY.format(name=found.name)))
                return
            data["command"] = found
        data["may_trade"] = user.permission >= Permission.TRADER
        await handler(event, data)

    return middleware


def access_chain(core: BotCore, handler: Handler) -> Handler:
    """The standard chain of the bot core around `handler`."""
    return compose(
        [render_errors, observe(core), scrub_secrets, rate_limit(core), identify(core), authorise(core)], handler
    )
