"""A refusal by a user's kill switch names the user as people do (telegram:7), never by row id (issue 19 item 4)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.execution.executor import Executor
from storage.repositories import engine as engine_repo
from tests.engine.test_executor import LIMITS, POSITION, FakeAccount, _account, decision


async def test_a_user_kill_switch_refusal_names_the_platform_user(sessions: async_sessionmaker[AsyncSession]) -> None:
    row = await _account(sessions)
    async with sessions.begin() as s:
        await engine_repo.set_kill_switch(s, engine_repo.user_scope(row.user_id), True, "going to sleep")
        assert await engine_repo.scope_names(s, ["global", "user:999999"]) == {
            "global": "global",
            "user:999999": "user:999999",  # no such user: the scope as stored, nothing invented
        }
    outcome = await Executor(sessions, LIMITS).execute(
        row=row, account=FakeAccount(), position=POSITION, decision=decision(pct=10), intent_id="k-1", automated=True
    )
    assert outcome.status == "refused"
    assert "kill switch engaged (telegram:7)" in outcome.reasons and "user:" not in " ".join(outcome.reasons)
