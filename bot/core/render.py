"""Rendering of the bot's Markdown subset for Telegram (HTML), Discord (Markdown) and plain text, and splitting.

The analyst and the command handlers write a small Markdown subset:

- inline: ``**bold**``, ``*italic*`` / ``_italic_``, `` `code` ``, ``[text](url)`` and backslash escapes;
- lines: ``# heading`` (rendered bold), ``- item`` / ``* item`` (bullet "•"), ``1. item`` (kept as text),
  ``> quote`` (consecutive lines form one quote), fenced code blocks (```` ``` ```` or ``~~~``, optional language).

Everything else is literal text. Emphasis follows CommonMark's delimiter matching with one stricter rule: no
intraword emphasis. A run of ``*`` or a single ``_`` opens only after a non-alphanumeric character and before a
non-space one, and closes only after a non-space character and before a non-alphanumeric one, so ``BTC_USDT_PERP``,
``2 * 3``, ``x**2`` and ``a*b*c`` stay literal. ``__`` is always literal. Unmatched markers are literal text.
Inline constructs do not span lines. Links need an ``http(s)://``, ``tg://`` or ``mailto:`` URL
(at most 2048 characters); a fence language is one word of at most 32 characters.

The renderers work on a tree, so the Telegram HTML is balanced whatever the input, and respects Telegram's
nesting rules (nothing inside ``code``/``pre``, no ``code`` inside a link, no nested quotes).

Splitting works on the rendered text and counts UTF-16 code units (Telegram's unit; never less than ``len``).
Cuts prefer a paragraph break, then a line break, then a space (each in the second half of the window first),
then anywhere, but never inside an HTML tag or entity. The break's whitespace ends the chunk, so the slices
concatenate back to the text exactly. With ``markup="html"`` tags open at a cut are closed at the end of the
chunk and reopened (with their attributes) at the start of the next; with ``markup="markdown"`` (Discord) a
code fence open at a cut is closed and reopened with its language. A limit too small to hold the open markup
raises ValueError (never with the renderers' output and the platform limits).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

TELEGRAM_LIMIT = 4096
DISCORD_LIMIT = 2000
DISCORD_EMBED_LIMIT = 4096

Markup = Literal["html", "markdown", "plain"]

# ---------------------------------------------------------------------------------------------------------------
# Tree


@dataclass
class Text:
    """Literal text."""

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


@dataclass
class Line:
    """One line of text: a paragraph line, a heading or a bullet item."""

    inlines: list[Inline]
    kind: Literal["text", "heading", "bullet"] = "text"
    indent: str = ""


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

# ---------------------------------------------------------------------------------------------------------------
# Parsing

_ESCAPABLE = frozenset("\\`*_{}[]()#+-.!>~|<")
_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([\w+#.-]{0,32})[ \t]*$")
_FENCE_CLOSE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*$")
_QUOTE = re.compile(r"^ {0,3}> ?(.*)$")
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_BULLET = re.compile(r"^([ \t]*)[-*][ \t]+(.*)$")
_URL = re.compile(r"^(?:https?://|tg://|mailto:)\S+$", re.IGNORECASE)
_MAX_URL = 2048  # escaped; keeps any open markup far below the platform limits


def parse(md: str) -> list[Block]:
    """Parse the Markdown subset into blocks."""
    lines = md.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE_OPEN.match(line)
        if fence:
            marker = fence.group(1)
            body: list[str] = []
            i += 1
            while i < len(lines):
                close = _FENCE_CLOSE.match(lines[i])
                if close and close.group(1)[0] == marker[0] and len(close.group(1)) >= len(marker):
                    i += 1
                    break
                body.append(lines[i])
                i += 1
            blocks.append(Fence("\n".join(body), fence.group(2)))
            continue
        if _QUOTE.match(line):
            quoted: list[Line] = []
            while i < len(lines) and (m := _QUOTE.match(lines[i])):
                quoted.append(_parse_line(m.group(1)))
                i += 1
            blocks.append(Quote(quoted))
            continue
        blocks.append(_parse_line(line))
        i += 1
    return blocks


def _parse_line(line: str) -> Line:
    heading = _HEADING.match(line)
    if heading:
        return Line(parse_inline(heading.group(1) or ""), "heading")
    bullet = _BULLET.match(line)
    if bullet:
        return Line(parse_inline(bullet.group(2)), "bullet", bullet.group(1))
    return Line(parse_inline(line))


@dataclass(eq=False)
class _Delim:
    """A run of emphasis markers while matching."""

    ch: str
    count: int
    can_open: bool
    can_close: bool
    pos: int
    opens: list[str] = field(default_factory=list)
    closes: list[str] = field(default_factory=list)


def _run_length(s: str, i: int, ch: str) -> int:
    j = i
    while j < len(s) and s[j] == ch:
        j += 1
    return j - i


def _code_close(s: str, start: int, run: int) -> int | None:
    """Index of the backtick run of exactly `run` that closes a code span opened before `start`."""
    j = start
    while True:
        j = s.find("`", j)
        if j < 0:
            return None
        n = _run_length(s, j, "`")
        if n == run:
            return j
        j += n


def _bracket_pairs(s: str) -> dict[int, int]:
    """Matching `]` for each `[` of a line, skipping escapes and code spans (one pass)."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    j = 0
    while j < len(s):
        c = s[j]
        if c == "\\" and j + 1 < len(s) and s[j + 1] in _ESCAPABLE:
            j += 2
            continue
        if c == "`":
            run = _run_length(s, j, "`")
            close = _code_close(s, j + run, run)
            j = j + run if close is None else close + run
            continue
        if c == "[":
            stack.append(j)
        elif c == "]" and stack:
            pairs[stack.pop()] = j
        j += 1
    return pairs


