"""A served model as a maker over real HTTP: garbage and wrong-side stops are INVALID, answers are cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import SecretStr

from backtest.config import HOLD, INVALID, TIGHTEN
from backtest.model_maker import PromptCache, model_choices
from backtest.scenarios import ScenarioSet
from bastion.settings import ModelSettings
from inference import ModelClient, RetryPolicy
from tests.fakes.openai_server import FakeOpenAIServer, Reply

N = 5


def scenarios() -> ScenarioSet:
    """Five long positions at 100 (entry 100, stop 95): only what check_model_output reads matters."""
    one = lambda v: np.full(N, v)  # noqa: E731
    return ScenarioSet(
        symbol=np.full(N, "BTC/USDT:USDT", dtype=object), seed=one(0), remaining=one(1.0),
        group=one(0), kind=one(0), stop_type=one(0), entry_bar=one(0), bar=one(1), d=one(1), leverage=one(3.0),
        entry=one(100.0), initial_stop=one(95.0), stop=one(95.0), t1=one(105.0), t2=one(110.0), t3=one(115.0),
        targets_hit=one(0), risk=one(5.0), atr_entry=one(2.0), price=one(100.0), atr=one(2.0),
    )  # fmt: skip


def decision(action: str, **kw: object) -> dict[str, object]:
    """A schema-valid risk decision."""
    base: dict[str, object] = {"action": action, "confidence": 0.8, "reasoning": "numbers", "close_pct": None}
    base.update({"new_stop": None, "next_check_minutes": None, **kw})
    return base


async def test_garbage_and_wrong_side_stops_count_as_invalid_and_answers_are_cached(tmp_path: Path) -> None:
    prompts = [f"scenario {i}" for i in range(N)]
    async with FakeOpenAIServer(models=["bastion"]) as server:
        server.script(
            Reply.raw("this is not JSON"),
            Reply.json(decision("HOLD", confidence=0.7)),
            Reply.json(decision("TRAIL_STOP", new_stop=101.0)),  # a long's stop above the price
            Reply.status(500),
            Reply.json(decision("TRAIL_STOP", new_stop=98.0)),
        )
        settings = ModelSettings(base_url=server.base_url, risk_model="bastion", api_key=SecretStr("k"), timeout_s=5)
        cache = PromptCache(tmp_path / "cache.sqlite")
        async with ModelClient(settings, retry=RetryPolicy(attempts=2, base_delay_s=0.0, jitter=0.0)) as client:
            seen: list[object] = []

            def outcome(decisions: list[object]) -> np.ndarray:
                seen.extend(decisions)
                return np.arange(float(len(decisions)))

            got = await model_choices(
                client,
                "bastion",
                scenarios(),
                prompts,
                cache,
                concurrency=1,
                outcome=outcome,  # type: ignore[arg-type]
            )
            assert got.classes.tolist() == [INVALID, HOLD, INVALID, INVALID, TIGHTEN]
            # Only checked decisions are simulated, as given (the new stop travels); the rest keep the position.
            assert [None if d is None else d.action for d in seen] == [None, "HOLD", None, None, "TRAIL_STOP"]  # type: ignore[attr-defined]
            assert seen[4].new_stop == 98.0 and got.r.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]  # type: ignore[attr-defined]
            assert got.confidence is not None and got.confidence[1] == 0.7
            assert len(server.chat_bodies) == N
            # Rerun: everything the model answered comes from the cache; only the HTTP 500 is asked again.
            server.script(Reply.json(decision("EXIT_FULL")))
            again = await model_choices(client, "bastion", scenarios(), prompts, cache, concurrency=4)
        cache.close()
        assert len(server.chat_bodies) == N + 1
        assert again.classes.tolist() == [INVALID, HOLD, INVALID, 2, TIGHTEN]
        body = server.chat_bodies[0]
        assert body["messages"][0]["role"] == "system" and body["messages"][1]["content"] == "scenario 0"
