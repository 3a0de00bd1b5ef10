"""`bastion price` / `bastion candles` through Typer's CliRunner, offline and on the real files."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from bastion.cli.market import register

ROW = re.compile(r"^\W*(\d{4}-\d{2}-\d{2} \d{2}:\d{2})\s", re.MULTILINE)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.delenv("BASTION_EXCHANGE__MARKET_DATA", raising=False)
    cli = typer.Typer()
    register(cli)
    return cli


def invoke(app: typer.Typer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "140"})
    return result.exit_code, result.output


def test_price_on_the_simulated_market(app: typer.Typer) -> None:
    code, out = invoke(app, "price", "BTC", "--at", "2025-06-01T12:00:00Z")
    assert code == 0, out
    assert "BTC/USDT:USDT" in out and "SIMULATED" in out and "simulated" in out
    assert re.search(r"\d{1,3}(,\d{3})+\.\d{2}", out)  # a formatted price


def test_candles_on_the_simulated_market(app: typer.Typer) -> None:
    code, out = invoke(app, "candles", "ETH", "--tf", "4h", "--limit", "50", "--at", "2025-06-01T13:30:00Z")
    assert code == 0, out
    rows = ROW.findall(out)
    assert len(rows) == 50 and rows[-1] == "2025-06-01 12:00" and rows[0] == "2025-05-24 08:00"
    assert "ETH/USDT:USDT 4h" in out and "still forming" in out


@pytest.mark.data
def test_cli_reads_real_files(app: typer.Typer, ohlcv_dir: Path) -> None:
    code, out = invoke(app, "candles", "ETH", "--tf", "4h", "--limit", "50", "--data-dir", str(ohlcv_dir))
    assert code == 0, out
    assert len(ROW.findall(out)) == 50 and "replay" in out and "SIMULATED" not in out
    code, out = invoke(app, "price", "BTC", "--data-dir", str(ohlcv_dir), "--at", "2021-08-22T00:00:00Z")
    assert code == 0, out
    candles = pd.read_csv(ohlcv_dir / "BTC_USDT-1h.csv", nrows=10)
    last_close = candles.loc[candles["datetime"] == "2021-08-21T23:00:00Z", "close"].item()
    assert f"{last_close:,.2f}" in out  # the close of the last hour that ended by --at


def test_unknown_symbol_and_bad_options_fail_cleanly(app: typer.Typer, tmp_path: Path) -> None:
    (tmp_path / "BTC_USDT-1h.csv").write_text(
        "timestamp,datetime,open,high,low,close,volume\n1629579600000,2021-08-21T21:00:00Z,1,2,0.5,1.5,10\n"
    )
    code, out = invoke(app, "price", "BTX", "--data-dir", str(tmp_path))
    assert code == 1 and "did you mean BTC/USDT:USDT" in out and "Traceback" not in out
    code, out = invoke(app, "candles", "BTC", "--tf", "3h")
    assert code == 2 and "Unsupported timeframe" in out
    code, out = invoke(app, "price", "BTC", "--data-dir", str(tmp_path / "missing"))
    assert code == 1 and "does not exist" in out


@pytest.mark.parametrize("symbol", ["NOTACOIN", "ZZZNOTACOIN", "BTCC"])
def test_unknown_symbol_on_the_simulated_market_is_refused(app: typer.Typer, symbol: str) -> None:
    for command in ("price", "candles"):
        code, out = invoke(app, command, symbol)
        assert code == 1, out
        lines = out.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Unknown symbol '{symbol}'"), out
    code, out = invoke(app, "price", "BTCC")
    assert "did you mean BTC/USDT:USDT" in out