def _link_at(s: str, i: int, pairs: dict[int, int]) -> tuple[str, str, int] | None:
    """The (text, url, end) of a link starting at the `[` at `i`, if there is a valid one."""
    text_end = pairs.get(i)
    if text_end is None or text_end == i + 1 or not s.startswith("(", text_end + 1):
        return None
    depth, k = 0, text_end + 2
    stop = min(len(s), k + _MAX_URL + 1)
    while k < stop:
        c = s[k]
        if c.isspace():
            return None
        if c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                break
            depth -= 1
        k += 1
    else:
        return None
    url = s[text_end + 2 : k]
    if not _URL.match(url) or len(_esc_attr(url)) > _MAX_URL:
        return None
    return s[i + 1 : text_end], url, k + 1


def parse_inline(s: str, links: bool = True) -> list[Inline]:
    """Parse one line's inline Markdown into nodes."""
    items: list[Inline | _Delim] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            items.append(Text("".join(buf)))
            buf.clear()

    pairs = _bracket_pairs(s) if links and "](" in s else {}
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n and s[i + 1] in _ESCAPABLE:
            buf.append(s[i + 1])
            i += 2
        elif c == "`":
            run = _run_length(s, i, "`")
            close = _code_close(s, i + run, run)
            if close is None:
                buf.append(s[i : i + run])
                i += run
                continue
            content = s[i + run : close]
            if len(content) >= 2 and content[0] == content[-1] == " " and content.strip(" "):
                content = content[1:-1]
            flush()
            items.append(Code(content))
            i = close + run
        elif c == "[" and pairs and (link := _link_at(s, i, pairs)):
            text, url, end = link
            flush()
            items.append(Link(parse_inline(text, links=False), url))
            i = end
        elif c in "*_":
            run = _run_length(s, i, c)
            prev = s[i - 1] if i > 0 else ""
            nxt = s[i + run] if i + run < n else ""
            valid = run <= 3 if c == "*" else run == 1
            can_open = valid and bool(nxt) and not nxt.isspace() and not prev.isalnum()
            can_close = valid and bool(prev) and not prev.isspace() and not nxt.isalnum()
            if can_open or can_close:
                flush()
                items.append(_Delim(c, run, can_open, can_close, len(items)))
            else:
                buf.append(s[i : i + run])
            i += run
        else:
            buf.append(c)
            i += 1
    flush()
    _match_emphasis([d for d in items if isinstance(d, _Delim)])
    return _build_tree(items)


