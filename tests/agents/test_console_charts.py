"""`bastion chat` draws charts in memory: a note in the terminal, no PNG left in the working folder."""

from __future__ import annotations

import os
import re
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


def test_console_chart_leaves_no_file(env: Path) -> None:
    result = CliRunner().invoke(app, ["chat"], input="chart sol 1h\n/chart eth 4h\n")
    out = result.output
    assert result.exit_code == 0, out
    assert len(re.findall(r"\(chart drawn: \d+ KiB PNG", out)) == 2, out
    assert "Chart of SOL/USDT:USDT 1h" in out and "Chart of ETH/USDT:USDT 4h" in out
    assert ".png" not in out.replace("--chart FILE", "") and str(env) not in out
    assert not list(env.rglob("*.png"))
