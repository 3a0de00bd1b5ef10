"""System prompts as versioned files (`<name>_v<N>.md`); the version used is recorded with each decision."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

_FILE = re.compile(r"^(?P<name>[a-z][a-z0-9_]*?)_v(?P<version>\d+)\.md$")


class PromptNotFound(LookupError):
    """No prompt file with that name (and version)."""


@dataclass(frozen=True, slots=True)
class Prompt:
    """One version of a system prompt."""

    name: str
    version: int
    text: str

    @property
    def id(self) -> str:
        """Stable identifier recorded with decisions, e.g. "risk_v1"."""
        return f"{self.name}_v{self.version}"

    def as_message(self) -> dict[str, str]:
        """The prompt as a chat system message."""
        return {"role": "system", "content": self.text}


def _default_directory() -> Traversable:
    return resources.files(__name__)


def available(directory: Traversable | None = None) -> dict[str, list[int]]:
    """Every prompt name with its versions, oldest first (this package's files unless `directory` is given)."""
    found: dict[str, list[int]] = {}
    for entry in (directory or _default_directory()).iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.setdefault(match["name"], []).append(int(match["version"]))
    return {name: sorted(versions) for name, versions in sorted(found.items())}


def load_prompt(name: str, version: int | None = None, *, directory: Traversable | None = None) -> Prompt:
    """Prompt `name` at `version`, or its newest version when none is given."""
    folder = directory or _default_directory()
    known = available(folder)
    versions = known.get(name)
    if not versions:
        raise PromptNotFound(f"no prompt named {name!r}; available: {', '.join(known) or 'none'}")
    chosen = versions[-1] if version is None else version
    if chosen not in versions:
        raise PromptNotFound(f"prompt {name!r} has no version {version}; available: {versions}")
    text = folder.joinpath(f"{name}_v{chosen}.md").read_text(encoding="utf-8")
    return Prompt(name=name, version=chosen, text=text.strip())
