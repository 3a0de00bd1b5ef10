"""Chart PNG limits and content; the `analyze` CLI command on its own Typer app."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from bastion.cli.analyze import register
from tools.charts import PositionLines, render_structure_chart, structure_figure
from tools.structure.analysis import analyze_frame

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def synthetic_frame(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    close = 100 + np.cumsum(rng.normal(0, 1, n))
    idx = pd.date_range("2025-01-01", periods=n, freq="1h", tz="UTC", name="time")
    return pd.DataFrame(
        {
            "open": np.r_[close[0], close[:-1]],
            "high": close + rng.uniform(0.2, 1.5, n),
            "low": close - rng.uniform(0.2, 1.5, n),
            "close": close,
            "volume": rng.uniform(10, 100, n),
        },
        index=idx,
    )


def test_chart_is_a_small_png_with_levels_profile_and_position() -> None:
    df = synthetic_frame()
    r = analyze_frame(df, "TEST/USDT", "1h")
    pos = PositionLines(entry=r.close, stop=r.close - 2 * r.atr, targets=[r.close + 3 * r.atr])
    png = render_structure_chart(df, r, pos)
    w, h = png_size(png)
    assert w <= 1280 and h <= 1280 and len(png) < 1_000_000
    fig = structure_figure(df, r, pos)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    shown = [lv for lv in r.levels if any(f"grade {lv.grade} · {lv.touches} touch" in s for s in texts)]
    assert shown, texts  # levels are labelled with their grade
    assert any(s.startswith(("POC", "VAH", "VAL")) for s in texts) and any(s.startswith("stop") for s in texts)
    assert any(s.startswith("T1") for s in texts)
    assert len(fig.axes) >= 3  # candles, volume and the side profile
    assert render_structure_chart(df, r) != png  # the position lines change the picture


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        """Test root so `analyze` stays a subcommand."""

    return app


@pytest.mark.data
def test_analyze_command_on_real_candles(cli: typer.Typer, ohlcv_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "btc.png"
    res = CliRunner().invoke(
        cli, ["analyze", "BTC", "--tf", "4h", "--data-dir", str(ohlcv_dir), "--chart", str(out), "--compact"]
    )
    assert res.exit_code == 0, res.output
    assert "BTC/USDT" in res.output and "POC" in res.output and "stop" in res.output
    assert "SIMULATED" not in res.output
    assert png_size(out.read_bytes())[0] <= 1280


@pytest.mark.data
def test_analyze_shows_holding_levels_and_rejects_bad_setups_with_reasons(cli: typer.Typer, ohlcv_dir: Path) -> None:
    res = CliRunner().invoke(cli, ["analyze", "BTC", "--tf", "4h", "--data-dir", str(ohlcv_dir)])
    assert res.exit_code == 0, res.output
    rows = re.findall(r"^  [\d,.]+  grade (\d), (\d+) touches, (\w+), ", res.output, re.M)
    assert rows and all(int(t) >= 2 and state == "holding" for _, t, state in rows)
    assert "Trade plans from structure (from the live price" in res.output
    # The last 1,000 BTC 4h bars sit under every holding support: both setups are refused, each with why.
    assert res.output.count("REJECTED: ") == 2
    assert "no holding level of grade 2+ below the entry" in res.output and "ATR cap" in res.output
    # The cap is a setting: wide enough, the short's far structural stop is accepted (the long still is not).
    wide_args = ["analyze", "BTC", "--tf", "4h", "--data-dir", str(ohlcv_dir), "--max-stop-atr", "25"]
    wide = CliRunner().invoke(cli, wide_args)
    assert wide.exit_code == 0 and "ATR cap" not in wide.output and wide.output.count("REJECTED: ") == 1


def test_analyze_command_offline_is_labelled_simulated(cli: typer.Typer) -> None:
    res = CliRunner().invoke(cli, ["analyze", "ETH", "--tf", "1h", "--bars", "300"])
    assert res.exit_code == 0, res.output
    assert "SIMULATED" in res.output and "Resistance:" in res.output


@pytest.mark.data
def test_analyze_command_errors_cleanly(cli: typer.Typer, ohlcv_dir: Path) -> None:
    bad_tf = CliRunner().invoke(cli, ["analyze", "BTC", "--tf", "7m", "--data-dir", str(ohlcv_dir)])
    assert bad_tf.exit_code == 2 and "unknown timeframe" in bad_tf.output
    bad_sym = CliRunner().invoke(cli, ["analyze", "NOPE", "--data-dir", str(ohlcv_dir)])
    assert bad_sym.exit_code == 1 and "Unknown symbol" in bad_sym.output
    assert "Traceback" not in bad_sym.output
