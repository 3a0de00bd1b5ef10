"""The command registry: argument parsing and usage messages, generated help and menus, permissions."""

from __future__ import annotations

from typing import Any

import pytest

from bot.core.commands import CommandDeps, build_registry
from bot.core.messages import Inbound, parse_button
from bot.core.permissions import AccessPolicy
from bot.core.registry import Command, CommandRegistry, NoArgs, Permission, UsageError, number_token


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


def test_entry_commands_share_the_free_text_grammar(registry: CommandRegistry) -> None:
    e = parse(registry, "/long sol 0.1 stop auto tp 160,170 lev 3")
    assert (e.symbol, e.side, e.amount, e.auto_stop, e.targets, e.leverage) == (
        "SOL/USDT:USDT", "long", 0.1, True, [160, 170], 3)
    s = parse(registry, "/short btc 1% stop 97k limit 95,500 4h")
    assert (s.side, s.risk_pct, s.stop_price, s.limit_price, s.timeframe) == ("short", 1, 97000, 95500, "4h")
    from agents.offline.intents import parse_entry

    assert parse_entry("open a long 0.05 btc with the stop at 93k") == {
        "side": "long", "amount": 0.05, "stop_price": 93000.0, "symbol": "BTC"}
    for text, fragment in (("/long sol 0.1", "n entry always has a stop"), ("/short eth stop auto", "Give a size"),
                           ("/long sol 0.1 stop auto lev 500", "Leverage: Input should be less than or equal to 125")):
        with pytest.raises(UsageError, match=fragment):
            parse(registry, text)


def _checkpoint_rows(path: Any) -> int:
    import sqlite3

    with sqlite3.connect(path) as db:
        return sum(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("checkpoints", "writes"))


async def test_read_only_commands_never_touch_the_graph_or_the_checkpointer(sqlite_url: str, tmp_path: Any) -> None:
    from tests.bot.telegram_harness import ALICE, trader_with_sol_long
    from tests.bot.test_access import core_with
    from tests.bot.test_core import RecordingReplier, said

    fast = {"burst": 50, "rate_per_minute": 600}
    async with core_with(sqlite_url, tmp_path, allowed_users=[f"telegram:{ALICE}"], bot=fast) as (services, core):
        await trader_with_sol_long(services, ALICE)
        await core.handle(said(ALICE, "hello"), RecordingReplier())  # creates the checkpoint tables
        await core.handle(said(ALICE, "/settings capital 10000"), RecordingReplier())
        before = _checkpoint_rows(tmp_path / "cp.db")

        async def no_graph(*args: object, **kwargs: object) -> object:
            raise AssertionError("a read-only command ran the graph")

        for graph in (core.chat.graph, core.chat.command_graph):
            graph.astream = no_graph  # type: ignore[method-assign]
            graph.aget_state = no_graph  # type: ignore[method-assign]
        replier = RecordingReplier()
        for text in ("/price btc", "/levels eth 4h", "/positions", "/balance", "/size btc 60000 59000 1",
                     "/chart sol", "/risk sol", "/overview sol", "/analyze btc"):
            await core.handle(said(ALICE, text), replier)
        texts = [o.text for o in replier.sent]
        assert not [t for t in texts if t.startswith("Something went wrong")], texts
        assert "BTC/USDT:USDT: " in texts[0] and "ETH/USDT:USDT 4h structure" in texts[1]
        assert "SOL/USDT:USDT long 10 @" in texts[2]
        assert "(simulated data): total 9,99" in texts[3]  # the seed's fee paid
        assert "Position size for BTC/USDT:USDT: 0.1 units" in texts[4]  # 1% of 10,000 over a 1,000 stop
        assert replier.sent[5].photo is not None and len(replier.sent[5].photo) > 10_000
        assert _checkpoint_rows(tmp_path / "cp.db") == before  # 0 checkpoint writes for 9 commands


async def test_order_commands_enter_the_graph_at_the_risk_check(sqlite_url: str, tmp_path: Any) -> None:
    from tests.bot.telegram_harness import ALICE, executions, sol_size
    from tests.bot.test_access import core_with, press_of
    from tests.bot.test_core import RecordingReplier, said

    fast = {"burst": 50, "rate_per_minute": 600}
    from tests.agents.test_entries import PINNED

    async with core_with(sqlite_url, tmp_path, allowed_users=[f"telegram:{ALICE}"], bot=fast) as (services, core):
        services.market.set_now(PINNED)  # type: ignore[attr-defined]  # a moment with an accepted SOL long plan
        replier = RecordingReplier()
        for text in ("/connect paper", "/arm"):
            await core.handle(said(ALICE, text), replier)
        await core.handle(said(ALICE, "/long sol 0.1 stop auto"), replier)
        entry = replier.sent[-1]
        assert entry.text.startswith("Proposed order: Open a SOL/USDT:USDT long of 0.1 SOL"), entry.text
        first = entry.buttons[0].data.split(":")[1]
        # A second order supersedes the first, as a new message would: its button no longer works.
        await core.handle(said(ALICE, "/long sol 0.2 stop auto"), replier)
        second = replier.sent[-1].buttons[0].data.split(":")[1]
        await core.press(press_of(ALICE, first), replier)  # type: ignore[arg-type]
        assert await executions(services) == 0
        await core.press(press_of(ALICE, second), replier)  # type: ignore[arg-type]
        assert "Executed: Open a SOL/USDT:USDT long of 0.2 SOL" in replier.edits[-1][1].text
        user_id = (await core.user("telegram", str(ALICE))).user_id
        assert await sol_size(services, user_id) == pytest.approx(0.2)
        await core.handle(said(ALICE, "/close sol half"), replier)
        close = replier.sent[-1]
        assert "Close 50% of the SOL/USDT:USDT long (0.1 of 0.2 SOL)" in close.text
        await core.handle(said(ALICE, "/stop sol 1000000"), replier)  # refused by the risk check: no button
        assert "stop must be below" in replier.sent[-1].text and not replier.sent[-1].buttons
        assert await executions(services) == 1 and await sol_size(services, user_id) == pytest.approx(0.2)
        # /orders lists the entry's stop and target; /cancel proposes exactly one of them.
        from storage.repositories import accounts as accounts_repo
        from tools.exchange.models import OrderRole

        async with services.sessions() as session:
            account = await services.open_account((await accounts_repo.list_accounts(session, user_id))[0])
        tp = next(o for o in await account.open_orders() if o.role is OrderRole.TAKE_PROFIT)
        await core.handle(said(ALICE, "/orders"), replier)
        listed = replier.sent[-1].text
        assert "Open orders on account paper (2):" in listed and tp.id in listed and "stop_loss" in listed
        await core.handle(said(ALICE, f"/cancel {tp.id}"), replier)
        assert "Cancel SOL/USDT:USDT sell take_profit_market (whole position) at" in replier.sent[-1].text
        await core.press(press_of(ALICE, replier.sent[-1].buttons[0].data.split(":")[1]), replier)  # type: ignore[arg-type]
        assert [o.role for o in await account.open_orders()] == [OrderRole.STOP_LOSS]
        await core.handle(said(ALICE, "/cancel nosuchorder"), replier)
        assert "No open order 'nosuchorder'" in replier.sent[-1].text and not replier.sent[-1].buttons
