"""Draws structure charts for every caller in a process, one at a time, off the event loop."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from tools.charts.structure_chart import ChartSource, PositionLines
    from tools.structure.report import StructureReport


class ChartRenderer:
    """Renders PNG charts in a worker thread, one at a time: matplotlib figures are not thread-safe.

    The composition root builds one per process and hands it to everything that draws (the chart tool, the
    report builder), so their renders queue on one lock created on the loop that uses it.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def structure_chart(
        self,
        frame: pd.DataFrame,
        report: StructureReport,
        position: PositionLines | None = None,
        bars: int = 240,
        source: ChartSource | None = None,
    ) -> bytes:
        """PNG bytes of `render_structure_chart`, drawn after any render already running."""
        from tools.charts.structure_chart import render_structure_chart  # matplotlib only once something draws

        async with self._lock:
            return await asyncio.to_thread(render_structure_chart, frame, report, position, bars, source)
