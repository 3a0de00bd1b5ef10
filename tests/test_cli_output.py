"""Read commands print whole numbers: piped at natural width, narrow terminals drop columns, `--json` parses."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from bastion.cli import app
from bastion.cli.output import Column, print_table

runner = CliRunner()
WIDE = ["129,065.40", "-1.52%", "129,058.95", "129,071.85", "simulated", "2026-12-01 12:24:05"]
COLUMNS = [Column("last"), Column("24h"), Column("bid", optional=True), Column("ask", optional=True),
           Column("source", numeric=False, optional=True), Column("time (UTC)", numeric=False)]  # fmt: skip


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("BASTION_") and name not in ("BASTION_TEST_POSTGRES_URL", "BASTION_DATA_DIR"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_a_pipe_gets_every_cell_whole_whatever_the_width() -> None:
    out = io.StringIO()
    print_table(Console(file=out, width=40), COLUMNS, [WIDE])  # not a terminal: the width is no limit
    text = out.getvalue()
    assert "…" not in text
    assert all(cell in text for cell in WIDE)


def test_a_narrow_terminal_drops_optional_columns_and_says_so_instead_of_cutting() -> None:
    out = io.StringIO()
    print_table(Console(file=out, width=60, force_terminal=True, color_system=None), COLUMNS, [WIDE])
    text = out.getvalue()
    assert "…" not in text
    assert all(cell in text for cell in ("129,065.40", "-1.52%", "2026-12-01 12:24:05"))
    assert "not shown at this width" in text and "source" in text.split("not shown at this width")[1]
    assert max(len(line) for line in text.splitlines()) <= 60


PIPED = [("price", "btc"), ("candles", "eth", "--limit", "5"), ("candles", "sol", "--tf", "4h"), ("config", "show")]


@pytest.mark.parametrize("args", PIPED)
def test_piped_market_tables_never_cut_a_number(args: tuple[str, ...]) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    assert "…" not in result.output


def test_price_and_candles_json_round_trip() -> None:
    price = runner.invoke(app, ["price", "btc", "--json"])
    assert price.exit_code == 0, price.output
    data = json.loads(price.output)
    assert data["symbol"] == "BTC/USDT:USDT" and data["simulated"] is True and data["last"] > 0
    candles = runner.invoke(app, ["candles", "eth", "--limit", "4", "--json"])
    assert candles.exit_code == 0, candles.output
    body = json.loads(candles.output)
    assert body["timeframe"] == "1h" and len(body["candles"]) == 4
    assert all(c["high"] >= max(c["open"], c["close"]) for c in body["candles"])


def test_price_at_a_time_outside_the_replayed_data_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rows = ["timestamp,open,high,low,close,volume"]
    rows += [f"{1_700_000_000_000 + i * 3_600_000},100,101,99,100.5,10" for i in range(48)]
    (data / "BTC_USDT-1h.csv").write_text("\n".join(rows) + "\n")
    result = runner.invoke(app, ["price", "btc", "--data-dir", str(data), "--at", "2030-01-01"])
    assert result.exit_code == 1
    assert "outside the replayed" in result.output and "2023-11-14" in result.output
    inside = runner.invoke(app, ["price", "btc", "--data-dir", str(data), "--at", "2023-11-15T12:00"])
    assert inside.exit_code == 0, inside.output


def test_engine_status_and_keys_list_name_users_and_units_and_speak_json(tmp_path: Path) -> None:
    env = {"BASTION_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    added = runner.invoke(app, ["keys", "add", "--exchange", "paper", "--label", "paper", "--user", "telegram:42"],
                          env=env)  # fmt: skip
    assert added.exit_code == 0, added.output
    status = runner.invoke(app, ["engine", "status"], env=env)
    assert status.exit_code == 0, status.output
    assert "telegram:42" in status.output and "+0.00 USDT" in status.output
    body = json.loads(runner.invoke(app, ["engine", "status", "--json"], env=env).output)
    assert body["accounts"][0]["user"] == "telegram:42" and body["accounts"][0]["realised_pnl_24h_usdt"] == 0
    listed = json.loads(runner.invoke(app, ["keys", "list", "--json"], env=env).output)
    assert listed[0]["user"] == "telegram:42" and listed[0]["label"] == "paper" and listed[0]["credentials"] == "none"
    assert "telegram:42" in runner.invoke(app, ["keys", "list"], env=env).output


def test_piped_config_show_prints_each_value_whole() -> None:
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 0, result.output
    watchlist = json.loads(runner.invoke(app, ["config", "show", "--json"]).output)["BASTION_REPORTS__WATCHLIST"]
    line = next(x for x in result.output.splitlines() if "BASTION_REPORTS__WATCHLIST" in x)
    assert len(watchlist) > 5 and json.dumps(watchlist) in line  # cut at 80 columns before ('["BTC", "ETH", …')