def _match_emphasis(delims: list[_Delim]) -> None:
    """CommonMark-style delimiter matching (nearest opener first); records opens/closes on the runs."""
    openers: dict[str, list[_Delim]] = {"*": [], "_": []}
    for d in delims:
        if d.can_close:
            stack = openers[d.ch]
            while d.count > 0 and stack:
                o = stack[-1]
                k = 2 if d.ch == "*" and o.count >= 2 and d.count >= 2 else 1
                kind = "b" if k == 2 else "i"
                o.count -= k
                d.count -= k
                o.opens.append(kind)
                d.closes.append(kind)
                for other in openers.values():  # runs between the pair become literal
                    while other and other[-1].pos > o.pos:
                        other.pop()
                if o.count == 0:
                    stack.pop()
        if d.can_open and d.count > 0:
            openers[d.ch].append(d)


def _build_tree(items: list[Inline | _Delim]) -> list[Inline]:
    root: list[Inline] = []
    frames: list[tuple[str, list[Inline]]] = []

    def add(node: Inline) -> None:
        target = frames[-1][1] if frames else root
        if isinstance(node, Text) and target and isinstance(target[-1], Text):
            target[-1] = Text(target[-1].text + node.text)
        elif not isinstance(node, Text) or node.text:
            target.append(node)

    for item in items:
        if not isinstance(item, _Delim):
            add(item)
            continue
        for kind in item.closes:
            if not frames or frames[-1][0] != kind:  # cannot happen with nested matching; stay literal
                add(Text(item.ch * (2 if kind == "b" else 1)))
                continue
            _, children = frames.pop()
            add(Bold(children) if kind == "b" else Italic(children))
        add(Text(item.ch * item.count))
        for kind in reversed(item.opens):
            frames.append((kind, []))
    while frames:  # unreachable with matched pairs; keep the text
        kind, children = frames.pop()
        add(Text("*" * (2 if kind == "b" else 1)))
        for child in children:
            add(child)
    return root


# ---------------------------------------------------------------------------------------------------------------
# Telegram HTML


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _esc_attr(s: str) -> str:
    return _esc(s).replace('"', "&quot;")


def _html_inline(nodes: Iterable[Inline], ctx: frozenset[str] = frozenset()) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, Text):
            out.append(_esc(node.text))
        elif isinstance(node, Code):
            if "a" in ctx:  # Telegram: links and code cannot contain each other
                out.append(_esc(node.text))
            elif node.text:
                out.append(f"<code>{_esc(node.text)}</code>")
        elif isinstance(node, Link):
            inner = _html_inline(node.children, ctx | {"a"})
            if inner:
                out.append(f'<a href="{_esc_attr(node.url)}">{inner}</a>')
        else:
            tag = "b" if isinstance(node, Bold) else "i"
            inner = _html_inline(node.children, ctx | {tag})
            out.append(inner if tag in ctx or not inner else f"<{tag}>{inner}</{tag}>")
    return "".join(out)


def _html_line(line: Line) -> str:
    if line.kind == "heading":
        inner = _html_inline(line.inlines, frozenset({"b"}))
        return f"<b>{inner}</b>" if inner else ""
    bullet = "• " if line.kind == "bullet" else ""
    return line.indent + bullet + _html_inline(line.inlines)


