"""The chart renderer: one render at a time per process, injected into both the chart tool and the reports."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

import tools.charts.structure_chart as structure_chart
from agents.wiring import build_toolkit
from bastion.app import build_services
from bastion.reports import build_report_jobs
from bastion.settings import DatabaseSettings, Settings
from storage import migrate
from tools.agent_tools.base import ToolContext
from tools.agent_tools.market_tools import get_chart
from tools.agent_tools.schemas import ChartArgs
from tools.charts.renderer import ChartRenderer


class SlowRender:
    """Stands in for matplotlib: records which threads draw at once and who asked."""

    def __init__(self) -> None:
        self.active = 0
        self.most_at_once = 0
        self.calls = 0
        self._guard = threading.Lock()

    def __call__(self, *args: Any) -> bytes:
        with self._guard:
            self.active += 1
            self.calls += 1
            self.most_at_once = max(self.most_at_once, self.active)
        time.sleep(0.02)
        with self._guard:
            self.active -= 1
        return b"\x89PNG fake"


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> SlowRender:
    render = SlowRender()
    monkeypatch.setattr(structure_chart, "render_structure_chart", render)
    return render


async def test_renders_of_one_renderer_never_overlap(slow: SlowRender) -> None:
    renderer = ChartRenderer()
    pngs = await asyncio.gather(*(renderer.structure_chart(None, None) for _ in range(4)))  # type: ignore[arg-type]
    assert pngs == [b"\x89PNG fake"] * 4 and slow.calls == 4
    assert slow.most_at_once == 1


def test_a_renderer_per_event_loop_works_on_each(slow: SlowRender) -> None:
    # A module-level lock is bound to the first loop that waits on it; each process's renderer is its own.
    async def contended() -> list[bytes]:
        renderer = ChartRenderer()
        return await asyncio.gather(*(renderer.structure_chart(None, None) for _ in range(2)))  # type: ignore[arg-type]

    assert asyncio.run(contended()) == asyncio.run(contended()) == [b"\x89PNG fake"] * 2


async def test_the_chart_tool_and_the_reports_draw_through_the_services_renderer(
    slow: SlowRender, sqlite_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        database=DatabaseSettings(url=SecretStr(sqlite_url), checkpoint_path=tmp_path / "checkpoints.db")
    )
    async with build_services(settings) as services:
        await migrate.upgrade(services.engine)
        deps = build_toolkit(services).deps
        builder = build_report_jobs(services, frozenset({"telegram"})).service.builder
        assert deps.renderer is services.chart_renderer and builder.renderer is services.chart_renderer
        args = ChartArgs(symbol="BTC", timeframe="4h", with_position=False)
        chart, report = await asyncio.gather(get_chart(deps, ToolContext(user_id=1), args), builder.build("BTC", "4h"))
    assert deps.charts.get(chart["chart"]) == b"\x89PNG fake" and report.chart == b"\x89PNG fake"
    assert slow.calls == 2 and slow.most_at_once == 1  # the tool's chart and the report's queued on one lock
