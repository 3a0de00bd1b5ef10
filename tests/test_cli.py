"""The `bastion` CLI end to end, in-process, on a temporary database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from bastion import __version__
from bastion.cli import app
from storage.migrate import head_revision

runner = CliRunner()
SECRET = "cli-secret-value-never-printed-123"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("BASTION_") and name != "BASTION_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    values = {
        "BASTION_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "BASTION_SECRET_KEYS": Fernet.generate_key().decode(),
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


def invoke(*args: str, input: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.output  # Click ≥ 8.2: stdout and stderr interleaved, as a terminal shows them


def test_version() -> None:
    code, out = invoke("--version")
    assert code == 0 and out.strip() == f"bastion {__version__}"


def test_config_show_masks_secrets(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_TELEGRAM__TOKEN", "999:telegram-token-abcdef")
    code, out = invoke("config", "show", "--json")
    assert code == 0
    assert "telegram-token-abcdef" not in out and env["BASTION_SECRET_KEYS"] not in out
    assert '"BASTION_TELEGRAM__TOKEN": "**********"' in out
    assert '"BASTION_EXCHANGE__DEFAULT_ID": "paper"' in out


def test_bad_setting_exits_2_with_named_variable(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_EXCHANGE__DEFAULT_ID", "ftx")
    code, out = invoke("config", "show")
    assert code == 2
    assert "BASTION_EXCHANGE__DEFAULT_ID" in out and "unknown exchange 'ftx'" in out
    assert "Traceback" not in out


def test_db_upgrade_current_downgrade(env: dict[str, str]) -> None:
    assert "database: empty" in invoke("db", "current")[1]
    code, out = invoke("db", "upgrade")
    assert code == 0 and head_revision() in out
    assert "up to date" in invoke("db", "current")[1]
    code, out = invoke("db", "downgrade", "base")
    assert code == 0 and "base (empty)" in out
    code, out = invoke("db", "downgrade")
    assert code == 1 and "no schema to downgrade" in out


def test_db_upgrade_on_postgres(postgres_url: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_DATABASE__URL", postgres_url)
    code, out = invoke("db", "upgrade")
    assert code == 0, out
    assert "up to date" in invoke("db", "current")[1]


def test_keys_lifecycle(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert invoke("db", "upgrade")[0] == 0
    code, out = invoke(
        "keys",
        "add",
        "--exchange",
        "bybit",
        "--label",
        "main",
        "--user",
        "telegram:42",
        input=f"AKEY-12345678\n{SECRET}\n",
    )
    assert code == 0, out
    assert "added bybit account 'main'" in out and SECRET not in out
    code, out = invoke(
        "keys",
        "add",
        "--exchange",
        "bybit",
        "--label",
        "main",
        "--user",
        "telegram:42",
        input=f"AKEY-12345678\n{SECRET}\n",
    )
    assert code == 1 and "already have an account labelled 'main'" in out
    code, out = invoke("keys", "add", "--exchange", "paper", "--label", "paper", "--user", "telegram:42")
    assert code == 0, out

    code, out = invoke("keys", "list", "--user", "telegram:42")
    assert code == 0 and "bybit" in out and "paper" in out and SECRET not in out and "AKEY" not in out

    # Rotate: new key first, old key second; afterwards the old key alone no longer reads the row.
    old = env["BASTION_SECRET_KEYS"]
    new = Fernet.generate_key().decode()
    monkeypatch.setenv("BASTION_SECRET_KEYS", f"{new},{old}")
    code, out = invoke("keys", "rotate")
    assert code == 0 and "1 account(s)" in out
    monkeypatch.setenv("BASTION_SECRET_KEYS", old)
    code, out = invoke("keys", "rotate")
    assert code == 1 and "cannot be rotated" in out and old not in out

    code, out = invoke("keys", "remove", "--label", "main", "--user", "telegram:42")
    assert code == 0
    code, out = invoke("keys", "remove", "--label", "main", "--user", "telegram:42")
    assert code == 1 and "no account labelled 'main'" in out


def test_keys_add_needs_secret_keys(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    invoke("db", "upgrade")
    monkeypatch.delenv("BASTION_SECRET_KEYS")
    code, out = invoke(
        "keys", "add", "--exchange", "okx", "--user", "telegram:1", input="k1234567\ns1234567\np1234567\n"
    )
    assert code == 1 and "BASTION_SECRET_KEYS is not set" in out and "Traceback" not in out
    assert "API key" not in out and "API secret" not in out  # refused before any prompt


def test_keys_add_rejects_bad_input(env: dict[str, str]) -> None:
    invoke("db", "upgrade")
    code, out = invoke("keys", "add", "--exchange", "kraken")
    assert code == 2 and "unknown exchange 'kraken'" in out
    code, out = invoke("keys", "add", "--exchange", "paper", "--user", "bob")
    assert code == 2 and "not a user reference" in out


def test_keys_on_missing_schema_is_clear(env: dict[str, str]) -> None:
    code, out = invoke("keys", "list")
    assert code == 1
    assert "schema is missing or outdated" in out and "bastion db upgrade" in out


def test_chat_greets_lists_commands_and_exits_on_eof(env: dict[str, str]) -> None:
    code, out = invoke("chat", input="/help\nwhat is BTC doing?\n")
    assert code == 0
    assert out.startswith(f"Bastion {__version__}")
    for command in ("bastion db upgrade", "bastion keys add", "bastion config show", "bastion chat"):
        assert command in out
    assert out.rstrip().endswith("Bye.")


def one_line_error(code: int, out: str) -> str:
    """The single line a failing command printed (no traceback, no wrapped second line)."""
    assert code != 0, out
    assert "Traceback" not in out, out
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("risk", "check", "-s", "BTC", "--side", "long", "--entry", "90000", "--size", "1", "--stop", "-5"),
            "--stop must be a price above 0",
        ),
        (
            ("risk", "check", "-s", "BTC", "--side", "long", "--entry", "90000", "--size", "1", "--stop", "nan"),
            "--stop must be a finite number",
        ),
        (("analyze", "BTC", "--chart", "/missing/dir/x.png"), "folder /missing/dir does not exist"),
        (("db", "upgrade", "foo"), "Can't locate revision identified by 'foo'"),
        (("db", "downgrade", "foo"), "Can't locate revision identified by 'foo'"),
        (("price", "NOTACOIN"), "Unknown symbol 'NOTACOIN'"),
    ],
)
def test_cli_errors_are_one_clear_line(env: dict[str, str], args: tuple[str, ...], expected: str) -> None:
    if args[0] == "db" and args[1] == "downgrade":
        assert invoke("db", "upgrade")[0] == 0  # a schema to go down from
    line = one_line_error(*invoke(*args))
    assert expected in line


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("BASTION_ALLOWED_USERS", "telegram:123", "BASTION_ALLOWED_USERS: not valid JSON"),
        ("BASTION_ADMIN_USERS", '["telegram:1"', "BASTION_ADMIN_USERS: not valid JSON"),
        ("BASTION_SCHEDULER__REPORT_SYMBOLS", "BTC,ETH", "BASTION_SCHEDULER__REPORT_SYMBOLS: not valid JSON"),
        ("BASTION_ALLOWED_USERS", '["bob"]', "BASTION_ALLOWED_USERS: 'bob' is not platform:id"),
    ],
)
def test_bad_list_setting_names_the_variable(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    for args in (("config", "show"), ("price", "BTC")):
        code, out = invoke(*args)
        assert code == 2 and expected in one_line_error(code, out)


def test_second_serve_on_a_taken_port_is_one_line(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("BASTION_API__PORT", str(port))
        line = one_line_error(*invoke("serve"))
    assert f"cannot serve the API on 127.0.0.1:{port}" in line and "BASTION_API__PORT" in line


def test_an_unexpected_error_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import bastion.cli

    def broken() -> None:
        raise RuntimeError("disk on fire\nsecond line of detail")

    monkeypatch.setattr(bastion.cli, "app", broken)
    with pytest.raises(SystemExit) as exited:
        bastion.cli.main()
    err = capsys.readouterr().err
    assert exited.value.code == 1
    assert err.strip() == "Error: unexpected RuntimeError: disk on fire"
