"""Plain-language alert rules: 20 phrasings to their structure, refusals with reasons, the model fallback through
the JSON schema, evaluation (and/or, missing readings), and a scheduled rule firing once per cooldown."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agents.offline.intents import find_symbol
from engine.alerts.confirm import propose_rule
from engine.alerts.job import AlertJob
from engine.alerts.parse import is_alert_request, parse_rule, read_rule
from engine.alerts.rules import RuleError, RuleSpec
from inference.structured import response_format_for
from storage import migrate
from storage.db import create_engine, session_factory
from storage.models import Outbox
from storage.repositories import alerts as alerts_repo
from storage.repositories.users import get_or_create_user
from tools.market.replay import ReplayMarketData

C = tuple[str, str, float | str, str]  # metric, comparator, threshold or level, timeframe
PHRASINGS: list[tuple[str, str, list[C], str, int]] = [
    (
        "tell me when BTC funding is above 0.05% while price holds above the 4h POC",
        "BTC",
        [("funding", ">", 0.05, "1h"), ("price", ">", "poc", "4h")],
        "and",
        60,
    ),
    ("alert me if ETH drops below 3000", "ETH", [("price", "<", 3000, "1h")], "and", 60),
    ("notify me when SOL goes above $250", "SOL", [("price", ">", 250, "1h")], "and", 60),
    ("BTC above 100k", "BTC", [("price", ">", 100_000, "1h")], "and", 60),
    ("when btc funding turns negative", "BTC", [("funding", "<", 0, "1h")], "and", 60),
    ("tell me when ETH open interest rises more than 5%", "ETH", [("oi_change", ">", 5, "1h")], "and", 60),
    ("alert me when SOL volume is above 3x average", "SOL", [("volume_ratio", ">", 3, "1h")], "and", 60),
    ("ping me if BTC volume spikes on the 4h", "BTC", [("volume_ratio", ">", 3, "4h")], "and", 60),
    ("let me know when BTC is up 5% in 24h", "BTC", [("change_24h", ">", 5, "1h")], "and", 60),
    ("tell me when ETH dumps 8%", "ETH", [("change_24h", "<", -8, "1h")], "and", 60),
    ("alert me when BTC falls below the 1h value area low", "BTC", [("price", "<", "val", "1h")], "and", 60),
    (
        "tell me when SOL funding above 0.1% or open interest up 10%",
        "SOL",
        [("funding", ">", 0.1, "1h"), ("oi_change", ">", 10, "1h")],
        "or",
        60,
    ),
    (
        "when BTC price >= 95,000 and funding < 0.01%, at most once every 4h",
        "BTC",
        [("price", ">=", 95_000, "1h"), ("funding", "<", 0.01, "1h")],
        "and",
        240,
    ),
    ("tell me when ETH crosses above 4000, cooldown 30m", "ETH", [("price", ">", 4000, "1h")], "and", 30),
    ("alert me when bitcoin breaks above the daily vah", "BTC", [("price", ">", "vah", "1d")], "and", 60),
    ("notify me when SOL oi drops 5%", "SOL", [("oi_change", "<", -5, "1h")], "and", 60),
    ("tell me when BTC funding is below -0.02% once a day", "BTC", [("funding", "<", -0.02, "1h")], "and", 1440),
    (
        "alert me if ETH is below 2500 or above 4500",
        "ETH",
        [("price", "<", 2500, "1h"), ("price", ">", 4500, "1h")],
        "or",
        60,
    ),
    (
        "warn me when SOLUSDT volume more than 5 times its average and price above the 4h poc",
        "SOL",
        [("volume_ratio", ">", 5, "4h"), ("price", ">", "poc", "4h")],
        "and",
        60,
    ),
    ("tell me when BTC trades at least 120000", "BTC", [("price", ">=", 120_000, "1h")], "and", 60),
]


def _shape(spec: RuleSpec) -> list[C]:
    return [
        (c.metric, c.comparator, c.level if c.level is not None else c.threshold, c.timeframe)  # type: ignore[misc]
        for c in spec.conditions
    ]


@pytest.mark.parametrize(("text", "symbol", "conditions", "join", "cooldown"), PHRASINGS, ids=range(len(PHRASINGS)))
def test_phrasings_parse_to_the_expected_structure(
    text: str, symbol: str, conditions: list[C], join: str, cooldown: int
) -> None:
    spec = parse_rule(text, find_symbol)
    assert spec.symbol == symbol
    assert _shape(spec) == conditions
    assert spec.join == join and spec.cooldown_minutes == cooldown


def test_the_spec_example_is_echoed_in_plain_words() -> None:
    spec = parse_rule(PHRASINGS[0][0], find_symbol)
    assert spec.describe() == "BTC: funding above 0.05% per 8h and price above the 4h POC; at most once every hour"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("tell me a joke", "name the coin"),
        ("tell me when funding is high", "name the coin"),
        ("when BTC funding is above", "needs a rate"),
        ("tell me when BTC is above 100k and funding above 0.1% or oi up 5%", "either “and” or “or”"),
        ("tell me when BTC crosses 100k", "cross above or below"),
        ("alert me when BTC funding above 50%", "out of range"),
        ("tell me when BTC above -5", "must be above 0"),
        ("tell me when BTC volume goes crazy", "how much volume"),
        ("tell me when BTC open interest moves", "by how many %"),
        ("tell me when BTC is nice", "could not read"),
        ("tell me when BTC above 100k, cooldown 1m", "greater than or equal to 5"),
    ],
)
def test_invalid_rules_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_rule(text, find_symbol)
    assert reason in str(info.value)


def test_free_text_alert_requests_are_recognised() -> None:
    assert is_alert_request("Tell me when BTC funding is above 0.05%")
    assert is_alert_request("alert me if ETH drops below 3000")
    assert not is_alert_request("what is the funding of BTC?")
    assert not is_alert_request("close half my sol long")


def test_rule_evaluation_and_or_and_missing_readings() -> None:
    spec = parse_rule(PHRASINGS[0][0], find_symbol)
    assert spec.needs() == {"funding", "price", "poc:4h"}
    assert spec.holds({"funding": 0.06, "price": 101.0, "poc:4h": 100.0})
    assert not spec.holds({"funding": 0.04, "price": 101.0, "poc:4h": 100.0})
    assert not spec.holds({"funding": 0.06, "price": 99.0, "poc:4h": 100.0})
    assert not spec.holds({"price": 101.0, "poc:4h": 100.0})  # funding not available: never fires
    either = parse_rule("alert me if ETH is below 2500 or above 4500", find_symbol)
    assert either.holds({"price": 2400.0}) and either.holds({"price": 4600.0}) and not either.holds({"price": 3000.0})
    assert not either.holds({})


class FakeModel:
    """The inference client's complete_json, answering from a script."""

    def __init__(self, answer: RuleSpec | Exception) -> None:
        self.answer = answer
        self.calls: list[tuple[Any, Sequence[Any], type]] = []

    async def complete_json(self, task: Any, messages: Sequence[Any], model_cls: type[RuleSpec]) -> RuleSpec:
        self.calls.append((task, messages, model_cls))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_the_model_reads_what_the_grammar_cannot_through_the_json_schema() -> None:
    text = "ping me should bitcoin's funding get silly, like past a tenth of a percent"
    with pytest.raises(RuleError):
        parse_rule(text, find_symbol)
    answer = RuleSpec.model_validate(
        {"symbol": "BTC", "conditions": [{"metric": "funding", "comparator": ">", "threshold": 0.1}]}
    )
    model = FakeModel(answer)
    spec = await read_rule(text, find_symbol, model)
    assert spec == answer and model.calls[0][2] is RuleSpec and model.calls[0][1][-1]["content"] == text
    # The schema the model is held to is strict-mode: closed objects, every property listed.
    schema = response_format_for(RuleSpec)["json_schema"]["schema"]
    assert schema["additionalProperties"] is False and set(schema["required"]) == set(RuleSpec.model_fields)
    # The grammar answers the common phrasings itself, without asking the model.
    model.calls.clear()
    await read_rule(PHRASINGS[1][0], find_symbol, model)
    assert model.calls == []


