"""Slash commands on Discord, generated from the shared registry, driven through discord.py's real tree by SimCord."""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import simcord

from bot.discord.out import CHART_NAME
from bot.discord.tree import Option, options_of
from tests.bot.discord.harness import World, discord_world, grant


@pytest.fixture
async def world(sqlite_url: str, tmp_path: Path) -> AsyncIterator[World]:
    """A guild with Alice (trader) and Bob; a generous rate limit (a test types faster than a person)."""
    async with discord_world(sqlite_url, tmp_path, bot={"burst": 100, "rate_per_minute": 600}) as w:
        yield w


def said(result: simcord.InteractionResult) -> str:
    """Everything the interaction answered: the response and the follow-ups, embeds' descriptions included."""
    parts = []
    for msg in [result.response, *result.followups]:
        if msg is None:
            continue
        parts.append(msg.content)
        parts.extend(e.description or "" for e in msg.embeds)
    return "\n".join(p for p in parts if p)


def sample_value(option: Option) -> Any:
    """A plausible value of an option's type (a symbol, the first choice, a number)."""
    if option.name == "symbol":
        return "btc"
    if typing.get_origin(option.annotation) is typing.Literal:
        return typing.get_args(option.annotation)[0]
    return {float: 1.0, int: 1}.get(option.annotation, "btc")


# name → (valid options, what the answer says, invalid options, what the refusal says). Valid runs are answered by
# the real handlers (Alice has no account yet, so account commands say so); invalid ones by the registry's usage.
NO_ACCOUNT = "No exchange account is connected"
CASES: dict[str, tuple[dict[str, Any], str, dict[str, Any] | None, str]] = {
    "start": ({}, "Hi alice", None, ""),
    "help": ({}, "/price <symbol>", None, ""),
    "price": ({"symbol": "btc"}, "BTC/USDT:USDT", {"symbol": "notacoin"}, "Unknown symbol"),
    "levels": ({"symbol": "eth", "timeframe": "4h"}, "ETH/USDT:USDT", {"symbol": "???"}, "is not a symbol"),
    "chart": ({"symbol": "sol"}, "SOL/USDT:USDT", {"symbol": "zz9"}, "Unknown symbol"),
    "analyze": ({"symbol": "btc", "timeframe": "4h"}, "BTC/USDT:USDT", {"symbol": "x y"}, "Usage: `/analyze"),
    "overview": ({"symbol": "sol"}, "SOL/USDT:USDT", {"symbol": "nope1"}, "Unknown symbol"),
    "positions": ({}, NO_ACCOUNT, None, ""),
    "balance": ({}, NO_ACCOUNT, None, ""),
    "orders": ({}, NO_ACCOUNT, None, ""),
    "arm": ({"mode": "auto"}, "yours: none", {"label": "x" * 65}, "Usage: `/arm"),
    "disarm": ({"label": "main"}, "yours: none", {"label": "y" * 65}, "Usage: `/disarm"),
    "settings": ({"key": "risk", "value": 1.5}, "1.5", {"key": "risk", "value": -1.0}, "Usage: `/settings"),
    "long": ({"symbol": "sol", "details": "0.1 stop auto"}, NO_ACCOUNT, {"symbol": "sol", "details": "0.1"}, "stop"),
    "short": (
        {"symbol": "btc", "details": "1% stop 200000"},
        NO_ACCOUNT,
        {"symbol": "btc", "details": "stop"},
        "Usage",
    ),
    "close": ({"symbol": "sol", "pct": 50.0}, NO_ACCOUNT, {"symbol": "sol", "pct": 150.0}, "Usage: `/close"),
    "stop": ({"symbol": "sol", "price": 140.0}, NO_ACCOUNT, {"symbol": "sol", "price": -1.0}, "Usage: `/stop"),
    "tp": ({"symbol": "sol", "price": 260.0, "side": "long"}, NO_ACCOUNT, {"symbol": "sol", "price": 0.0}, "Usage"),
    "breakeven": ({"symbol": "btc"}, NO_ACCOUNT, {"symbol": "b t c"}, "Usage: `/breakeven"),
    "cancel": ({"order_id": "all"}, NO_ACCOUNT, {"order_id": "bad id!"}, "Usage: `/cancel"),
    "flatten": ({}, NO_ACCOUNT, None, ""),
    "closeall": ({}, NO_ACCOUNT, None, ""),
    "cancelall": ({}, NO_ACCOUNT, None, ""),
    "risk": ({"symbol": "sol"}, NO_ACCOUNT, {"symbol": "solana!!"}, "is not a symbol"),
    "kill": ({"action": "on"}, "", None, ""),
    "connect": ({}, "", None, ""),  # DM only: tested below
    "killall": ({}, "", None, ""),  # admin: tested below
    "grant": ({}, "", None, ""),
    "revoke": ({}, "", None, ""),
}


async def test_the_tree_is_the_registry_with_typed_options(world: World) -> None:
    registry = world.core.registry
    menu = [c.name for c in registry if c.in_menu]
    assert set(CASES) <= set(menu)
    synced = {c.name: c for c in world.channel.client.tree.get_commands()}
    assert list(synced) == menu == world.channel.commands
    levels = synced["levels"]
    params = {p.name: p for p in levels.parameters}  # type: ignore[union-attr]
    assert [c.value for c in params["timeframe"].choices] == ["15m", "1h", "4h", "1d"]
    assert params["symbol"].required and params["symbol"].autocomplete and not params["timeframe"].required
    stop = {p.name: p for p in synced["stop"].parameters}  # type: ignore[union-attr]
    assert stop["price"].type.name == "number" and stop["symbol"].type.name == "string"
    assert synced["price"].description == registry.get("price").summary  # type: ignore[union-attr]
    # Keys are typed only in a DM: /connect is not offered in a server at all.
    offered = world.alice.available_commands(world.text)
    assert "connect" not in offered and "price" in offered and "positions" in offered


