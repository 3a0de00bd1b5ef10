"""The model's opinion on a position: one context builder (shared with training), a JSON decision, never a crash."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

from engine.risk.context import RiskContext
from inference.client import Message
from inference.config import Task
from inference.errors import InferenceError
from inference.prompts import Prompt, load_prompt
from inference.schemas import RiskDecisionOut

log = logging.getLogger(__name__)


def build_risk_context(ctx: RiskContext) -> str:
    """The user turn of a risk request: position, market and structure, numbers only (training uses it too)."""
    pos, m = ctx.position, ctx.market
    lines = [
        "POSITION",
        f"symbol: {pos.symbol}  side: {pos.side}  size: {pos.size:g}  leverage: {pos.leverage:g}x",
        f"entry: {pos.entry:g}  stop: {'none' if pos.stop is None else f'{pos.stop:g}'}"
        + (f"  initial_stop: {pos.initial_stop:g}" if pos.initial_stop else ""),
        "targets: "
        + (", ".join(f"T{i + 1} {t:g}" for i, t in enumerate(pos.targets)) or "none")
        + f"  targets_taken: {pos.targets_hit}",
        f"style: {pos.style}" + (f"  held_hours: {_hours(m.now - pos.opened_at):.1f}" if pos.opened_at else ""),
        "",
        "MARKET",
        f"timeframe: {m.timeframe}  price: {m.price:g}  last_close: {m.close if m.close is not None else 'n/a'}",
        f"atr14: {m.atr:g}  pnl_per_unit: {ctx.pnl_per_unit:g}"
        + (f"  r_multiple: {ctx.r_multiple:.2f}" if ctx.r_multiple is not None else "  r_multiple: n/a (no stop)"),
        "volume_ratio: "
        + ("n/a" if m.volume_ratio is None else f"{m.volume_ratio:.2f}")
        + "  funding_8h: "
        + ("n/a" if m.funding_rate is None else f"{m.funding_rate * 100:.4f}%"),
    ]
    if m.structure is not None:
        lines += ["", "STRUCTURE", m.structure.compact()]
    lines += ["", "Answer with one JSON decision."]
    return "\n".join(lines)


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


class JsonRiskModel(Protocol):
    """What the opinion needs from the inference client."""

    async def complete_json(
        self, task: Task, messages: Sequence[Message], model_cls: type[RiskDecisionOut]
    ) -> RiskDecisionOut:
        """Ask for a JSON decision validated against `model_cls`."""
        ...


class RiskOpinion:
    """Asks the model for a decision within a deadline; failures come back as a reason, not an exception."""

    def __init__(self, client: JsonRiskModel, *, timeout_s: float = 20.0, prompt: Prompt | None = None) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self.prompt = prompt or load_prompt("risk")

    async def ask(self, ctx: RiskContext) -> tuple[RiskDecisionOut | None, str | None]:
        """(decision, None) or (None, why it could not be used)."""
        messages = [self.prompt.as_message(), {"role": "user", "content": build_risk_context(ctx)}]
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self.client.complete_json("risk", messages, RiskDecisionOut), None
        except TimeoutError:
            return None, f"model timed out after {self.timeout_s:g}s"
        except InferenceError as exc:
            log.info("risk model unusable: %s", exc)
            return None, f"model error: {exc}"