async def test_an_unusable_model_answer_is_the_grammars_refusal() -> None:
    with pytest.raises(RuleError, match="name the coin"):
        await read_rule("tell me a joke", find_symbol, FakeModel(ValueError("conditions: too short")))
    with pytest.raises(RuleError, match="name the coin"):
        await read_rule("tell me a joke", find_symbol, None)


@pytest.fixture
async def lite(sqlite_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A migrated SQLite database."""
    engine = create_engine(sqlite_url)
    await migrate.upgrade(engine)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def test_a_scheduled_rule_fires_once_per_cooldown_on_replayed_candles(
    lite: async_sessionmaker[AsyncSession], ohlcv_dir: Path
) -> None:
    """BTC fell through 120,000 on 2025-10-10 (real 1h candles): the rule holds for hours, alerts every 2 h."""
    market = ReplayMarketData(ohlcv_dir)
    start = datetime(2025, 10, 10, 12, tzinfo=UTC)
    now = [start]
    async with lite.begin() as s:
        user = await get_or_create_user(s, "telegram", "7", "u")
        assert user.id is not None
        spec = parse_rule("tell me when BTC drops below 120000, at most once every 2h", find_symbol)
        rule, _ = await propose_rule(s, user_id=user.id, platform="telegram", chat_ref="7", text="t", spec=spec)
        assert rule.id is not None
    job = AlertJob(lite, market, clock=lambda: now[0])
    market.set_now(start)
    assert (await job.run_cycle()).queued == 0  # pending: not confirmed yet, never evaluated
    async with lite.begin() as s:
        assert await alerts_repo.move_rule(s, rule.id, user.id, to="active", only_from=("pending",))
    queued = []
    for i in range(24):  # every 15 minutes for six hours
        now[0] = start + timedelta(minutes=15 * i)
        market.set_now(now[0])
        queued.append((now[0], (await job.run_cycle()).queued))
    fired_at = [t for t, n in queued if n]
    # The 15:15 candle closed at 119,252 (first below 120,000); it stays below: every 2 h from then on.
    assert fired_at == [datetime(2025, 10, 10, 15, 30, tzinfo=UTC), datetime(2025, 10, 10, 17, 30, tzinfo=UTC)]
    async with lite() as s:
        rows = (await s.scalars(select(Outbox).order_by(Outbox.id))).all()  # type: ignore[arg-type]
    assert len(rows) == len(fired_at) and all(r.recipient == "7" for r in rows)
    assert f"Alert #{rule.id}: BTC" in rows[0].payload["text"] and "price below 120,000" in rows[0].payload["text"]
    # Switched off, it never fires again, even when the condition still holds.
    async with lite.begin() as s:
        assert await alerts_repo.move_rule(s, rule.id, user.id, to="off", only_from=("active",))
    now[0] += timedelta(hours=3)
    market.set_now(now[0])
    assert (await job.run_cycle()).queued == 0
