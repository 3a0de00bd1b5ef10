"""`bastion backtest --model-url` to an endpoint that cannot be scored: one line, exit 1, nothing run (issue 19)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bastion.cli import app


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens there


def test_unreachable_model_is_one_line_and_a_failing_exit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import backtest.pipeline

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the backtest ran against a dead endpoint")

    monkeypatch.setattr(backtest.pipeline, "run_backtest", must_not_run)
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    args = ["backtest", "--symbols", "BTC", "--scenarios", "5", "--data-dir", str(tmp_path), "--model-url", url]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert "Cannot reach the model server" in lines[0] and "--model-url" in lines[0]
    assert "retrying" not in result.output and not (tmp_path / "out").exists()
