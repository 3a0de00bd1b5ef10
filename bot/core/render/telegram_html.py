"""Telegram Bot API HTML (parse_mode="HTML") from the parsed subset: balanced tags, escaped text.

Only the tags Telegram accepts are written (b, i, code, pre, a, blockquote) and nested as it allows: nothing inside
``code``/``pre``, no ``code`` inside a link, no bold inside bold, quotes only at the top level.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.core.render.nodes import Bold, Code, Fence, Inline, Line, Link, Quote, Text
from bot.core.render.parse import parse


def escape_html(s: str) -> str:
    """Text escaped for Telegram HTML: &, < and >."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attr(s: str) -> str:
    """An attribute value escaped for Telegram HTML (quotes too)."""
    return escape_html(s).replace('"', "&quot;")


def _inline(nodes: Iterable[Inline], ctx: frozenset[str] = frozenset()) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, Text):
            out.append(escape_html(node.text))
        elif isinstance(node, Code):
            if "a" in ctx:  # Telegram: links and code cannot contain each other
                out.append(escape_html(node.text))
            elif node.text:
                out.append(f"<code>{escape_html(node.text)}</code>")
        elif isinstance(node, Link):
            inner = _inline(node.children, ctx | {"a"})
            if inner:
                out.append(f'<a href="{escape_attr(node.url)}">{inner}</a>')
        else:
            tag = "b" if isinstance(node, Bold) else "i"
            inner = _inline(node.children, ctx | {tag})
            out.append(inner if tag in ctx or not inner else f"<{tag}>{inner}</{tag}>")
    return "".join(out)


def _line(line: Line) -> str:
    lead = escape_html(line.lead)
    if line.kind == "heading":
        inner = _inline(line.inlines, frozenset({"b"}))
        return lead + f"<b>{inner}</b>" if inner else lead
    return lead + _inline(line.inlines)


def to_telegram_html(md: str) -> str:
    """Render the Markdown subset as Telegram Bot API HTML (parse_mode="HTML"); always balanced."""
    out: list[str] = []
    for block in parse(md):
        if isinstance(block, Fence):
            code = escape_html(block.code)
            if block.lang:
                out.append(f'<pre><code class="language-{escape_attr(block.lang)}">{code}</code></pre>')
            else:
                out.append(f"<pre>{code}</pre>")
        elif isinstance(block, Quote):
            inner = "\n".join(_line(line) for line in block.lines)
            out.append(f"<blockquote>{inner}</blockquote>" if inner.strip() else inner)
        else:
            out.append(_line(block))
    return "\n".join(out)
