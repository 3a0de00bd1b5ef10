"""Interrupted orders are settled: a process SIGKILLed between the press and the order, or between the order
and its record, leaves rows that a restart looks up by client order id and finishes with the truth.

The press runs in a second process (tests/agents/kill_process.py) that pauses at the chosen point through a
fault-injecting Account wrapper; this test kills it with SIGKILL, then plays the restarted process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agents.runner import AnalystChat
from bastion.app import Services, build_services
from bot.core.approvals import ApprovalsService, Settlement
from bot.core.messages import Outbound
from storage.models import Approval, ApprovalStatus, Execution
from storage.paper import PaperIntentRow
from storage.repositories import approvals as approvals_repo
from storage.repositories import engine as engine_repo
from tests.agents.conftest import seed_position
from tests.agents.helpers import chat_on, ctx, sol_size

REPO = Path(__file__).resolve().parents[2]


class RecordingEditor:
    """A channel's message editor that remembers each edit."""

    def __init__(self) -> None:
        self.edits: list[tuple[str, Outbound]] = []

    async def edit_ref(self, message_ref: str, out: Outbound) -> None:
        """Record the edit."""
        self.edits.append((message_ref, out))


def _press_and_kill(services: Services, token: str, user_id: int, stage: str, tmp: Path) -> None:
    db = services.settings.database
    env = {
        **os.environ,
        "BASTION_DATABASE__URL": db.url.get_secret_value(),
        "BASTION_DATABASE__CHECKPOINT_PATH": str(db.checkpoint_path),
        "PYTHONPATH": str(REPO),
    }
    env.pop("BASTION_MODEL__BASE_URL", None)
    marker = tmp / f"paused-{stage}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.agents.kill_process", token, str(user_id), stage, str(marker)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():  # the child says where it stopped; then it is killed right there
            if proc.poll() is not None:
                raise AssertionError(f"the press finished instead of pausing: {proc.communicate()}")
            assert time.monotonic() < deadline, "the press never reached its pause point"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


async def _rows(services: Services, token: str) -> tuple[Approval, Execution | None, int]:
    async with services.sessions() as session:
        approval = await approvals_repo.get_approval(session, token)
        execution = await engine_repo.get_execution(session, f"appr:{token}")
        paper_orders = int(
            (
                await session.execute(
                    select(func.count()).select_from(PaperIntentRow).where(PaperIntentRow.intent_id == f"appr:{token}")
                )
            ).scalar_one()
        )
    assert approval is not None
    return approval, execution, paper_orders


@pytest.fixture
async def proposal(services: Services, user_id: int) -> AsyncIterator[str]:
    """A 'close half my SOL long' proposal waiting for approval, its message known to the 'fake' channel."""
    await seed_position(services, user_id)
    async with chat_on(services) as chat:
        reply = await chat.ask(ctx(user_id), "console:local", "close half my sol long")
    assert reply.approval is not None
    approvals = ApprovalsService(services.sessions, chat, services.executor, services.open_account)
    await approvals.attach_message(reply.approval.token, "fake", "chat1:msg7")
    yield reply.approval.token


@asynccontextmanager
async def _restart(services: Services) -> AsyncIterator[tuple[ApprovalsService, AnalystChat]]:
    # A new process: new engine, new account objects, new executor; only the databases are shared.
    async with build_services(services.settings) as fresh, chat_on(fresh) as chat:
        yield ApprovalsService(fresh.sessions, chat, fresh.executor, fresh.open_account), chat


async def _settle_after_restart(services: Services) -> tuple[list[Settlement], RecordingEditor]:
    editor = RecordingEditor()
    async with _restart(services) as (approvals, _):
        settled = await approvals.settle()
        await approvals.tell(settled, {"fake": editor})
    return settled, editor


