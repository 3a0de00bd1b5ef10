"""`bastion chat` end to end on piped stdin: answers, an approval prompt, and exactly one executed order."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bastion.app import build_services
from bastion.cli import app
from bastion.settings import load_settings
from bot.console import ensure_console_user
from storage import migrate
from tests.agents.conftest import seed_position
from tests.agents.helpers import executions, sol_size


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("BASTION_") and name != "BASTION_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BASTION_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    return tmp_path


async def _seed() -> int:
    async with build_services(load_settings()) as services:
        await migrate.upgrade(services.engine)
        user_id = await ensure_console_user(services.sessions)
        await seed_position(services, user_id, "SOL", "8")
        return user_id


async def _after(user_id: int) -> tuple[int, float]:
    async with build_services(load_settings()) as services:
        return await executions(services), await sol_size(services, user_id)


def test_piped_chat_answers_and_executes_one_approved_order(env: Path) -> None:
    user_id = asyncio.run(_seed())
    result = CliRunner().invoke(app, ["chat"], input="price btc\nlevels eth 4h\nclose half my sol long\ny\n")
    out = result.output
    assert result.exit_code == 0, out
    assert "[offline model] BTC/USDT:USDT: " in out and "(simulated data)" in out
    assert "ETH/USDT:USDT 4h structure" in out and "- Resistance:" in out and "grade" in out
    assert "Proposed order: Close 50% of the SOL/USDT:USDT long (4 of 8 SOL)" in out
    assert "approve? [y/N]" in out and "Executed: Close 50%" in out
    assert "Traceback" not in out and out.rstrip().endswith("Bye.")
    assert asyncio.run(_after(user_id)) == (1, 4.0)


def test_no_answer_means_no_order(env: Path) -> None:
    user_id = asyncio.run(_seed())
    result = CliRunner().invoke(app, ["chat"], input="close all sol\n\n")
    assert "approve? [y/N]" in result.output and "Rejected: no order was placed." in result.output
    assert asyncio.run(_after(user_id)) == (0, 8.0)


def test_first_start_migrates_and_creates_the_paper_account(env: Path) -> None:
    result = CliRunner().invoke(app, ["chat"], input="balance\n")
    assert result.exit_code == 0, result.output
    assert "Account paper (paper) (simulated data): total 10,000.00 USDT" in result.output


README_EXAMPLE = r"printf 'long 0.1 sol stop 100\ny\nclose half my sol long\ny\npositions\n' | bastion chat"


def _run_readme_line(env: Path) -> str:
    import shutil
    import subprocess
    import sys

    bastion = shutil.which("bastion") or str(Path(sys.executable).with_name("bastion"))
    environ = {**os.environ, "PATH": f"{Path(bastion).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        ["bash", "-c", README_EXAMPLE], cwd=env, env=environ, capture_output=True, text=True, timeout=120
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    return out


def test_the_readme_first_five_minutes_with_no_seeding(env: Path) -> None:
    out = _run_readme_line(env)
    assert "Traceback" not in out and out.rstrip().endswith("Bye.")
    assert "Proposed order: Open a SOL/USDT:USDT long of 0.1 SOL at market" in out
    assert "stop 100.00 (given)" in out and "Executed: Open a SOL/USDT:USDT long" in out and "Filled 0.1 at " in out
    assert "Proposed order: Close 50% of the SOL/USDT:USDT long (0.05 of 0.1 SOL)" in out
    assert "Executed: Close 50%" in out and "Realised PnL" in out
    assert "SOL/USDT:USDT long 0.05 @" in out
    assert out.count("approve? [y/N]") == 2
