"""`bastion analyze` shows the MCF score and the multi-timeframe alignment, in text and in --json (issue 19 item 4)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from bastion.cli import app


def test_analyze_prints_mcf_score_and_alignment() -> None:
    result = CliRunner().invoke(app, ["analyze", "ETH", "--tf", "1h", "--bars", "300"])
    assert result.exit_code == 0, result.output
    assert "Setup score and timeframes:" in result.output
    assert "MCF score (long): " in result.output and "MCF score (short): " in result.output
    assert "Timeframes: 15m " in result.output and " 1d " in result.output


def test_analyze_json_carries_mcf_and_alignment() -> None:
    result = CliRunner().invoke(app, ["analyze", "ETH", "--tf", "4h", "--bars", "300", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data["mcf"]) == {"long", "short"} and 4 <= data["mcf"]["short"]["total"] <= 12
    assert set(data["mcf"]["long"]["factors"]) == {"structure", "order_flow", "derivatives", "onchain"}
    assert list(data["alignment"]["biases"]) == ["15m", "1h", "4h", "1d"] and "symbol" in data