@pytest.mark.parametrize("stage", ["before_claim", "before_order"])
async def test_killed_before_the_order_is_settled_as_not_placed_and_placed_once_by_a_new_press(
    services: Services, user_id: int, proposal: str, stage: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(_press_and_kill, services, proposal, user_id, stage, tmp_path)
    approval, execution, orders = await _rows(services, proposal)
    assert approval.status == ApprovalStatus.CONSUMED.value and approval.result is None and orders == 0
    assert (execution is None) == (stage == "before_claim")
    assert execution is None or execution.status == "pending"

    # The restarted process presses first, within the in-flight window: it must not claim an outcome.
    async with _restart(services) as (approvals, _):
        row = await approvals.get(proposal)
        assert row is not None and approvals.refusal(row, user_id) is None
        early = await approvals.decide(ctx(user_id), row, approve=True)
    assert "Checking with the exchange" in early and "already" not in early.lower(), early
    assert await sol_size(services, user_id) == 10

    settled, editor = await _settle_after_restart(services)
    assert [(s.status, s.reopened) for s in settled] == [("not_placed", True)]
    (ref, out), = editor.edits
    assert ref == "chat1:msg7" and out.text.startswith("Close 50% of the SOL/USDT:USDT long (5 of 10 SOL)")
    assert "Not placed" in out.text and "Press Approve" in out.text
    assert [b.label for b in out.buttons] == ["Approve", "Reject"]  # pressable again
    approval, execution, orders = await _rows(services, proposal)
    assert approval.status == ApprovalStatus.PENDING.value and orders == 0
    assert execution is None or execution.status == "not_placed"
    assert await sol_size(services, user_id) == 10

    # A new press places it, once.
    async with _restart(services) as (approvals, _):
        row = await approvals.get(proposal)
        assert row is not None
        done = await approvals.decide(ctx(user_id), row, approve=True)
        again = await approvals.decide(ctx(user_id), row, approve=True)
    assert done.startswith("Executed: Close 50%"), done
    assert "Already executed" in again or "already executed" in again, again
    approval, execution, orders = await _rows(services, proposal)
    assert execution is not None and execution.status == "done" and orders == 1
    assert await sol_size(services, user_id) == 5


async def test_killed_after_the_order_is_settled_as_placed_by_client_order_id(
    services: Services, user_id: int, proposal: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(_press_and_kill, services, proposal, user_id, "after_order", tmp_path)
    approval, execution, orders = await _rows(services, proposal)
    assert approval.status == ApprovalStatus.CONSUMED.value and approval.result is None
    assert execution is not None and execution.status == "pending" and orders == 1
    assert await sol_size(services, user_id) == 5

    settled, editor = await _settle_after_restart(services)
    assert [(s.status, s.reopened) for s in settled] == [("placed", False)]
    (ref, out), = editor.edits
    assert ref == "chat1:msg7" and "Executed" in out.text and out.buttons == []
    approval, execution, orders = await _rows(services, proposal)
    assert execution is not None and execution.status == "done" and execution.realised_pnl is not None
    assert approval.result is not None and approval.result["status"] == "placed"

    # The conversation was finished with the truth, and a later press places nothing.
    async with _restart(services) as (approvals, chat):
        assert await chat.pending_approval("console:local") is None
        row = await approvals.get(proposal)
        assert row is not None
        assert approvals.refusal(row, user_id) == "Already executed; nothing more will be placed."
        assert (await approvals.settle()) == []  # nothing left to settle
    _, _, orders = await _rows(services, proposal)
    assert orders == 1 and await sol_size(services, user_id) == 5


async def test_the_console_tells_a_settled_order_and_places_a_reopened_one_on_yes(
    services: Services, user_id: int, proposal: str, tmp_path: Path
) -> None:
    from bot.console.adapter import ConsoleChat

    await asyncio.to_thread(_press_and_kill, services, proposal, user_id, "before_order", tmp_path)
    written: list[str] = []
    async with _restart(services) as (approvals, chat):
        settled = await approvals.settle()
        console = ConsoleChat(chat, user_id, written.append, "help")
        await console.settled(settled, iter(["y"]))
    text = "\n".join(written)
    assert "An order interrupted last time: Close 50% of the SOL/USDT:USDT long (5 of 10 SOL)" in text
    assert "Not placed" in text and "approve? [y/N]" in text
    assert "Executed: Close 50%" in text, text
    _, execution, orders = await _rows(services, proposal)
    assert execution is not None and execution.status == "done" and orders == 1
    assert await sol_size(services, user_id) == 5
