"""`bastion engine ...` and `bastion risk check` end to end on a temporary database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bastion.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("BASTION_") and name not in {"BASTION_TEST_POSTGRES_URL", "BASTION_DATA_DIR"}:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BASTION_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def test_arm_kill_status_disarm() -> None:
    assert invoke("db", "upgrade")[0] == 0
    assert invoke("keys", "add", "-e", "paper", "-l", "main", "-u", "telegram:5")[0] == 0
    code, out = invoke("engine", "arm", "-l", "main", "-u", "telegram:5", "--mode", "auto")
    assert code == 0 and "mode auto, ARMED" in out
    code, out = invoke("engine", "kill", "-u", "telegram:5", "--reason", "going to sleep")
    assert code == 0 and "kill switch telegram:5: ENGAGED" in out
    code, out = invoke("engine", "status")
    assert "telegram:5 (going to sleep)" in out and "user:" not in out and "armed" in out
    code, out = invoke("engine", "kill", "-u", "telegram:5", "--release")
    assert code == 0 and "released" in out
    assert "none engaged" in invoke("engine", "status")[1]
    code, out = invoke("engine", "disarm", "-l", "main", "-u", "telegram:5")
    assert code == 0 and "read-only" in out
    code, out = invoke("engine", "arm", "-l", "other", "-u", "telegram:5")
    assert code == 1 and "no account labelled 'other'" in out


def test_risk_check_on_real_candles(ohlcv_dir: Path) -> None:
    code, out = invoke(
        "risk",
        "check",
        "--symbol",
        "SOL",
        "--side",
        "long",
        "--entry",
        "200",
        "--size",
        "5",
        "--stop",
        "190",
        "--data-dir",
        str(ohlcv_dir),
    )
    assert code == 0, out
    # SOL closes the data far below 190: a breached stop is an emergency exit, and the output says why.
    assert "EMERGENCY_EXIT" in out and "stop_breached" in out and "Stop 190.00 breached" in out


def test_risk_check_simulated_and_bad_input() -> None:
    code, out = invoke(
        "risk", "check", "-s", "ETH", "--side", "long", "--entry", "1", "--size", "1", "--leverage", "25"
    )
    assert code == 0 and "SIMULATED" in out and "rule" in out
    assert invoke("risk", "check", "-s", "ETH", "--side", "up", "--entry", "1", "--size", "1")[0] == 2
    code, out = invoke("risk", "check", "-s", "ETH", "--side", "long", "--entry", "1", "--size", "1", "--targets", "a")
    assert code == 2 and "--targets must be numbers" in out
    code, out = invoke(
        "risk", "check", "-s", "NOPE", "--side", "long", "--entry", "1", "--size", "1", "--data-dir", "/nonexistent"
    )
    assert code == 1 and "does not exist" in out


def test_watch_runs_the_monitor_on_the_paper_account() -> None:
    import asyncio
    from decimal import Decimal

    from bastion.app import build_services
    from bastion.settings import load_settings
    from storage.repositories import accounts as accounts_repo
    from tools.exchange.models import IntentKind, OrderIntent, Side

    invoke("db", "upgrade")
    invoke("keys", "add", "-e", "paper", "-l", "main")
    invoke("engine", "arm", "-l", "main", "--mode", "advise")

    async def open_position() -> None:
        async with build_services(load_settings()) as services:
            async with services.sessions() as session:
                (row,) = await accounts_repo.list_accounts(session)
            account = await services.open_account(row)
            await account.place(
                OrderIntent(
                    intent_id="w1",
                    account_ref="t",
                    symbol="ETH/USDT:USDT",
                    kind=IntentKind.OPEN,
                    side=Side.BUY,
                    amount=Decimal("0.5"),
                    leverage=25,
                )
            )

    asyncio.run(open_position())
    code, out = invoke("engine", "watch", "--cycles", "1", "--interval", "1")
    assert code == 0, out
    # 25x without a stop: the hard rule exits; in advise mode that is a proposal, never an order.
    assert "cycle: 1 positions, 1 proposals, 0 orders" in out
    assert "[PROPOSAL]" in out and "EXIT 100% of ETH/USDT:USDT long" in out


def test_readme_arm_and_disarm_of_the_console_paper_account_work_on_a_fresh_install() -> None:
    assert invoke("db", "upgrade")[0] == 0
    code, out = invoke("engine", "arm", "--label", "paper", "--user", "console:local", "--mode", "auto")
    assert code == 0 and "account 'paper' of console:local: mode auto, ARMED" in out, out
    code, out = invoke("engine", "disarm", "--label", "paper", "--user", "console:local")
    assert code == 0 and "mode auto, read-only" in out, out
    assert "console:local" in invoke("engine", "status")[1]
