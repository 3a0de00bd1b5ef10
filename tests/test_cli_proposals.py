"""The monitor's proposals are visible and answerable from the terminal: listed, approved once, refused to others."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bastion.cli import app
from storage.db import create_engine, session_factory
from storage.models import ExchangeAccount
from storage.repositories import approvals as approvals_repo
from storage.repositories.users import find_user, get_or_create_user

runner = CliRunner()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("BASTION_") and name not in ("BASTION_TEST_POSTGRES_URL", "BASTION_DATA_DIR"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("BASTION_DATABASE__URL", url)
    return {"url": url}


def propose(url: str, action: str = "REDUCE_SIZE", close_pct: float | None = 50.0, minutes: int = 30) -> str:
    """A pending monitor proposal on the console user's paper SOL long, as the monitor stores it."""

    async def go() -> str:
        engine = create_engine(url)
        sessions = session_factory(engine)
        try:
            async with sessions.begin() as s:
                user = await find_user(s, "console", "local")
                account = (await s.scalars(ExchangeAccount.__table__.select())).first()  # type: ignore[attr-defined]
                assert user.id is not None and account is not None
                row = await approvals_repo.create_approval(
                    s,
                    owner_user_id=user.id,
                    intent={"symbol": "SOL/USDT:USDT", "side": "long", "action": action, "close_pct": close_pct,
                            "new_stop": None, "account_id": account, "size": "0.1"},
                    summary=f"{action} 50% of your SOL long (0.1 SOL)",
                    ttl=timedelta(minutes=minutes),
                    account_id=account,
                )
                await get_or_create_user(s, "telegram", "99")
                return row.token
        finally:
            await engine.dispose()

    return asyncio.run(go())


def positions_text() -> str:
    result = runner.invoke(app, ["chat"], input="positions\n")
    assert result.exit_code == 0, result.output
    return result.output


def test_a_proposal_is_listed_approved_once_and_refused_to_another_user(env: dict[str, str]) -> None:
    opened = runner.invoke(app, ["chat"], input="long 0.1 sol stop 100\ny\n")
    assert opened.exit_code == 0 and "Executed" in opened.output, opened.output
    token = propose(env["url"])

    listed = runner.invoke(app, ["engine", "proposals"])
    assert listed.exit_code == 0, listed.output
    assert token[:12] in listed.output and "console:local" in listed.output and "pending" in listed.output
    body = json.loads(runner.invoke(app, ["engine", "proposals", "--json"]).output)
    assert [p["token"] for p in body] == [token]

    other = runner.invoke(app, ["engine", "approve", "--user", "telegram:99", "--", token[:10]])
    assert other.exit_code == 1 and "belongs to someone else" in other.output, other.output
    assert "0.1 SOL" in positions_text() or "0.1" in positions_text()

    done = runner.invoke(app, ["engine", "approve", "--user", "console:local", "--", token[:10]])
    assert done.exit_code == 0 and "Executed" in done.output, done.output
    assert "0.05" in positions_text()  # half of the 0.1 SOL long was closed

    again = runner.invoke(app, ["engine", "approve", "--user", "console:local", "--", token[:10]])
    assert again.exit_code == 1 and "Executed" not in again.output, again.output
    assert "0.05" in positions_text()  # no second close
    assert runner.invoke(app, ["engine", "proposals"]).output.strip() == "No proposals waiting."


def test_reject_places_nothing_and_an_expired_proposal_is_refused(env: dict[str, str]) -> None:
    assert runner.invoke(app, ["chat"], input="long 0.1 sol stop 100\ny\n").exit_code == 0
    token = propose(env["url"])
    rejected = runner.invoke(app, ["engine", "reject", "--user", "console:local", "--", token])
    assert rejected.exit_code == 0 and "no order was placed" in rejected.output.lower(), rejected.output
    stale = propose(env["url"], minutes=-1)
    expired = runner.invoke(app, ["engine", "approve", "--user", "console:local", "--", stale])
    assert expired.exit_code == 1 and "expired" in expired.output.lower(), expired.output
    assert "expired" in runner.invoke(app, ["engine", "proposals", "--all"]).output
    assert "0.1" in positions_text()
    short = runner.invoke(app, ["engine", "approve", "abc", "--user", "console:local"])
    assert short.exit_code == 2 and "at least the first 6" in short.output
