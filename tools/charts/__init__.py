"""Charts rendered to PNG bytes (mplfinance / matplotlib, Agg backend), and the in-memory store they travel in."""

from __future__ import annotations

from typing import Any

from tools.charts.store import ChartStore

__all__ = ["ChartSource", "ChartStore", "PositionLines", "render_structure_chart", "structure_figure"]
_RENDERING = frozenset({"ChartSource", "PositionLines", "render_structure_chart", "structure_figure"})


def __getattr__(name: str) -> Any:
    # matplotlib takes about half a second to import: only code that draws pays for it, not every tool user.
    if name in _RENDERING:
        from tools.charts import structure_chart

        return getattr(structure_chart, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