def to_telegram_html(md: str) -> str:
    """Render the Markdown subset as Telegram Bot API HTML (parse_mode="HTML"); always balanced."""
    out: list[str] = []
    for block in parse(md):
        if isinstance(block, Fence):
            code = _esc(block.code)
            if block.lang:
                out.append(f'<pre><code class="language-{_esc_attr(block.lang)}">{code}</code></pre>')
            else:
                out.append(f"<pre>{code}</pre>")
        elif isinstance(block, Quote):
            inner = "\n".join(_html_line(line) for line in block.lines)
            out.append(f"<blockquote>{inner}</blockquote>" if inner.strip() else inner)
        else:
            out.append(_html_line(block))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------------
# Discord Markdown

_ZWSP = "\u200b"
_MENTION = re.compile(r"@(everyone|here)")
_DISCORD_BLOCK_START = re.compile(r"^(?:#{1,6}[ \t]|-#|[-*+][ \t]|>)")


def _defuse_mentions(s: str) -> str:
    return _MENTION.sub(lambda m: "@" + _ZWSP + m.group(1), s)


def _discord_text(s: str, in_link: bool) -> str:
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


def _discord_inline(nodes: Iterable[Inline], ctx: frozenset[str] = frozenset()) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, Text):
            out.append(_discord_text(node.text, "a" in ctx))
        elif isinstance(node, Code):
            if not node.text:
                continue
            if "`" not in node.text:
                out.append(f"`{node.text}`")
            else:
                out.append(f"`` {node.text.replace('``', '`' + _ZWSP + '`')} ``")
        elif isinstance(node, Link):
            inner = _discord_inline(node.children, ctx | {"a"})
            if inner:
                out.append(f"[{inner}]({node.url})")
        else:
            tag, mark = ("b", "**") if isinstance(node, Bold) else ("i", "*")
            inner = _discord_inline(node.children, ctx | {tag})
            out.append(inner if tag in ctx or not inner else f"{mark}{inner}{mark}")
    return "".join(out)


def _discord_line(line: Line) -> str:
    if line.kind == "heading":
        inner = _discord_inline(line.inlines, frozenset({"b"}))
        return f"**{inner}**" if inner else ""
    if line.kind == "bullet":
        return line.indent + "• " + _discord_inline(line.inlines)
    inner = _discord_inline(line.inlines)
    stripped = inner.lstrip(" \t")
    if _DISCORD_BLOCK_START.match(stripped):  # literal text that Discord would read as block markup
        inner = inner[: len(inner) - len(stripped)] + "\\" + stripped
    return inner


def to_discord(md: str) -> str:
    """Render the Markdown subset as Discord Markdown: headings bold, stray markers escaped, no mass mentions."""
    out: list[str] = []
    for block in parse(md):
        if isinstance(block, Fence):
            code = block.code.replace("```", "`" + _ZWSP + "``")
            out.append(f"```{block.lang}\n{code}\n```")
        elif isinstance(block, Quote):
            out.extend(("> " + _discord_line(line)).rstrip() for line in block.lines)
        else:
            out.append(_discord_line(block))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------------
# Plain text


def _plain_inline(nodes: Iterable[Inline]) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, Text | Code):
            out.append(node.text)
        elif isinstance(node, Link):
            inner = _plain_inline(node.children)
            out.append(inner if inner == node.url else f"{inner} ({node.url})")
        else:
            out.append(_plain_inline(node.children))
    return "".join(out)


def _plain_line(line: Line) -> str:
    bullet = "• " if line.kind == "bullet" else ""
    return line.indent + bullet + _plain_inline(line.inlines)


def to_plain(md: str) -> str:
    """Render the Markdown subset as plain text, markers removed (console, notification previews)."""
    out: list[str] = []
    for block in parse(md):
        if isinstance(block, Fence):
            out.append(block.code)
        elif isinstance(block, Quote):
            out.extend(("│ " + _plain_line(line)).rstrip() for line in block.lines)
        else:
            out.append(_plain_line(block))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------------
# Splitting

