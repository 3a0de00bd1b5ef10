"""Discord Markdown from the parsed subset: headings bold, stray markers escaped, no mass mentions."""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.core.render.nodes import Bold, Code, Fence, Inline, Line, Link, Quote, Text
from bot.core.render.parse import parse

ZWSP = "\u200b"
_MENTION = re.compile(r"@(everyone|here)")
_BLOCK_START = re.compile(r"^(?:#{1,6}[ \t]|-#|[-*+][ \t]|>)")


def _defuse_mentions(s: str) -> str:
    return _MENTION.sub(lambda m: "@" + ZWSP + m.group(1), s)


def _text(s: str, in_link: bool) -> str:
    s = _defuse_mentions(s)
    out: list[str] = []
    for k, c in enumerate(s):
        if c in "\\*`" or (in_link and c in "[]"):
            out.append("\\" + c)
        elif c == "_":
            intraword = 0 < k < len(s) - 1 and s[k - 1].isalnum() and s[k + 1].isalnum()
            out.append(c if intraword else "\\_")
        elif c in "~|" and ((k > 0 and s[k - 1] == c) or (k + 1 < len(s) and s[k + 1] == c)):
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def _inline(nodes: Iterable[Inline], ctx: frozenset[str] = frozenset()) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, Text):
            out.append(_text(node.text, "a" in ctx))
        elif isinstance(node, Code):
            if not node.text:
                continue
            if "`" not in node.text:
                out.append(f"`{node.text}`")
            else:
                out.append(f"`` {node.text.replace('``', '`' + ZWSP + '`')} ``")
        elif isinstance(node, Link):
            inner = _inline(node.children, ctx | {"a"})
            if inner:
                out.append(f"[{inner}]({node.url})")
        else:
            tag, mark = ("b", "**") if isinstance(node, Bold) else ("i", "*")
            inner = _inline(node.children, ctx | {tag})
            out.append(inner if tag in ctx or not inner else f"{mark}{inner}{mark}")
    return "".join(out)


def _literal_start(line: str) -> str:
    """A line whose literal text Discord would read as block markup, escaped."""
    stripped = line.lstrip(" \t")
    if _BLOCK_START.match(stripped):
        return line[: len(line) - len(stripped)] + "\\" + stripped
    return line


def _line(line: Line) -> str:
    lead = _text(line.lead, False)
    if line.kind == "heading":
        inner = _inline(line.inlines, frozenset({"b"}))
        return lead + f"**{inner}**" if inner else lead
    parts = (lead + _inline(line.inlines)).split("\n")  # a paragraph's line breaks: each line starts afresh
    first = 1 if line.kind == "bullet" else 0
    return "\n".join(part if k < first else _literal_start(part) for k, part in enumerate(parts))


def to_discord(md: str) -> str:
    """Render the Markdown subset as Discord Markdown: headings bold, stray markers escaped, no mass mentions."""
    out: list[str] = []
    for block in parse(md):
        if isinstance(block, Fence):
            code = block.code.replace("```", "`" + ZWSP + "``")
            out.append(f"```{block.lang}\n{code}\n```")
        elif isinstance(block, Quote):
            for line in block.lines:
                out.extend(("> " + part).rstrip() for part in _line(line).split("\n"))
        else:
            out.append(_line(block))
    return "\n".join(out)
