"""`bastion chat` refuses unknown and misspelled symbols with suggestions (slash and free text), no traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bastion.cli import app


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("BASTION_") and name != "BASTION_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BASTION_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    return tmp_path


def test_console_refuses_unknown_symbols(env: Path) -> None:
    lines = ["price of NOTACOINUSDT", "/price ethh", "levels XRPPUSDT 4h", "price btc"]
    result = CliRunner().invoke(app, ["chat"], input="\n".join(lines) + "\n")
    out = result.output
    assert result.exit_code == 0, out
    assert "Unknown symbol 'NOTACOIN/USDT:USDT'" in out
    assert "Unknown symbol 'ETHH/USDT:USDT'; did you mean ETH/USDT:USDT" in out
    assert "Unknown symbol 'XRPP/USDT:USDT'; did you mean XRP/USDT:USDT" in out
    assert "[offline model] BTC/USDT:USDT: " in out  # a listed symbol still answers
    assert "Traceback" not in out
