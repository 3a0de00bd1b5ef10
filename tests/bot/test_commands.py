"""The command registry: argument parsing and usage messages, generated help and menus, permissions."""

from __future__ import annotations

from typing import Any

import pytest

from bot.core.commands import Command, CommandRegistry, NoArgs, Permission, UsageError, number_token
from bot.core.handlers import CommandDeps, build_registry
from bot.core.messages import Inbound, parse_button
from bot.core.permissions import AccessPolicy


@pytest.fixture(scope="module")
def registry() -> CommandRegistry:
    """The bot's real registry (handlers are not run here)."""
    deps: Any = CommandDeps(chat=None, sessions=None, secret_box=lambda: None)  # type: ignore[arg-type]
    return build_registry(deps)


def parse(registry: CommandRegistry, text: str) -> Any:
    name, _, rest = text.removeprefix("/").partition(" ")
    command = registry.get(name)
    assert command is not None, name
    return registry.parse_args(command, rest)


def test_arguments_are_validated_and_normalised(registry: CommandRegistry) -> None:
    assert parse(registry, "/price btc").symbol == "BTC/USDT:USDT"
    a = parse(registry, "/levels ETHUSDT 4H")
    assert (a.symbol, a.timeframe) == ("ETH/USDT:USDT", "4h")
    assert parse(registry, "/structure sol").timeframe == "1h"  # alias, default timeframe
    s = parse(registry, "/size btc 60,000 $59,000 1.5%")
    assert (s.entry, s.stop, s.risk) == (60000, 59000, 1.5)
    c = parse(registry, "/close long sol 25%")
    assert (c.symbol, c.pct, c.side) == ("SOL/USDT:USDT", 25, "long")
    assert parse(registry, "/close sol half").pct == 50
    assert parse(registry, "/close sol").pct == 100
    t = parse(registry, "/stop 140.5 sol short")
    assert (t.symbol, t.price, t.side) == ("SOL/USDT:USDT", 140.5, "short")
    assert parse(registry, "/be btc").symbol == "BTC/USDT:USDT"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("/price", "symbol: Field required"),
        ("/price btc eth", "unexpected extra argument(s): eth"),
        ("/levels btc 7m", "timeframe: Input should be '15m', '1h', '4h' or '1d'"),
        ("/size btc 60000", "stop: Field required"),
        ("/size btc -5 4", "entry: Input should be greater than 0"),
        ("/close sol 150%", "pct: Input should be less than or equal to 100"),
        ("/close sol half long extra", "I do not understand 'extra'"),
        ("/tp sol", "price: Field required"),
        ("/arm sometimes", "mode"),
        ("/price $$$", "is not a symbol"),
    ],
)
def test_bad_arguments_explain_the_usage(registry: CommandRegistry, text: str, fragment: str) -> None:
    with pytest.raises(UsageError) as err:
        parse(registry, text)
    message = str(err.value)
    assert fragment.lower() in message.lower()
    name = text.split()[0].removeprefix("/")
    command = registry.get(name)
    assert command is not None and f"Usage: `{command.synopsis}`" in message


def test_help_and_menu_come_from_the_registry(registry: CommandRegistry) -> None:
    everyone = registry.help_text(Permission.ANYONE)
    trader = registry.help_text(Permission.TRADER)
    admin = registry.help_text(Permission.ADMIN)
    assert "/price <symbol>" in everyone and "/close" not in everyone
    assert "/close <symbol>" in trader and "/grant" not in trader
    assert "/grant" in admin
    menu = dict(registry.menu())
    for command in registry.visible(Permission.TRADER):
        assert command.synopsis.split()[0] in trader
        assert menu[command.name] == command.summary
    assert all(len(d) <= 256 for d in menu.values())


def test_registry_rejects_duplicates_and_bad_names() -> None:
    async def handler(call: Any) -> None:
        return None

    reg = CommandRegistry()
    reg.add(Command("price", "Price", handler, aliases=("p",)))
    with pytest.raises(ValueError, match="registered twice"):
        reg.add(Command("p", "Other", handler))
    with pytest.raises(ValueError, match="invalid command name"):
        reg.add(Command("Bad-Name", "x", handler))
    with pytest.raises(UsageError):
        reg.parse_args(Command("none", "x", handler, NoArgs), "unexpected")


def test_number_tokens() -> None:
    assert number_token("60,000.5") == "60000.5"
    assert number_token("$1.5") == "1.5"
    assert number_token("2%") == "2"
    assert number_token("BTC") == "BTC"
    assert number_token("1,2") == "1,2"  # not a thousands separator: left for validation to refuse


def test_inbound_command_parsing() -> None:
    msg = Inbound("telegram", "1", "1", "/Price@bastion_test_bot  btc 4h")
    assert msg.command == ("price", "btc 4h")
    assert Inbound("telegram", "1", "1", "price btc").command is None


def test_button_data() -> None:
    assert parse_button("v1:abc_DEF-123:y") == ("abc_DEF-123", True)
    assert parse_button("v1:abc:n") == ("abc", False)
    for bad in ("v0:abc:y", "v1::y", "v1:abc:maybe", "v1:abc", "garbage", ""):
        assert parse_button(bad) is None


def test_permissions_from_settings_and_roles() -> None:
    closed = AccessPolicy()  # nobody listed: trading is closed on chat channels
    assert closed.trading_closed
    assert closed.permission("telegram", "1") is Permission.ANYONE
    assert closed.permission("console", "local") is Permission.TRADER  # the operator's own terminal
    assert closed.permission("telegram", "1", ["trader"]) is Permission.TRADER  # granted by an admin
    opened = AccessPolicy.from_settings([], [], open_to_everyone=True)
    assert not opened.trading_closed and opened.permission("telegram", "1") is Permission.TRADER
    policy = AccessPolicy.from_settings(["telegram:1"], ["telegram:9"])
    assert policy.permission("telegram", "1") is Permission.TRADER
    assert policy.permission("telegram", "2") is Permission.ANYONE
    assert policy.permission("discord", "1") is Permission.ANYONE  # ids are per platform
    assert policy.permission("telegram", "2", ["trader"]) is Permission.TRADER
    assert policy.permission("telegram", "9") is Permission.ADMIN
    assert policy.permission("telegram", "3", ["admin"]) is Permission.ADMIN
