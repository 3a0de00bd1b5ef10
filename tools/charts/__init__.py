"""Charts rendered to PNG bytes (mplfinance / matplotlib, Agg backend)."""

from tools.charts.structure_chart import PositionLines, render_structure_chart, structure_figure

__all__ = ["PositionLines", "render_structure_chart", "structure_figure"]
