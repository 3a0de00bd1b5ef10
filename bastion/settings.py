"""Application settings: environment variables with the `BASTION_` prefix, nested with `__`, and `.env`."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from engine.access import AccessPolicy
from engine.risk.calibration import shipped_min_confidence
from storage.exchange_ids import CCXT_EXCHANGES, SUPPORTED_EXCHANGES

ENV_PREFIX = "BASTION_"
NESTED_DELIMITER = "__"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/bastion.db"

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


class SettingsError(Exception):
    """Settings are invalid; the message names each variable and its problem."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = [f"  {var}: {msg}" for var, msg in problems]
        super().__init__("Invalid configuration:\n" + "\n".join(lines))


def normalise_database_url(url: str) -> str:
    """Return `url` with its async driver (aiosqlite / asyncpg); raise ValueError when malformed."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(
            "malformed database URL; expected e.g. sqlite+aiosqlite:///data/bastion.db "
            "or postgresql+asyncpg://user:password@host:5432/bastion"
        ) from None
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ValueError(
            f"unsupported database driver {parsed.drivername!r}; use sqlite+aiosqlite or postgresql+asyncpg"
        )
    parsed = parsed.set(drivername=driver)
    if driver == "postgresql+asyncpg" and not (parsed.host and parsed.database):
        raise ValueError("a PostgreSQL URL needs a host and a database name")
    if driver == "sqlite+aiosqlite" and not parsed.database:
        raise ValueError("a SQLite URL needs a file path (in-memory databases do not survive a restart)")
    return parsed.render_as_string(hide_password=False)


# Database connections besides the inbox and outbox slots: grouped inbox writes, the leader's jobs, the probes.
POOL_MARGIN = 4


class DatabaseSettings(BaseModel):
    """Application database (SQLite by default, PostgreSQL at scale)."""

    url: SecretStr = Field(
        default=SecretStr(DEFAULT_DATABASE_URL),
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://user:pw@host/db",
    )
    echo: bool = Field(default=False, description="Log every SQL statement (debugging only).")
    pool_size: int = Field(
        default=5,
        ge=1,
        le=400,
        description="Connection pool size for PostgreSQL; unset: the process's concurrency (inbox + outbox slots + "
        f"{POOL_MARGIN} for the API's grouped inbox writes, the leader's jobs and the probes).",
    )
    checkpoint_path: Path = Field(
        default=Path("data/checkpoints.db"),
        description="SQLite file for agent conversation checkpoints when the database is SQLite.",
    )
    checkpoints_kept: int | None = Field(
        default=1,
        ge=1,
        le=1000,
        description="Conversation checkpoints kept per thread (the latest is all a resume reads; null keeps all).",
    )
    retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="`bastion db prune` deletes delivered outbox messages, handled webhook updates and signal "
        "nonces older than this.",
    )

    @field_validator("url", mode="before")
    @classmethod
    def _normalise_url(cls, value: Any) -> str:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        return normalise_database_url(raw)

    @property
    def is_sqlite(self) -> bool:
        """True when the database is a SQLite file."""
        return self.url.get_secret_value().startswith("sqlite")


class ModelSettings(BaseModel):
    """OpenAI-compatible model endpoint (vLLM in production); unset means the offline model."""

    base_url: str | None = Field(default=None, description="e.g. http://gpu-host:8000/v1; empty = offline model")
    api_key: SecretStr = Field(default=SecretStr(""), description="Bearer token of the endpoint, if any.")
    analyst_model: str = Field(default="bastion", description="Served model name for analyst chat.")
    risk_model: str = Field(default="bastion", description="Served model name for risk decisions.")
    analyst_temperature: float = Field(default=0.6, ge=0.0, le=2.0, description="Analyst chat temperature.")
    risk_temperature: float = Field(default=0.3, ge=0.0, le=2.0, description="Risk decision temperature.")
    max_tokens: int = Field(default=1500, ge=16, le=8192, description="Maximum tokens per answer.")
    timeout_s: float = Field(default=60.0, gt=0, le=600, description="Request timeout in seconds.")

    @field_validator("base_url", mode="before")
    @classmethod
    def _check_base_url(cls, value: Any) -> str | None:
        if value is None or str(value).strip() == "":
            return None
        text = str(value).strip().rstrip("/")
        if not text.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// (e.g. http://localhost:8000/v1)")
        return text

    @property
    def offline(self) -> bool:
        """True when no endpoint is configured and the offline model answers."""
        return self.base_url is None


class ExchangeSettings(BaseModel):
    """Market data source and default trading venue."""

    default_id: str = Field(default="paper", description=f"One of: {', '.join(SUPPORTED_EXCHANGES)}.")
    market_data: Literal["simulated", "ccxt", "replay"] = Field(
        default="simulated", description="Market data provider: simulated (offline), ccxt (live), replay (files)."
    )
    market_exchange: str = Field(default="binanceusdm", description="ccxt exchange for live market data.")
    fallback_exchange: str | None = Field(default="bybit", description="ccxt exchange used when the first fails.")
    data_dir: Path = Field(default=Path("../shared/data/ohlcv"), description="Candle files for the replay provider.")
    sandbox: bool = Field(default=False, description="Use the exchanges' testnets where they exist.")
    paper_balance: float = Field(default=10_000.0, gt=0, description="Starting USDT balance of a paper account.")
    paper_fee_pct: float = Field(default=0.05, ge=0, le=1, description="Paper taker fee in percent.")
    paper_slippage_pct: float = Field(default=0.02, ge=0, le=5, description="Paper market-order slippage in percent.")
    limit_expiry_h: float = Field(
        default=24.0, gt=0, le=720, description="Hours a paper limit entry rests before expiring (`for 4h` per entry)."
    )

    @field_validator("default_id")
    @classmethod
    def _check_default(cls, value: str) -> str:
        if value not in SUPPORTED_EXCHANGES:
            raise ValueError(f"unknown exchange {value!r}; supported: {', '.join(SUPPORTED_EXCHANGES)}")
        return value

    @field_validator("market_exchange", "fallback_exchange")
    @classmethod
    def _check_ccxt(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if value not in CCXT_EXCHANGES:
            raise ValueError(f"unknown exchange {value!r}; supported: {', '.join(CCXT_EXCHANGES)}")
        return value


class TelegramSettings(BaseModel):
    """Telegram bot channel."""

    enabled: bool = Field(default=False, description="Run the Telegram bot.")
    token: SecretStr = Field(default=SecretStr(""), description="Bot token from @BotFather.")
    mode: Literal["polling", "webhook"] = Field(default="polling", description="polling (dev) or webhook (prod).")
    webhook_url: str | None = Field(default=None, description="Public HTTPS URL Telegram posts updates to.")
    webhook_secret: SecretStr = Field(
        default=SecretStr(""), description="Checked against X-Telegram-Bot-Api-Secret-Token."
    )
    base_url: str = Field(default="https://api.telegram.org/bot", description="Bot API base URL (tests, proxies).")

    @model_validator(mode="after")
    def _check_enabled(self) -> TelegramSettings:
        if self.enabled and not self.token.get_secret_value():
            raise ValueError("token: required when the Telegram channel is enabled")
        if self.enabled and self.mode == "webhook":
            if not (self.webhook_url or "").startswith("https://"):
                raise ValueError("webhook_url: webhook mode needs a public https:// URL")
            if not self.webhook_secret.get_secret_value():
                raise ValueError("webhook_secret: webhook mode needs a secret token")
        return self


class DiscordSettings(BaseModel):
    """Discord bot channel."""

    enabled: bool = Field(default=False, description="Run the Discord bot.")
    token: SecretStr = Field(default=SecretStr(""), description="Bot token from the Discord developer portal.")
    guild_ids: list[int] = Field(default_factory=list, description="Guilds to sync slash commands to (JSON list).")

    @model_validator(mode="after")
    def _check_enabled(self) -> DiscordSettings:
        if self.enabled and not self.token.get_secret_value():
            raise ValueError("token: required when the Discord channel is enabled")
        return self


class BotSettings(BaseModel):
    """Behaviour shared by the chat channels."""

    rate_per_minute: float = Field(default=20.0, gt=0, le=600, description="Messages per user per minute.")
    burst: int = Field(default=5, ge=1, le=100, description="Messages a user may send at once before the limit.")
    stream_interval_s: float = Field(default=1.0, ge=0.5, le=10, description="Seconds between streamed edits.")
    approval_sweep_s: float = Field(default=15.0, ge=1, le=600, description="Seconds between expiry sweeps.")
    outbox_lease_s: float = Field(
        default=60.0, ge=1, le=3600, description="Seconds a delivery worker holds claimed outbox rows unrenewed."
    )
    outbox_concurrency: int = Field(
        default=8,
        ge=1,
        le=30,
        description="Outbox sends in flight at once; also how many a killed delivery worker may have sent unmarked "
        "(sent again after its lease).",
    )


class ApiSettings(BaseModel):
    """HTTP API: webhooks, health, metrics."""

    enabled: bool = Field(default=True, description="Serve the HTTP API in `bastion serve`.")
    host: str = Field(default="127.0.0.1", description="Bind address.")
    port: int = Field(default=8080, ge=1, le=65535, description="Bind port.")
    signal_secret: SecretStr = Field(default=SecretStr(""), description="Shared secret / HMAC key for signal hooks.")
    inbox_lease_s: float = Field(
        default=120.0,
        ge=1,
        le=3600,
        description="Seconds before another worker handles a stored webhook update its worker left unfinished.",
    )
    inbox_concurrency: int = Field(
        default=8,
        ge=1,
        le=256,
        description="Webhook updates one worker handles at once; also how many a killed worker may have answered "
        "unmarked (answered again after its lease).",
    )
    webhook_reply_budget_s: float = Field(
        default=0.0,
        ge=0,
        le=30,
        description="Seconds a webhook request waits for its update's turn to answer a final single message in the "
        "response body (one Bot API call saved); past it the request answers empty and the reply is sent. 0 (the "
        "default): never. Off by default: Telegram reports nothing about a call made from a response, so a refused "
        "one (a 429) is lost instead of retried. On, a worker spends about a third less CPU per /price update "
        "(tests/bench/bench_webhook.py).",
    )


class SchedulerSettings(BaseModel):
    """Background jobs: reports, alerts, position monitor."""

    enabled: bool = Field(default=True, description="Run scheduled jobs in `bastion serve`.")
    timezone: str = Field(default="UTC", description="Time zone for cron-like schedules.")
    report_symbols: list[str] = Field(
        default_factory=lambda: ["BTC", "ETH", "SOL"], description="Symbols of scheduled reports (JSON list)."
    )
    report_interval_hours: int = Field(default=4, ge=1, le=168, description="Hours between scheduled reports.")
    monitor_interval_s: int = Field(default=60, ge=1, le=3600, description="Seconds between position checks.")
    alerts_interval_s: int = Field(
        default=300, ge=10, le=3600, description="Seconds between checks of market alerts and users' alert rules."
    )
    alert_watchlist: list[str] = Field(
        default_factory=lambda: ["BTC", "ETH", "SOL"], description="Symbols market alerts watch (JSON list)."
    )
    leader_check_s: float = Field(
        default=5.0,
        ge=0.2,
        le=10,
        description="Seconds between a standby's tries for leadership (and the leader's lock checks).",
    )


class ReportSettings(BaseModel):
    """Reports for subscribers and the daily elite scan (symbols and default interval: BASTION_SCHEDULER__REPORT_*)."""

    timeframe: Literal["15m", "1h", "4h", "1d"] = Field(default="4h", description="Timeframe of scheduled reports.")
    tick_s: int = Field(default=60, ge=5, le=3600, description="Seconds between checks for due report slots.")
    scan_cron: str = Field(default="0 0 * * *", description="Cron expression (scheduler time zone) of the daily scan.")
    watchlist: list[str] = Field(
        default_factory=lambda: ["BTC", "ETH", "SOL", "AVAX", "XRP", "DOGE", "LINK", "ADA", "POL"],
        description="Symbols the elite scan looks at (JSON list).",
    )
    scan_min_confidence: float = Field(default=0.65, ge=0, le=1, description="Scan: minimum setup confidence.")
    scan_min_move_pct: float = Field(default=1.0, ge=0, le=100, description="Scan: minimum move to T1, in %.")


class ProvidersSettings(BaseModel):
    """Optional premium data providers: each is used only when its API key is set."""

    coinglass_api_key: SecretStr = Field(
        default=SecretStr(""), description="CoinGlass API v4 key: liquidations, heatmap, OI by exchange, long/short."
    )
    coinglass_base_url: str = Field(default="https://open-api-v4.coinglass.com", description="CoinGlass API root.")
    whale_alert_api_key: SecretStr = Field(
        default=SecretStr(""), description="Whale Alert API key: on-chain transfers of $1M+ with owner types."
    )
    whale_alert_base_url: str = Field(default="https://api.whale-alert.io/v1", description="Whale Alert API root.")
    timeout_s: float = Field(default=10.0, gt=0, le=60, description="Seconds a premium provider may take to answer.")


class RiskSettings(BaseModel):
    """Execution guards and defaults of the risk engine."""

    default_risk_pct: float = Field(default=2.0, gt=0, le=10, description="Risk per trade in % of capital.")
    max_close_pct: float = Field(default=50.0, gt=0, le=100, description="Max % of a position closed per auto action.")
    min_confidence: float = Field(
        default=shipped_min_confidence(),
        ge=0,
        le=1,
        description="Auto execution: min calibrated confidence (the backtest share of a rule's calls among the best; "
        "a model decision's own); hard-rule exits and stops are exempt. Default: fitted by backtest.fit_calibration.",
    )
    max_actions_per_hour: int = Field(default=6, ge=0, description="Max automated actions per account per hour.")
    daily_loss_limit_usd: float = Field(default=500.0, ge=0, description="Auto execution stops past this loss/day.")
    approval_ttl_s: int = Field(default=300, ge=10, le=86_400, description="Seconds an approval button stays valid.")


class LoggingSettings(BaseModel):
    """Log output."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Log level.")
    format: Literal["human", "json"] = Field(default="human", description="human (console) or json (production).")

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class Settings(BaseSettings):
    """All of Bastion's configuration."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    secret_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Comma-separated Fernet keys encrypting exchange credentials; first encrypts, all decrypt.",
    )
    allowed_users: list[str] = Field(
        default_factory=list,
        description='Who may trade, as platform:id (JSON list, e.g. ["telegram:123"]); empty = nobody but admins '
        "and users granted the trader role (see BASTION_TRADING_OPEN).",
    )
    admin_users: list[str] = Field(default_factory=list, description="Admins, as platform:id (JSON list).")
    trading_open: bool = Field(
        default=False,
        description="Let every chat user trade on their own accounts (default false: only allowed users, "
        "admins and /grant-ed traders). The console always may.",
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    exchange: ExchangeSettings = Field(default_factory=ExchangeSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    discord: DiscordSettings = Field(default_factory=DiscordSettings)
    bot: BotSettings = Field(default_factory=BotSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    providers: ProvidersSettings = Field(default_factory=ProvidersSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    @model_validator(mode="after")
    def _size_pool(self) -> Settings:
        # One connection per slot that may hold one at once: a smaller pool queued the slots (and opened and closed
        # overflow connections per update), a bigger one only idles.
        if "pool_size" not in self.database.model_fields_set:
            self.database.pool_size = self.api.inbox_concurrency + self.bot.outbox_concurrency + POOL_MARGIN
        return self

    @field_validator("secret_keys")
    @classmethod
    def _check_keys(cls, value: SecretStr) -> SecretStr:
        for index, key in enumerate(split_keys(value.get_secret_value()), start=1):
            if not is_fernet_key(key):
                raise ValueError(
                    f"key #{index} is not a Fernet key (32 url-safe base64-encoded bytes; "
                    "make one with `bastion keys genkey`)"
                )
        return value

    @field_validator("allowed_users", "admin_users")
    @classmethod
    def _check_user_refs(cls, value: list[str]) -> list[str]:
        for ref in value:
            platform, _, uid = ref.partition(":")
            if platform not in ("telegram", "discord", "console", "api") or not uid:
                raise ValueError(f"{ref!r} is not platform:id (platform one of telegram, discord, console, api)")
        return value

    def access_policy(self) -> AccessPolicy:
        """Who may trade and administer, from BASTION_ALLOWED_USERS, BASTION_ADMIN_USERS and BASTION_TRADING_OPEN."""
        return AccessPolicy.from_settings(self.allowed_users, self.admin_users, self.trading_open)

    def secret_values(self) -> list[str]:
        """Every configured secret value, for the log redaction filter."""
        values = [s.get_secret_value() for s in _iter_secrets(self)]
        values += split_keys(self.secret_keys.get_secret_value())
        db = make_url(self.database.url.get_secret_value())
        if db.password:
            values.append(str(db.password))
        return [v for v in values if v]


def split_keys(raw: str) -> list[str]:
    """Split the comma-separated key list, ignoring blanks."""
    return [k.strip() for k in raw.split(",") if k.strip()]


def is_fernet_key(key: str) -> bool:
    """True when `key` decodes to the 32 bytes a Fernet key needs."""
    try:
        return len(base64.urlsafe_b64decode(key.encode())) == 32
    except (binascii.Error, ValueError):
        return False


def _iter_secrets(model: BaseModel) -> list[SecretStr]:
    found: list[SecretStr] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            found.append(value)
        elif isinstance(value, BaseModel):
            found.extend(_iter_secrets(value))
    return found


def env_var_for(loc: tuple[Any, ...]) -> str:
    """The environment variable a validation error location refers to."""
    parts = [str(p) for p in loc if isinstance(p, str)]
    return ENV_PREFIX + NESTED_DELIMITER.join(p.upper() for p in parts) if parts else ENV_PREFIX + "*"


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment; raise SettingsError naming each bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            loc = tuple(err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            # Model-level validators report "field: problem"; move the field into the variable name.
            field, sep, rest = msg.partition(": ")
            if sep and field.isidentifier() and field.islower():
                loc, msg = (*loc, field), rest
            problems.append((env_var_for(loc), msg))
        raise SettingsError(problems) from None


def iter_env_vars(model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX) -> list[tuple[str, Any]]:
    """Every leaf setting as (environment variable, field info), for docs and the README check."""
    out: list[tuple[str, Any]] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.extend(iter_env_vars(annotation, prefix + name.upper() + NESTED_DELIMITER))
        else:
            out.append((prefix + name.upper(), info))
    return out
