"""The tree the renderers walk: inline nodes inside lines, lines inside quotes, fenced code blocks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class Text:
    """Literal text (a soft line break inside a paragraph is a "\\n" in it)."""

    text: str


@dataclass
class Code:
    """Inline code span."""

    text: str


@dataclass
class Bold:
    """Strong emphasis."""

    children: list[Inline]


@dataclass
class Italic:
    """Emphasis."""

    children: list[Inline]


@dataclass
class Link:
    """Inline link."""

    children: list[Inline]
    url: str


Inline = Text | Code | Bold | Italic | Link
LineKind = Literal["text", "heading", "bullet"]


@dataclass
class Line:
    """A paragraph, heading or list item: its inlines after `lead`, literal text such as the "• " of a bullet."""

    inlines: list[Inline]
    kind: LineKind = "text"
    lead: str = ""


@dataclass
class Quote:
    """Consecutive ``>`` lines."""

    lines: list[Line]


@dataclass
class Fence:
    """Fenced code block."""

    code: str
    lang: str = ""


Block = Line | Quote | Fence
