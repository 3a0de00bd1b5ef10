"""The periodic monitor runner survives a failing cycle and stops on request."""

from __future__ import annotations

import asyncio
from typing import Any

from engine.monitor.monitor import CycleReport
from engine.monitor.runner import run_periodically


class FlakyMonitor:
    def __init__(self) -> None:
        self.calls = 0

    async def run_cycle(self) -> CycleReport:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("exchange hiccup")
        return CycleReport(positions=self.calls)


async def test_failed_cycle_is_logged_and_the_next_runs(caplog: Any) -> None:
    monitor = FlakyMonitor()
    seen: list[int] = []
    done = await run_periodically(monitor, 0.01, cycles=3, on_cycle=lambda r: seen.append(r.positions))  # type: ignore[arg-type]
    assert done == 3 and seen == [2, 3]
    assert "monitor cycle failed" in caplog.text


async def test_stop_event_ends_the_loop_promptly() -> None:
    monitor = FlakyMonitor()
    stop = asyncio.Event()
    task = asyncio.create_task(run_periodically(monitor, 60.0, stop=stop))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    stop.set()
    assert await asyncio.wait_for(task, timeout=10.0) == 1  # promptly: not the 60 s interval (10 s for a loaded CI)
