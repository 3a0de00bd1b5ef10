"""The optional model narrative: a few sentences over the deterministic body, kept only when grounded."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from inference.client import ModelClient
from inference.errors import InferenceError

log = logging.getLogger(__name__)
MAX_NARRATIVE_CHARS = 900

SYSTEM = (
    "You write the short narrative of a crypto market-structure report for subscribers. In 2-4 sentences say what "
    "the structure means for the next sessions: the bias, the level that decides it, and the scenario to watch. "
    "Use only numbers that appear in the report; never invent a price. No emojis, no advice to ignore stops."
)


class Narrator(Protocol):
    """Writes a narrative for a rendered report body."""

    async def __call__(self, body_text: str) -> str:
        """A few sentences, or an empty string."""
        ...


class Grounding(Protocol):
    """The outcome of a grounding check (agents.grounding.GroundingResult has this shape)."""

    @property
    def ok(self) -> bool: ...

    @property
    def unsupported(self) -> list[str]: ...


GroundingCheck = Callable[[str, Iterable[str]], Grounding]


@dataclass
class ModelNarrator:
    """The analyst model over the OpenAI-compatible endpoint as a narrator."""

    client: ModelClient

    async def __call__(self, body_text: str) -> str:
        """Ask the model once; no narrative on any model error (the report goes out without it)."""
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": body_text}]
        try:
            completion = await self.client.complete("analyst", messages)
        except InferenceError as exc:
            log.warning("report narrative skipped: %s", exc)
            return ""
        return completion.text.strip()[:MAX_NARRATIVE_CHARS]


async def grounded_narrative(
    narrator: Narrator, check: GroundingCheck, body_text: str, sources: Sequence[str]
) -> tuple[str | None, list[str]]:
    """(the narrative, []) when every price in it is in the data; (None, the invented figures) otherwise."""
    text = await narrator(body_text)
    if not text:
        return None, []
    result = check(text, [*sources, body_text])
    if not result.ok:
        log.warning("report narrative dropped: figures not in the data: %s", ", ".join(result.unsupported))
        return None, list(result.unsupported)
    return text, []
