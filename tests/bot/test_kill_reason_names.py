"""The kill switch's recorded reason names the user as people do (telegram:42), not by row id (issue 19 item 2)."""

from __future__ import annotations

from bastion.app import Services
from bot.core.dispatcher import BotCore
from storage.repositories import engine as engine_repo
from tests.bot.telegram_harness import ALICE
from tests.bot.test_core import RecordingReplier, core_on, said  # noqa: F401  (core_on is a fixture)


async def test_kill_reason_names_the_platform_user(core_on: tuple[Services, BotCore]) -> None:  # noqa: F811
    services, core = core_on
    replier = RecordingReplier()
    await core.handle(said(ALICE, "/kill"), replier)
    assert any("ENGAGED" in o.text for o in replier.sent), [o.text for o in replier.sent]
    async with services.sessions() as session:
        reasons = [f.reason for f in await engine_repo.kill_switches(session)]
        for uid in range(1, 4):
            reasons += [f.reason for f in await engine_repo.kill_switches(session, uid)]
    assert f"chat command by telegram:{ALICE}" in reasons, reasons


async def test_kill_switch_scope_is_shown_as_the_platform_user(core_on: tuple[Services, BotCore]) -> None:  # noqa: F811
    _, core = core_on
    replier = RecordingReplier()
    await core.handle(said(ALICE, "/connect paper"), replier)
    await core.handle(said(ALICE, "/kill"), replier)
    await core.handle(said(ALICE, "/settings"), replier)
    texts = [o.text for o in replier.sent]
    assert any(f"Kill switch telegram:{ALICE} ENGAGED" in t for t in texts), texts
    assert any(f"Kill switch engaged: telegram:{ALICE}" in t for t in texts), texts
    assert not any("user:" in t for t in texts), texts
