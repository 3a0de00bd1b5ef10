"""A served model (any OpenAI-compatible endpoint) as a decision maker: concurrent, retried, cached by prompt hash.

Each scenario's prompt is the risk system prompt plus `build_risk_context` of its RiskContext (the text the
production model sees). Answers that fail the schema (InvalidModelOutput), fail `check_model_output` (e.g. a
stop on the wrong side) or never arrive (timeouts, unavailable server) count as INVALID, never as a crash.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from backtest.config import ACTION_CLASS, INVALID
from backtest.makers import Choices
from backtest.scenarios import ScenarioSet
from engine.risk.context import MarketView, RiskContext, RiskPosition
from engine.risk.decision import Decision
from engine.risk.merge import check_model_output
from engine.risk.opinion import JsonRiskModel
from inference.errors import InferenceError, InvalidModelOutput
from inference.prompts import Prompt, load_prompt
from inference.schemas import RiskDecisionOut

CACHE_FILE = "model_cache.sqlite"


class PromptCache:
    """SQLite map of sha256(model + messages) → the model's answer (valid JSON, or why it was invalid)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, answer TEXT NOT NULL)")

    @staticmethod
    def key(model: str, messages: list[dict[str, str]]) -> str:
        """Hash of everything that decides the answer."""
        return hashlib.sha256(json.dumps([model, messages], sort_keys=True).encode()).hexdigest()

    def get(self, key: str) -> dict[str, object] | None:
        """The cached answer, if any."""
        row = self._db.execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, answer: dict[str, object]) -> None:
        """Store an answer."""
        self._db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?)", (key, json.dumps(answer)))
        self._db.commit()

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def check_context(sc: ScenarioSet, i: int) -> RiskContext:
    """A structure-free RiskContext of row `i`: all `check_model_output` needs (side, entry, stop, price)."""
    stop = float(sc.stop[i])
    return RiskContext(
        position=RiskPosition(
            symbol=str(sc.symbol[i]),
            side="long" if sc.d[i] > 0 else "short",
            entry=float(sc.entry[i]),
            size=1.0,
            leverage=float(sc.leverage[i]),
            stop=None if math.isnan(stop) else stop,
        ),
        market=MarketView(price=float(sc.price[i]), atr=float(sc.atr[i]), now=datetime.now(UTC)),
    )


async def model_choices(
    client: JsonRiskModel,
    model_name: str,
    scenarios: ScenarioSet,
    prompts: list[str],
    cache: PromptCache | None = None,
    *,
    concurrency: int = 8,
    prompt: Prompt | None = None,
    name: str = "model",
    progress: Callable[[int], None] | None = None,
    outcome: Callable[[list[Decision | None]], np.ndarray] | None = None,
) -> Choices:
    """Ask the model about every scenario (at most `concurrency` requests at a time) and classify its answers;
    `outcome` simulates the checked decisions as given (an invalid one leaves the position as it is)."""
    system = (prompt or load_prompt("risk")).as_message()
    gate = asyncio.Semaphore(concurrency)
    actions: list[str | None] = [None] * len(prompts)
    decisions: list[Decision | None] = [None] * len(prompts)
    confidence = np.full(len(prompts), np.nan)
    reasons: list[str] = [""] * len(prompts)

    async def one(i: int) -> None:
        messages = [system, {"role": "user", "content": prompts[i]}]
        key = PromptCache.key(model_name, messages)
        answer = cache.get(key) if cache is not None else None
        if answer is None:
            async with gate:
                answer = await _ask(client, messages)
            if cache is not None and answer.get("cacheable"):
                cache.put(key, answer)
        decision = answer.get("decision")
        if isinstance(decision, dict):
            checked, problem = check_model_output(check_context(scenarios, i), decision)
            if checked is not None:
                actions[i], confidence[i], decisions[i] = checked.action, checked.confidence, checked
            else:
                reasons[i] = f"rejected: {problem}"
        else:
            reasons[i] = str(answer.get("error", "no answer"))
        if progress is not None:
            progress(1)

    await asyncio.gather(*(one(i) for i in range(len(prompts))))
    classes = np.array([ACTION_CLASS.get(a, INVALID) if a else INVALID for a in actions], dtype=np.int64)
    r = outcome(decisions) if outcome is not None else np.full(len(prompts), np.nan)
    return Choices(name, classes, r, confidence, [a or "INVALID" for a in actions])


async def _ask(client: JsonRiskModel, messages: list[dict[str, str]]) -> dict[str, object]:
    try:
        out = await client.complete_json("risk", messages, RiskDecisionOut)
    except InvalidModelOutput as exc:
        # The model answered, just not usefully: cache it so a rerun scores the same answer.
        return {"error": f"invalid output: {exc.detail or exc}", "cacheable": True}
    except InferenceError as exc:
        return {"error": f"{type(exc).__name__}: {exc}", "cacheable": False}
    return {"decision": out.model_dump(), "cacheable": True}
