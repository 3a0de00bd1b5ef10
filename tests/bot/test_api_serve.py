"""`bastion serve` end to end over real HTTP: a signed signal reaches a Telegram subscriber through the outbox, and
/readyz and /metrics show the figures of what happened."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import httpx

from bot.api.signals import SIGNAL_PATH, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from storage.models import AlertSubscription
from storage.repositories import users as users_repo
from tests.bot.telegram_harness import ALICE, bot_settings, free_port, running, telegram_services
from tests.fakes.telegram_api import FakeTelegram

SECRET = "change-me"  # the README's examples use this secret
README = Path(__file__).resolve().parents[2] / "README.md"


async def _run(*argv: str) -> tuple[int, str]:
    """Run a command without blocking the loop the server answers on; (exit code, stdout + stderr)."""
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return int(proc.returncode or 0), out.decode()


def readme_block(lang: str) -> str:
    """The first ``` block of `lang` in the README's signal webhook section."""
    section = README.read_text().split("### Signal webhook", 1)[1]
    return section.split(f"```{lang}\n", 1)[1].split("```", 1)[0]


async def test_a_signed_signal_reaches_the_subscriber_and_the_operator_sees_it(tmp_path: Path) -> None:
    port = free_port()
    async with FakeTelegram() as fake:
        settings = bot_settings(fake, f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}", tmp_path, api_port=port)
        settings.api.signal_secret = type(settings.api.signal_secret)(SECRET)
        async with telegram_services(settings) as services:
            async with services.sessions.begin() as s:
                alice = await users_repo.get_or_create_user(s, "telegram", str(ALICE), "Alice")
                s.add(AlertSubscription(user_id=alice.id, topic="technical", symbol="BTC"))
            async with running(services, fake), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as api:
                body = json.dumps(
                    {"symbol": "BTCUSDT", "side": "buy", "price": 64000, "timeframe": "1h", "message": "EMA cross"}
                ).encode()
                stamp = str(int(time.time()))
                headers = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: "sha256=" + sign(SECRET, stamp, body)}
                r = await api.post(SIGNAL_PATH, content=body, headers=headers)
                assert r.status_code == 202 and r.json()["recipients"] == 1, r.text
                await fake.wait_for(lambda: bool(fake.sent(ALICE)), timeout=30)
                text = fake.sent(ALICE)[0].plain or ""
                assert "Signal: BTC/USDT:USDT LONG at 64000 (1h)" in text and "EMA cross" in text
                assert "analysis" in text.lower() and "Verdict" in text
                # The README's curl and Python examples, as written (only the port differs).
                shell = readme_block("bash").replace("127.0.0.1:8080", f"127.0.0.1:{port}")
                rc, out = await _run("bash", "-c", shell)
                assert rc == 0 and json.loads(out)["accepted"] is True, out
                code = readme_block("python").replace("127.0.0.1:8080", f"127.0.0.1:{port}")
                rc, out = await _run(sys.executable, "-c", code)
                assert rc == 0 and out.startswith("202 "), out
                await fake.wait_for(lambda: len(fake.sent(ALICE)) >= 2, timeout=30)  # curl's BTC signal
                fake.user_message(ALICE, ALICE, "/price btc")
                await fake.wait_for(lambda: len(fake.sent(ALICE)) >= 3, timeout=30)

                ready = await api.get("/readyz")
                assert ready.status_code == 200, ready.text
                checks = ready.json()["checks"]
                assert set(checks) == {"database", "migrations", "scheduler", "model", "market_data"}
                assert checks["scheduler"]["detail"].startswith("leader")
                assert "offline model" in checks["model"]["detail"] and "simulated" in checks["market_data"]["detail"]
                assert (await api.get("/healthz")).json()["status"] == "ok"
                metrics = (await api.get("/metrics")).text
    assert 'bastion_signals_total{outcome="accepted"} 3.0' in metrics
    assert 'bastion_outbox_deliveries_total{outcome="sent",platform="telegram"} 2.0' in metrics
    assert 'bastion_messages_total{direction="in",platform="telegram"} 1.0' in metrics
    assert 'bastion_commands_total{command="price"} 1.0' in metrics
    assert 'bastion_messages_total{direction="out",platform="telegram"} 3.0' in metrics  # 2 alerts + the answer
    assert "bastion_outbox_depth 0.0" in metrics