_HTML_ATOM = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s[^<>]*)?)>|&(?:#\d+|#[xX][0-9a-fA-F]+|[a-zA-Z]+);")
_MD_FENCE_OPEN = re.compile(r"^(`{3,})([^`\s]*)[^`]*\n$")
_MD_FENCE_CLOSE = re.compile(r"^`{3,}[ \t]*$")


def utf16_len(s: str) -> int:
    """Length in UTF-16 code units (how Telegram counts); never less than len(s)."""
    return len(s) + sum(1 for c in s if ord(c) > 0xFFFF)


@dataclass(frozen=True)
class _Atom:
    text: str
    kind: Literal["text", "open", "close"] = "text"
    name: str = ""  # tag name (html) or fence language (markdown)


def _html_atoms(text: str) -> list[_Atom]:
    atoms: list[_Atom] = []
    pos = 0
    for m in _HTML_ATOM.finditer(text):
        atoms.extend(_Atom(c) for c in text[pos : m.start()])
        if m.group(2) is None:
            atoms.append(_Atom(m.group(0)))
        else:
            atoms.append(_Atom(m.group(0), "close" if m.group(1) else "open", m.group(2).lower()))
        pos = m.end()
    atoms.extend(_Atom(c) for c in text[pos:])
    return atoms


def _markdown_atoms(text: str) -> list[_Atom]:
    atoms: list[_Atom] = []
    in_fence = False
    for line in text.splitlines(keepends=True):
        body = line[:-1] if line.endswith("\n") else line
        if not in_fence and (m := _MD_FENCE_OPEN.match(line)):
            atoms.append(_Atom(line, "open", m.group(2)))
            in_fence = True
            continue
        if in_fence and _MD_FENCE_CLOSE.match(body):
            atoms.append(_Atom(body, "close"))
            atoms.extend(_Atom(c) for c in line[len(body) :])
            in_fence = False
            continue
        atoms.extend(_Atom(c) for c in line)
    return atoms


class _State:
    """What is open at a point of the text: HTML tags (outermost first) or a Markdown fence."""

    def __init__(self, markup: Markup, stack: list[_Atom] | None = None) -> None:
        self.markup = markup
        self.stack: list[_Atom] = list(stack or [])

    def copy(self) -> _State:
        return _State(self.markup, self.stack)

    def feed(self, atom: _Atom) -> None:
        if atom.kind == "open":
            if self.markup == "markdown":
                self.stack = [atom]
            else:
                self.stack.append(atom)
        elif atom.kind == "close":
            if self.markup == "markdown":
                self.stack = []
            elif any(a.name == atom.name for a in self.stack):
                while self.stack.pop().name != atom.name:
                    pass

    def prefix(self) -> str:
        if self.markup == "markdown":
            return f"```{self.stack[0].name}\n" if self.stack else ""
        return "".join(a.text for a in self.stack)

    def suffix(self, ends_with_newline: bool) -> str:
        if self.markup == "markdown":
            return ("```" if ends_with_newline else "\n```") if self.stack else ""
        return "".join(f"</{a.name}>" for a in reversed(self.stack))


@dataclass(frozen=True)
class Chunk:
    """One chunk of a split: text[start:end] with the markup to reopen before it and to close after it."""

    start: int
    end: int
    prefix: str = ""
    suffix: str = ""

    def render(self, text: str) -> str:
        """The chunk's message text."""
        return self.prefix + text[self.start : self.end] + self.suffix


def plan_split(
    text: str, limit: int, markup: Markup = "html", measure: Callable[[str], int] = utf16_len
) -> list[Chunk]:
    """Where `split_message` cuts `text`; the slices concatenate back to `text` exactly."""
    if markup not in ("html", "markdown", "plain"):
        raise ValueError(f"unknown markup {markup!r}")
    if measure is utf16_len and utf16_len(text) <= limit:
        return [Chunk(0, len(text))] if text else []  # most replies fit: one measure, not a plan per character
    if markup == "html":
        atoms = _html_atoms(text)
    elif markup == "markdown":
        atoms = _markdown_atoms(text)
    else:
        atoms = [_Atom(c) for c in text]
    sizes = [measure(a.text) for a in atoms]
    offsets = [0]
    for a in atoms:
        offsets.append(offsets[-1] + len(a.text))

    chunks: list[Chunk] = []
    state = _State(markup)
    p = 0
    while p < len(atoms):
        prefix = state.prefix()
        head = measure(prefix)
        run = state.copy()
        used: dict[int, int] = {}  # cut -> size of the chunk with its closing markup, for the cuts that fit
        best: dict[str, int] = {}  # break kind -> last cut of that kind that fits
        raw = 0
        q = p
        # The closing markup changes only at a tag or fence: its two sizes (after a newline or not) are measured
        # there, not at every character, which kept long texts at a suffix build per character.
        closing = (measure(run.suffix(False)), measure(run.suffix(True)))
        while q < len(atoms) and head + raw + sizes[q] <= limit:
            raw += sizes[q]
            atom = atoms[q]
            run.feed(atom)
            q += 1
            if atom.kind != "text":
                closing = (measure(run.suffix(False)), measure(run.suffix(True)))
            size = head + raw + closing[atom.text.endswith("\n")]
            if size > limit:
                continue
            used[q] = size
            best["any"] = q
            last = atoms[q - 1].text
            if last == "\n":
                best["line"] = q
                if q - 2 >= p and atoms[q - 2].text == "\n":
                    best["para"] = q
            elif last in (" ", "\t"):
                best["space"] = q
        if q == len(atoms):
            cut = q  # the rest fits; what the source leaves open stays open
        elif not best:
            raise ValueError(f"limit {limit} is too small for the markup open at offset {offsets[p]}")
        else:
            cut = _choose_cut(atoms, p, best, used, limit)
        end_state = state.copy()
        for a in atoms[p:cut]:
            end_state.feed(a)
        suffix = end_state.suffix(atoms[cut - 1].text.endswith("\n")) if cut < len(atoms) else ""
        chunks.append(Chunk(offsets[p], offsets[cut], prefix, suffix))
        state, p = end_state, cut
    return chunks


def _choose_cut(atoms: list[_Atom], p: int, best: dict[str, int], used: dict[int, int], limit: int) -> int:
    cut = None
    for kind in ("para", "line", "space"):  # a break in the second half of the window first
        if kind in best and 2 * used[best[kind]] >= limit:
            cut = best[kind]
            break
    else:
        for kind in ("para", "line", "space"):
            if kind in best:
                cut = best[kind]
                break
    if cut is None:  # hard cut: do not leave an opening tag or fence dangling at the end
        cut = best["any"]
        while cut - 1 > p and atoms[cut - 1].kind == "open" and cut - 1 in used:
            cut -= 1
    while cut < len(atoms) and atoms[cut].kind == "close" and cut + 1 in used:
        cut += 1  # take the closing tags along rather than reopening an empty element
    return cut


def split_message(text: str, limit: int, markup: Markup = "html") -> list[str]:
    """Split rendered text into chunks of at most `limit` UTF-16 units, closing and reopening markup at cuts."""
    return [c.render(text) for c in plan_split(text, limit, markup)]


_TAG = re.compile(r"<[^<>]*>")


def _visible(chunk: str, markup: Markup) -> str:
    if markup == "html":
        chunk = _TAG.sub("", chunk)
    return chunk.strip()


def render_for(platform: str, md: str) -> list[str]:
    """Render and split for a platform: "telegram" (HTML ≤4096), "discord" (≤2000) or "console" (one chunk)."""
    if platform == "telegram":
        markup: Markup = "html"
        chunks = split_message(to_telegram_html(md), TELEGRAM_LIMIT, "html")
    elif platform == "discord":
        markup = "markdown"
        chunks = split_message(to_discord(md), DISCORD_LIMIT, "markdown")
    elif platform == "console":
        return [to_plain(md)]
    else:
        raise ValueError(f"unknown platform {platform!r}")
    return [c for c in chunks if _visible(c, markup)]  # the platforms refuse blank messages
