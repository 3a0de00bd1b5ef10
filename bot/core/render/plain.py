"""Plain text from the parsed subset, markers removed (console, notification previews)."""

from __future__ import annotations

from collections.abc import Iterable

from bot.core.render.nodes import Code, Fence, Inline, Line, Link, Quote, Text
from bot.core.render.parse import parse


def _inline(nodes: Iterable[Inline]) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, Text | Code):
            out.append(node.text)
        elif isinstance(node, Link):
            inner = _inline(node.children)
            out.append(inner if inner == node.url else f"{inner} ({node.url})")
        else:
            out.append(_inline(node.children))
    return "".join(out)


def _line(line: Line) -> str:
    return line.lead + _inline(line.inlines)


def to_plain(md: str) -> str:
    """Render the Markdown subset as plain text, markers removed (console, notification previews)."""
    out: list[str] = []
    for block in parse(md):
        if isinstance(block, Fence):
            out.append(block.code)
        elif isinstance(block, Quote):
            for line in block.lines:
                out.extend(("│ " + part).rstrip() for part in _line(line).split("\n"))
        else:
            out.append(_line(block))
    return "\n".join(out)
