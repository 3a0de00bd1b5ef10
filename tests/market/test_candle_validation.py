"""Corrupt candle files are refused with the file and the line, on the provider and on the CLI (one line)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bastion.cli import app
from tests.market.test_market_replay import synthetic_15m, write_csv
from tools.market.base import MarketDataError
from tools.market.features import resample
from tools.market.replay import ReplayMarketData

H = 3_600_000
Rows = list[list[str]]


def _corrupt(tmp_path: Path, edit: Callable[[Rows], None]) -> Path:
    """A valid BTC_USDT-1h.csv (288 candles) with `edit` applied to its data rows (index 0 = line 2)."""
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "BTC_USDT-1h.csv"
    write_csv(path, resample(synthetic_15m(), H))
    header, *rows = [line.split(",") for line in path.read_text().splitlines()]
    edit(rows)
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    return folder


def _negative_close(rows: Rows) -> None:
    rows[200][5] = "-10"  # columns: timestamp, datetime, open, high, low, close, volume


def _high_below_low(rows: Rows) -> None:
    rows[150][3], rows[150][4] = rows[150][4], rows[150][3]


def _unsorted(rows: Rows) -> None:
    rows[100], rows[101] = rows[101], rows[100]


def _duplicate(rows: Rows) -> None:
    rows.insert(51, list(rows[50]))


CASES = [
    (_negative_close, "line 202: close -10 is not a positive price"),
    (_high_below_low, "line 152: high"),
    (_unsorted, "line 103: time"),
    (_duplicate, "line 53: time"),
]


@pytest.mark.parametrize(("edit", "expected"), CASES)
def test_corrupt_csv_is_refused_with_file_and_line(tmp_path: Path, edit: Callable[[Rows], None], expected: str) -> None:
    replay = ReplayMarketData(_corrupt(tmp_path, edit))
    with pytest.raises(MarketDataError) as err:
        replay.candles("BTC", "1h", 100)
    assert err.value.user_message.startswith(f"Candle file BTC_USDT-1h.csv {expected}")
    if edit is _high_below_low:
        assert "is below low" in err.value.user_message
    if edit is _unsorted:
        assert "earlier than the previous row's" in err.value.user_message
    if edit is _duplicate:
        assert "repeats the previous row's time" in err.value.user_message


@pytest.mark.parametrize(("edit", "expected"), CASES)
def test_analyze_on_a_corrupt_file_prints_one_line(tmp_path: Path, edit: Callable[[Rows], None], expected: str) -> None:
    folder = _corrupt(tmp_path, edit)
    result = CliRunner().invoke(app, ["analyze", "BTC", "--tf", "1h", "--bars", "100", "--data-dir", str(folder)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(lines) == 1 and expected in lines[0] and "BTC_USDT-1h.csv" in lines[0], result.output
    assert " T1 " not in result.output  # today's failure: a plan computed from the corrupt candles


def test_corrupt_json_rows_and_valid_files_load(tmp_path: Path) -> None:
    rows = [[1_700_000_000_000 + i * H, 10.0, 11.0, 9.0, 10.5, 5.0] for i in range(30)]
    rows[7][2] = 0.0  # high 0
    (tmp_path / "ETH_USDT-1h.json").write_text(json.dumps(rows))
    with pytest.raises(MarketDataError, match=r"ETH_USDT-1h.json row 8: high 0 is not a positive price"):
        ReplayMarketData(tmp_path).candles("ETH", "1h", 10)
    rows[7][2] = 11.0
    rows[9][5] = -1.0  # negative volume
    (tmp_path / "ETH_USDT-1h.json").write_text(json.dumps(rows))
    with pytest.raises(MarketDataError, match=r"row 10: volume -1"):
        ReplayMarketData(tmp_path).candles("ETH", "1h", 10)
    rows[9][5] = 5.0
    (tmp_path / "ETH_USDT-1h.json").write_text(json.dumps(rows))
    assert len(ReplayMarketData(tmp_path).candles("ETH", "1h", 10)) == 10


@pytest.mark.data
def test_the_real_files_are_valid(ohlcv_dir: Path) -> None:
    replay = ReplayMarketData(ohlcv_dir)
    for symbol in replay.symbols():
        for tf in replay.native_timeframes(symbol):
            assert len(replay.candles(symbol, tf, 10)) == 10
    assert pd.Timestamp(replay.span("BTC", "1h")[0]).year >= 2017
