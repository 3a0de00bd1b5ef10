"""`--json` on every read command: one document on stdout that parses, with the figures the text shows."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bastion.cli import app
from storage.migrate import head_revision

runner = CliRunner()
RISK = ["risk", "check", "--symbol", "sol", "--side", "long", "--entry", "150", "--size", "2", "--stop", "140"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One migrated database for the module (the commands here only add reports and scans to it)."""
    folder = tmp_path_factory.mktemp("cli-json")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("BASTION_") and name != "BASTION_TEST_POSTGRES_URL":
                mp.delenv(name)
        mp.chdir(folder)
        path = folder / "cli.db"
        mp.setenv("BASTION_DATABASE__URL", f"sqlite+aiosqlite:///{path}")
        assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
        yield path


def as_json(*args: str) -> Any:
    """The command's stdout with --json, parsed (stderr may carry progress and 'Stored as' lines)."""
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def text_of(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout and "\x1b[" not in result.stdout
    return result.stdout


def test_db_current_json_names_both_revisions(db: Path) -> None:
    body = as_json("db", "current")
    assert body == {"database": head_revision(), "code": head_revision(), "up_to_date": True}
    assert f"database: {body['database']}; code: {body['code']} (up to date)" in text_of("db", "current")


def test_size_json_is_the_calculators_result_the_text_shows(db: Path) -> None:
    words = ["btc", "95000", "93000", "1%", "of", "20k"]
    body = as_json("size", *words)
    assert body["risk_amount"] == 200 and body["stop_distance"] == 2000 and isinstance(body["units"], float)
    assert body["units"] == pytest.approx(body["risk_amount"] / body["stop_distance"])
    assert f"{body['units']:g} units, {body['notional_usd']:,.2f} USD notional" in text_of("size", *words)


def test_a_refused_size_writes_its_reason_to_stderr_and_no_json(db: Path) -> None:
    result = runner.invoke(app, ["size", "btc", "95000", "95000", "--json"])
    assert result.exit_code == 1 and result.stdout == ""
    assert "must be below it for a long" in result.stderr


def test_montecarlo_json_carries_the_distribution_the_text_summarises(db: Path) -> None:
    words = ["45%", "2", "1%", "100", "paths", "2000"]
    body = as_json("montecarlo", *words)
    assert body["paths"] == 2000 and body["trades"] == 100 and body["win_rate"] == 0.45
    assert body["return_pct"]["p5"] <= body["return_pct"]["p50"] <= body["return_pct"]["p95"]
    assert f"median {body['return_pct']['p50']:+.1f}%" in text_of("montecarlo", *words)


def test_risk_check_json_is_the_decision_the_text_prints(db: Path) -> None:
    body = as_json(*RISK)
    assert body["position"]["entry"] == 150 and body["position"]["stop"] == 140 and body["simulated"] is True
    decision = body["decision"]
    assert isinstance(decision["confidence"], float) and decision["rule"]
    text = text_of(*RISK)
    assert f"{decision['action']} (confidence {decision['confidence']:.2f}, rule {decision['rule']}" in text
    for fired in body["also_fired"]:
        assert f"{fired['rule']} → {fired['action']}" in text.replace("\n", " ")


def test_report_json_is_the_stored_report(db: Path) -> None:
    body = as_json("report", "btc", "--tf", "4h")
    assert body["symbol"] == "BTC/USDT:USDT" and body["timeframe"] == "4h" and isinstance(body["price"], float)
    with sqlite3.connect(db) as conn:
        bias, confidence, text = conn.execute(
            "SELECT bias, confidence, text FROM reports WHERE id = ?", (body["report_id"],)
        ).fetchone()
    assert (bias, confidence, text) == (body["bias"], body["confidence"], body["text"])
    assert all(isinstance(level["price"], float) for level in body["levels"])


def test_scan_json_is_the_stored_scan(db: Path) -> None:
    body = as_json("scan", "--watchlist", "BTC")
    assert body["watchlist"] == ["BTC"] and body["considered"] >= body["qualified"] >= 0
    with sqlite3.connect(db) as conn:
        considered, text = conn.execute(
            "SELECT considered, text FROM scan_runs WHERE id = ?", (body["scan_id"],)
        ).fetchone()
    assert (considered, text) == (body["considered"], body["text"])


def test_a_piped_report_is_its_whole_text_never_cut_at_80_columns(db: Path) -> None:
    out = text_of("report", "btc")
    with sqlite3.connect(db) as conn:
        (stored,) = conn.execute("SELECT text FROM reports ORDER BY id DESC LIMIT 1").fetchone()
    assert out == stored.rstrip("\n") + "\n"  # Rich's Markdown cropped list items at 80: "T2 137,214 (7"
    assert any(len(line) > 80 for line in out.splitlines()) and "Bullish (long)" in out


def test_report_on_a_fresh_embedded_database_needs_no_upgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    result = runner.invoke(app, ["report", "eth", "--tf", "1h"])
    assert result.exit_code == 0, result.output
    assert "ETH/USDT:USDT 1h report" in result.stdout and "Stored as report #1." in result.stderr
