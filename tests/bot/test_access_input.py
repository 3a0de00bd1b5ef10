"""What users type reaches the services as typed: exact numbers (or a clear refusal), and keys scrubbed first."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bastion.app import Services
from bot.core.dispatcher import BotCore
from bot.core.messages import ChatKind, Outbound
from storage.models import Approval, ExchangeAccount
from tests.bot.telegram_harness import ALICE, BOB, SECRET_KEY, trader_with_sol_long
from tests.bot.test_access import core_with
from tests.bot.test_core import RecordingReplier, said

SECRET = "MYOTHERSECRET" + "Zq9" * 6
KEY = "AKIAKEY1234567890ABCD"


@pytest.fixture
async def alice(sqlite_url: str, tmp_path: Path) -> AsyncIterator[tuple[Services, BotCore]]:
    """ALICE may trade; encryption keys are configured."""
    async with core_with(sqlite_url, tmp_path, allowed_users=[f"telegram:{ALICE}"], secret_keys=SECRET_KEY) as pair:
        yield pair


def answer(replier: RecordingReplier) -> Outbound:
    """The final text the user sees (a streamed answer is edited into place)."""
    return replier.edits[-1][1] if replier.edits else replier.sent[-1]


async def ask(core: BotCore, text: str, kind: ChatKind = ChatKind.PRIVATE) -> tuple[Outbound, RecordingReplier]:
    """Send one message as ALICE; the final answer and the replier."""
    replier = RecordingReplier()
    await core.handle(said(ALICE, text, kind), replier)
    return answer(replier), replier


@pytest.mark.parametrize(
    ("text", "entry", "stop"),
    [
        ("/size BTC 1000000 990000", "Entry 1,000,000", "stop 990,000"),
        ("/size BTC 1e6 990000", "Entry 1,000,000", "stop 990,000"),
        ("/size PEPE 0.00001234 0.00001", "Entry 0.00001234", "stop 0.00001 "),
        ("/size PEPE 1.234e-5 1e-5", "Entry 0.00001234", "stop 0.00001 "),
        ("/size PEPE 2e-8 1e-8", "Entry 0.00000002", "stop 0.00000001 "),
    ],
)
async def test_size_reads_numbers_exactly(alice: tuple[Services, BotCore], text: str, entry: str, stop: str) -> None:
    _, core = alice
    out, _ = await ask(core, text)
    assert entry in out.text and stop in out.text, out.text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("/size BTC inf 59000", "finite number"),
        ("/size BTC nan 59000", "finite number"),
        ("/size BTC 60000 -inf", "finite number"),
        ("/size BTC 1e13 59000", "not a plausible price"),
        ("/size BTC 60000 1e-13", "not a plausible price"),
        ("/size BTC 60000 59000 nan", "finite number"),
        ("/stop sol inf", "finite number"),
        ("/stop sol nan", "finite number"),
        ("/tp sol 1e309", "finite number"),
        ("/tp sol 1e15", "not a plausible price"),
        ("/close sol nan", "finite number"),
        ("/settings capital 1e309", "finite number"),
        ("/settings capital nan", "finite number"),
        ("/settings capital 1e13", "not a plausible amount"),
        ("/settings risk inf", "finite number"),
    ],
)
async def test_non_finite_and_absurd_numbers_are_refused(
    alice: tuple[Services, BotCore], text: str, reason: str
) -> None:
    services, core = alice
    await trader_with_sol_long(services, ALICE)
    out, _ = await ask(core, text)
    assert reason in out.text and "Usage:" in out.text, out.text
    assert not out.buttons
    settings_text = (await ask(core, "/settings"))[0].text
    assert "inf" not in settings_text and "nan" not in settings_text


async def test_settings_store_the_number_typed(alice: tuple[Services, BotCore]) -> None:
    _, core = alice
    out, _ = await ask(core, "/settings capital 1e6")
    assert "1,000,000.00 USDT" in out.text


async def _intent_of(services: Services, out: Outbound) -> dict[str, Any]:
    assert out.buttons, out.text
    token = out.buttons[0].data.split(":")[1]
    async with services.sessions() as session:
        row = (await session.scalars(select(Approval).where(Approval.token == token))).one()
    return dict(row.intent)


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("/tp sol 1e6", "take_profit_price", "1000000"),
        ("/tp sol 1000000", "take_profit_price", "1000000"),
        ("/stop sol 1e-5", "stop_price", "0.00001"),
        ("/stop sol 0.00001234", "stop_price", "0.00001234"),
        ("/stop sol 1e-8", "stop_price", "0.00000001"),
    ],
)
async def test_stop_and_tp_reach_the_order_unchanged(
    alice: tuple[Services, BotCore], text: str, key: str, value: str
) -> None:
    services, core = alice
    await trader_with_sol_long(services, ALICE)
    out, _ = await ask(core, text)
    assert Decimal((await _intent_of(services, out))[key]) == Decimal(value)


def _bytes_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def _nowhere(secret: str, replies: list[RecordingReplier], caplog: pytest.LogCaptureFixture, folder: Path) -> None:
    texts = [o.text for r in replies for o in (*r.sent, *r.private)] + [o.text for r in replies for _, o, _ in r.edits]
    assert not [t for t in texts if secret in t]
    assert secret not in caplog.text
    assert secret.encode() not in _bytes_under(folder)  # the database, the checkpoints, their WAL files


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (f"binanceusdm {KEY} {SECRET} extra1 extra2", "Too many arguments"),
        (f"binanceusdm {KEY} {'S' * 300}{SECRET}{'s' * 287}", "at most 512 characters"),
        (f"{KEY} {SECRET}", "Unknown exchange"),
        (f"binanse {KEY} {SECRET}", "Unknown exchange"),
    ],
)
async def test_connect_mistakes_delete_the_message_and_never_echo_keys(
    alice: tuple[Services, BotCore], tmp_path: Path, caplog: pytest.LogCaptureFixture, args: str, reason: str
) -> None:
    services, core = alice
    caplog.set_level(logging.DEBUG)
    out, replier = await ask(core, f"/connect {args}")
    assert replier.deleted == 1
    assert reason in out.text, out.text
    assert KEY not in out.text
    async with services.sessions() as session:
        assert not (await session.scalars(select(ExchangeAccount))).all()
    _nowhere(SECRET, [replier], caplog, tmp_path)
    # Written correctly, the keys are stored, encrypted only: still in no reply, log line or file in clear.
    out, fixed = await ask(core, f"/connect binanceusdm {KEY} {SECRET}")
    assert fixed.deleted == 1 and "stored encrypted" in out.text, out.text
    _nowhere(SECRET, [replier, fixed], caplog, tmp_path)


@pytest.mark.parametrize("user", [ALICE, BOB])
@pytest.mark.parametrize("args", [f"binanceusdm {KEY} {SECRET}", f"bybit {KEY} {SECRET} x y z", f"{SECRET}"])
async def test_connect_in_a_group_is_deleted_whatever_its_arguments(
    alice: tuple[Services, BotCore], tmp_path: Path, caplog: pytest.LogCaptureFixture, args: str, user: int
) -> None:
    services, core = alice
    replier = RecordingReplier()
    await core.handle(said(user, f"/connect {args}", ChatKind.GROUP), replier)
    out = replier.sent[-1]
    assert replier.deleted == 1  # BOB may not connect at all: refused, but his keys are gone from the group too
    assert ("only accepted in a private chat" if user == ALICE else "limited to allowed users") in out.text
    async with services.sessions() as session:
        assert not (await session.scalars(select(ExchangeAccount))).all()
    _nowhere(SECRET, [replier], caplog, tmp_path)


async def test_connect_by_a_user_without_trading_is_still_deleted(sqlite_url: str, tmp_path: Path) -> None:
    async with core_with(sqlite_url, tmp_path, secret_keys=SECRET_KEY) as (_, core):  # trading closed
        replier = RecordingReplier()
        await core.handle(said(ALICE, f"/connect bybit {KEY} {SECRET}"), replier)
    assert replier.deleted == 1 and "limited to allowed users" in replier.sent[-1].text


async def test_connect_paper_does_not_claim_keys_were_stored(alice: tuple[Services, BotCore]) -> None:
    _, core = alice
    out, replier = await ask(core, "/connect paper")
    assert replier.deleted == 0, "a message without keys stays"
    assert "paper account" in out.text and "keys are stored" not in out.text.lower() and "encrypted" not in out.text


async def test_keys_sent_with_connect_paper_are_deleted_and_not_stored(
    alice: tuple[Services, BotCore], tmp_path: Path
) -> None:
    _, core = alice
    out, replier = await ask(core, f"/connect paper {KEY} {SECRET}")
    assert replier.deleted == 1 and "were not stored" in out.text, out.text
    assert SECRET.encode() not in _bytes_under(tmp_path) and KEY.encode() not in _bytes_under(tmp_path)


@pytest.mark.parametrize(
    "text",
    [
        f"here are my binance keys {KEY} {SECRET} can you check my account",
        f"api key: {KEY}",
        f"secret={SECRET}",
    ],
)
async def test_key_like_free_text_never_reaches_the_model_or_the_checkpoint(
    alice: tuple[Services, BotCore], tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    _, core = alice
    caplog.set_level(logging.DEBUG)
    out, replier = await ask(core, text)
    assert replier.deleted == 1
    assert "/connect" in out.text and "private chat" in out.text and "rotate" in out.text
    for secret in (KEY, SECRET):
        if secret in text:
            _nowhere(secret, [replier], caplog, tmp_path)
    # The conversation goes on normally afterwards, and ordinary market talk is not mistaken for keys.
    address = "0x3f5CE5FBFe3E9af3971dD833D26bA9b5C936f0bE"
    for normal in ("price of btc", "levels of eth 4h", f"whale sent {address} to binance, what now for btc"):
        out, replier = await ask(core, normal)
        assert replier.deleted == 0 and "rotate" not in out.text