async def test_symbol_autocomplete_offers_listed_bases(world: World) -> None:
    choices = await world.alice.autocomplete(world.text, "price", "symbol", "so")
    assert [c["value"] for c in choices][:1] == ["SOL"]
    assert all("SO" in c["value"] for c in choices)


async def test_every_command_with_valid_and_invalid_options(world: World) -> None:
    admin_only = {"killall", "grant", "revoke", "connect"}
    wrong = []
    for name, (valid, expect, invalid, refusal) in CASES.items():
        if name in admin_only:
            continue
        result = await world.alice.slash(world.text, name, **valid)
        text = said(result)
        if name == "chart":  # a chart is an embed showing its PNG, attached to the same message
            shown = result.response
            assert shown is not None and shown.embeds and shown.embeds[0].image.url == f"attachment://{CHART_NAME}"
            assert [a.filename for a in shown.attachments] == [CHART_NAME]
        if not (result.acknowledged and text and expect in text) or "Usage" in text or "went wrong" in text:
            wrong.append((name, "valid", text))
        if invalid is not None:
            refused = said(await world.alice.slash(world.text, name, **invalid))
            if refusal not in refused:
                wrong.append((name, "invalid", refused))
    # Commands of other domains (reports, alerts, ...): each answers politely with sample values of its options.
    for command in world.core.registry:
        if command.name in CASES or not command.in_menu:
            continue
        sample = {o.name: sample_value(o) for o in options_of(command) if o.required}
        text = said(await world.alice.slash(world.text, command.name, **sample))
        if not text or "went wrong" in text:
            wrong.append((command.name, "sample", text))
    assert not wrong
    # Choices are enforced by Discord itself: a value outside them never reaches the bot.
    with pytest.raises(simcord.OptionError):
        await world.alice.slash(world.text, "levels", symbol="btc", timeframe="2h")


async def test_admin_commands_need_the_admin_role(world: World) -> None:
    refused = said(await world.alice.slash(world.text, "grant", user=str(world.bob.id), role="trader"))
    assert "admin" in refused.lower()
    await grant(world.services, world.alice.id, "trader", "admin")
    world.core.forget_user("discord", str(world.alice.id))
    granted = said(await world.alice.slash(world.text, "grant", user=str(world.bob.id), role="trader"))
    assert f"discord:{world.bob.id} roles: trader" in granted
    assert "Usage: `/grant" in said(await world.alice.slash(world.text, "grant", user="not valid!", role="trader"))
    assert "roles: none" in said(await world.alice.slash(world.text, "revoke", user=str(world.bob.id), role="trader"))
    assert "Usage" not in said(await world.alice.slash(world.text, "killall"))


async def test_personal_commands_in_a_channel_answer_ephemerally(world: World) -> None:
    for name in ("positions", "balance", "orders", "settings", "kill"):
        result = await world.alice.slash(world.text, name)
        assert result.ephemeral, name
        assert all(f.ephemeral for f in result.followups), name
    public = await world.bob.slash(world.text, "price", symbol="eth")
    assert not public.ephemeral and "ETH/USDT:USDT" in said(public)
    # Bob may not trade: the refusal is ephemeral too, and nothing of Alice's is shown.
    refused = await world.bob.slash(world.text, "positions")
    assert refused.ephemeral and "trader" in said(refused).lower()
    # Nothing personal reached the public channel.
    assert all("exchange account" not in (m.content or "") for m in world.text.history())


async def test_personal_answer_in_a_channel_is_ephemeral_not_a_dm_note(world: World) -> None:
    await world.alice.send_dm("/connect paper")
    result = await world.alice.slash(world.text, "positions")
    assert result.ephemeral and "no open positions" in said(result)
    assert "private chat" not in said(result)  # the core's DM note would mislead: the answer is right here


async def test_connect_in_a_dm_only(world: World) -> None:
    assert "connect" in world.alice.user.available_commands()
    invalid = said(await world.alice.user.slash("connect", exchange="nosuchexchange"))
    assert "Unknown exchange" in invalid and "nosuchexchange" not in invalid  # never echoed: it may be a key
    connected = await world.alice.user.slash("connect", exchange="paper")
    assert "Connected a paper account" in said(connected) and not connected.ephemeral
    # Typed as a message in the server instead, keys are deleted where they were typed and never stored.
    typed = await world.alice.send(world.text, "/connect binance AbCdEf0123456789xyz Zz9Yy8Xx7Ww6Vv5Uu4")
    assert all(m.id != typed.id for m in world.text.history())
    assert "only accepted in a private chat" in (world.text.last_message.content or "")


async def test_an_interactive_answer_waits_out_a_429(world: World) -> None:
    patience = world.channel.out.patience
    world.env.inject_error("POST", "/webhooks/*", status=429, message="You are being rate limited.")
    result = await world.bob.slash(world.text, "price", symbol="btc")
    assert "BTC/USDT:USDT" in said(result)  # answered once the wait was over, not an apology
    assert patience.waited == 1
