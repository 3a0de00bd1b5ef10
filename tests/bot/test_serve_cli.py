"""`bastion serve` as an operator runs it: a separate process, the real CLI, stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx

from tests.bot.telegram_harness import ALICE, free_port
from tests.fakes.telegram_api import FakeTelegram

REPO = Path(__file__).resolve().parents[2]


async def test_serve_answers_on_telegram_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    async with FakeTelegram() as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
        env |= {
            "BASTION_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}",
            "BASTION_DATABASE__CHECKPOINT_PATH": str(tmp_path / "checkpoints.db"),
            "BASTION_TELEGRAM__ENABLED": "true",
            "BASTION_TELEGRAM__TOKEN": fake.token,
            "BASTION_TELEGRAM__BASE_URL": fake.base_url,
            "BASTION_API__PORT": str(port),
            "BASTION_SCHEDULER__MONITOR_INTERVAL_S": "5",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bastion.cli", "serve",
            cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            await fake.wait_for(lambda: bool(fake.commands), timeout=60)  # started: the menu is published
            fake.user_message(ALICE, ALICE, "/price btc")
            await fake.wait_for(lambda: bool(fake.sent(ALICE)), timeout=30)
            assert "BTC/USDT:USDT" in (fake.sent(ALICE)[0].plain or "")
            async with httpx.AsyncClient() as client:
                health = await client.get(f"http://127.0.0.1:{port}/health")
            assert health.status_code == 200 and health.json()["database"] is True
            proc.send_signal(signal.SIGTERM)
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    text = out.decode()
    assert proc.returncode == 0, text
    assert "serving: telegram" in text and "Stopped." in text
    assert "Traceback" not in text
