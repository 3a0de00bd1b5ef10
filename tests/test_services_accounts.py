"""Services' account cache follows the stored row: `bastion keys rotate` / `keys remove` in another process and a
reconnect take effect in a running process without a restart."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

import bastion.app
from bastion.app import Services, build_services
from bastion.settings import Settings
from storage import migrate
from storage.models import ExchangeAccount
from storage.repositories import accounts as accounts_repo
from storage.repositories.users import get_or_create_user
from storage.secrets import SecretBox
from tools.exchange.errors import AccountError
from tools.exchange.models import IntentKind, OrderIntent, PlaceResult, Side

OLD_KEY, NEW_KEY = SecretBox.generate_key(), SecretBox.generate_key()
KEYS_A = {"apiKey": "key-A", "secret": "secret-A"}
KEYS_B = {"apiKey": "key-B", "secret": "secret-B"}


class RecordingAccount:
    """Stands in for CcxtAccount: decrypts its credentials at each order, as the real one does, and records them."""

    opened: ClassVar[list[RecordingAccount]] = []

    def __init__(self, exchange_id: str, credentials: Callable[[], dict[str, Any]]) -> None:
        self.exchange_id = exchange_id
        self._credentials = credentials
        self.used: list[dict[str, Any]] = []
        self.closed = False
        RecordingAccount.opened.append(self)

    async def place(self, intent: OrderIntent) -> PlaceResult:
        assert not self.closed, "an order went through a closed account"
        self.used.append(self._credentials())
        return PlaceResult(intent_id=intent.intent_id, kind=intent.kind)

    async def close(self) -> None:
        self.closed = True


def _order(n: int) -> OrderIntent:
    return OrderIntent(
        account_ref="a", symbol="BTC/USDT:USDT", kind=IntentKind.OPEN, side=Side.BUY, amount=1, intent_id=f"o-{n}"
    )


def _cli(db_url: str, keys: str, *args: str) -> str:
    """Run `bastion ...` as its own process, the way an operator does beside a running serve."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env |= {"BASTION_DATABASE__URL": db_url, "BASTION_SECRET_KEYS": keys}
    code = "from bastion.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
async def live(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Services]:
    """A running process's services (new key first, old key still accepted) with CcxtAccount recorded."""
    monkeypatch.setattr(bastion.app, "CcxtAccount", RecordingAccount)
    monkeypatch.setattr(RecordingAccount, "opened", [])
    settings = Settings(
        secret_keys=f"{NEW_KEY},{OLD_KEY}",
        database={"url": sqlite_url, "checkpoint_path": tmp_path / "cp.db"},  # type: ignore[arg-type]
    )
    async with build_services(settings) as services:
        await migrate.upgrade(services.engine)
        services.retire_grace_s = 0.0  # a replaced account is closed at the next open
        yield services


async def _binance(services: Services, box: SecretBox, creds: dict[str, str]) -> ExchangeAccount:
    async with services.sessions.begin() as session:
        user = await get_or_create_user(session, "telegram", "42")
        assert user.id is not None
        return await accounts_repo.add_account(
            session, box, user_id=user.id, exchange_id="bybit", label="bybit", credentials=creds
        )


async def test_keys_rotate_in_another_process_reopens_the_account(live: Services, sqlite_url: str) -> None:
    row = await _binance(live, SecretBox([OLD_KEY]), KEYS_A)
    first = await live.open_account(row)
    await first.place(_order(1))

    out = _cli(sqlite_url, f"{NEW_KEY},{OLD_KEY}", "keys", "rotate")
    assert "re-encrypted credentials of 1 account" in out

    # The caller still holds the row it read before the rotation; the cache must not trust it.
    again = await live.open_account(row)
    await again.place(_order(2))
    assert again is not first and isinstance(again, RecordingAccount) and again.used == [KEYS_A]
    async with live.sessions() as session:
        stored = await session.get(ExchangeAccount, row.id)
    assert stored is not None and stored.credentials_encrypted != row.credentials_encrypted
    assert SecretBox([NEW_KEY]).decrypt(stored.credentials_encrypted or "") == KEYS_A  # old key can be retired
    assert await live.open_account(row) is again  # unchanged row: the open account is kept
    assert isinstance(first, RecordingAccount) and first.closed and not again.closed


async def test_a_replaced_account_is_closed_only_after_the_grace_period(live: Services) -> None:
    live.retire_grace_s = 3600.0
    row = await _binance(live, live.secret_box(), KEYS_A)
    first = await live.open_account(row)
    async with live.sessions.begin() as session:
        await accounts_repo.rotate_credentials(session, live.secret_box())
    second = await live.open_account(row)
    assert second is not first and isinstance(first, RecordingAccount)
    await first.place(_order(1))  # an order already running on the old account still completes
    assert not first.closed
    await live.aclose()
    assert first.closed and isinstance(second, RecordingAccount) and second.closed


async def test_keys_remove_then_reconnect_uses_the_new_keys(live: Services, sqlite_url: str) -> None:
    box = live.secret_box()
    row = await _binance(live, box, KEYS_A)
    first = await live.open_account(row)
    await first.place(_order(1))

    _cli(sqlite_url, f"{NEW_KEY},{OLD_KEY}", "keys", "remove", "--label", "bybit", "--user", "telegram:42")
    with pytest.raises(AccountError, match="removed"):
        await live.open_account(row)

    reconnected = await _binance(live, box, KEYS_B)  # what /connect stores; SQLite may hand out the same id
    account = await live.open_account(reconnected)
    await account.place(_order(2))
    assert isinstance(account, RecordingAccount) and account.used == [KEYS_B]
    assert reconnected.id == row.id  # the case a cache keyed by id alone got wrong
    assert isinstance(first, RecordingAccount) and first.closed


async def test_the_agent_tools_read_the_row_once_and_still_follow_rotate_and_remove(
    live: Services, sqlite_url: str
) -> None:
    from sqlalchemy import event

    from agents.wiring import build_toolkit
    from tools.agent_tools import ToolContext
    from tools.agent_tools.base import ToolError, user_account

    deps = build_toolkit(live).deps
    row = await _binance(live, SecretBox([OLD_KEY]), KEYS_A)
    assert row.user_id is not None
    ctx = ToolContext(user_id=row.user_id)
    _, first = await user_account(deps, ctx, None)
    statements: list[str] = []
    event.listen(live.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    _, same = await user_account(deps, ctx, None)
    assert same is first and len(statements) == 1  # the list of the user's accounts, not a second read by id

    _cli(sqlite_url, f"{NEW_KEY},{OLD_KEY}", "keys", "rotate")
    _, rotated = await user_account(deps, ctx, None)
    await rotated.place(_order(1))
    assert rotated is not first and isinstance(rotated, RecordingAccount) and rotated.used == [KEYS_A]
    assert (await user_account(deps, ctx, None))[1] is rotated  # unchanged since: kept
    assert isinstance(first, RecordingAccount) and first.closed  # the replaced one, at the next open

    _cli(sqlite_url, f"{NEW_KEY},{OLD_KEY}", "keys", "remove", "--label", "bybit", "--user", "telegram:42")
    with pytest.raises(ToolError, match="No exchange account is connected"):
        await user_account(deps, ctx, None)
