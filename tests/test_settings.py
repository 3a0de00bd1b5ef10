"""Settings: defaults, environment parsing, clear errors naming the variable, README coverage."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bastion.settings import SettingsError, iter_env_vars, load_settings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stray BASTION_* variables or .env file from the developer's shell."""
    import os

    for name in list(os.environ):
        if name.startswith("BASTION_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_need_no_keys_and_no_network() -> None:
    s = load_settings()
    assert s.database.url.get_secret_value() == "sqlite+aiosqlite:///data/bastion.db"
    assert s.model.offline
    assert s.exchange.default_id == "paper"
    assert s.exchange.market_data == "simulated"
    assert not s.telegram.enabled and not s.discord.enabled
    assert s.risk.default_risk_pct == 2.0


def test_nested_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "BASTION_RISK__MAX_ACTIONS_PER_HOUR=3\nBASTION_MODEL__BASE_URL=http://gpu:8000/v1/\n"
    )
    monkeypatch.setenv("BASTION_DATABASE__URL", "postgresql://bot:pw@db.internal:5432/bastion")
    monkeypatch.setenv("BASTION_SCHEDULER__REPORT_SYMBOLS", '["BTC","AVAX"]')
    s = load_settings()
    assert s.risk.max_actions_per_hour == 3
    assert s.model.base_url == "http://gpu:8000/v1"
    assert not s.model.offline
    # A plain postgresql:// URL is upgraded to the async driver.
    assert s.database.url.get_secret_value() == "postgresql+asyncpg://bot:pw@db.internal:5432/bastion"
    assert s.scheduler.report_symbols == ["BTC", "AVAX"]


def test_secrets_never_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_TELEGRAM__TOKEN", "123456:AAAA-very-secret-token")
    monkeypatch.setenv("BASTION_DATABASE__URL", "postgresql://bot:hunter2pw@db/bastion")
    s = load_settings()
    text = repr(s) + str(s) + s.model_dump_json()
    assert "very-secret-token" not in text
    assert "hunter2pw" not in text
    assert "123456:AAAA-very-secret-token" in s.secret_values()
    assert "hunter2pw" in s.secret_values()


BAD_SETTINGS = [
    ("BASTION_EXCHANGE__DEFAULT_ID", "kraken", "unknown exchange 'kraken'"),
    ("BASTION_EXCHANGE__MARKET_EXCHANGE", "paper", "unknown exchange 'paper'"),
    ("BASTION_DATABASE__URL", "not a url", "malformed database URL"),
    ("BASTION_DATABASE__URL", "mysql://u@h/db", "unsupported database driver 'mysql'"),
    ("BASTION_DATABASE__URL", "postgresql+asyncpg://", "needs a host and a database"),
    ("BASTION_MODEL__BASE_URL", "gpu-host:8000", "must start with http:// or https://"),
    ("BASTION_MODEL__RISK_TEMPERATURE", "3", "less than or equal to 2"),
    ("BASTION_API__PORT", "99999", "less than or equal to 65535"),
    ("BASTION_API__PORT", "eighty", "valid integer"),
    ("BASTION_RISK__MAX_CLOSE_PCT", "150", "less than or equal to 100"),
    ("BASTION_SECRET_KEYS", "not-a-fernet-key", "key #1 is not a Fernet key"),
    ("BASTION_ALLOWED_USERS", '["bob"]', "is not platform:id"),
    ("BASTION_LOGGING__FORMAT", "xml", "'human' or 'json'"),
]


@pytest.mark.parametrize(("var", "value", "message"), BAD_SETTINGS)
def test_bad_value_names_variable_and_problem(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, message: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert (var, err.value.problems[0][0]) == (var, var)
    assert message in str(err.value)


def test_secret_key_error_does_not_echo_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    good = Fernet.generate_key().decode()
    monkeypatch.setenv("BASTION_SECRET_KEYS", f"{good},bad-key-material-xyz")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "key #2" in str(err.value)
    assert "bad-key-material-xyz" not in str(err.value) and good not in str(err.value)


@pytest.mark.parametrize(
    ("env", "var", "message"),
    [
        ({"BASTION_TELEGRAM__ENABLED": "true"}, "BASTION_TELEGRAM__TOKEN", "required"),
        (
            {
                "BASTION_TELEGRAM__ENABLED": "true",
                "BASTION_TELEGRAM__TOKEN": "1:abcdef",
                "BASTION_TELEGRAM__MODE": "webhook",
            },
            "BASTION_TELEGRAM__WEBHOOK_URL",
            "https://",
        ),
        ({"BASTION_DISCORD__ENABLED": "1"}, "BASTION_DISCORD__TOKEN", "required"),
    ],
)
def test_cross_field_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], var: str, message: str
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert err.value.problems[0][0] == var
    assert message in err.value.problems[0][1]


def test_several_problems_reported_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_API__PORT", "0")
    monkeypatch.setenv("BASTION_EXCHANGE__DEFAULT_ID", "nope")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert {p[0] for p in err.value.problems} == {"BASTION_API__PORT", "BASTION_EXCHANGE__DEFAULT_ID"}


def test_readme_documents_every_setting() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [var for var, _ in iter_env_vars() if f"`{var}`" not in readme]
    assert not missing, f"README settings table lacks: {missing}"
