"""Formatted text as Telegram stores it: HTML and MarkdownV2 parsed to plain text and entities (UTF-16 offsets)."""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.telegram_api.protocol import ApiError, bad

_BOT_COMMAND_RE = re.compile(r"^/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")


def u16(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def check_parse_mode(value: Any) -> str | None:
    """The parse_mode as sent (None for plain text); 400 for a mode Telegram does not know."""
    if value is None or value == "":
        return None
    mode = str(value)
    if mode.lower() not in {"html", "markdownv2", "markdown"}:
        raise bad(f"unsupported parse_mode {mode!r}")
    return mode


def render(text: str, parse_mode: str | None, entities: Any) -> tuple[str, list[dict[str, Any]]]:
    """Plain text and entities as Telegram would store them."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        return _parse_html(text)
    if mode == "markdownv2":
        return _parse_markdown_v2(text)
    return text, list(entities) if isinstance(entities, list) else []


def user_entities(text: str, bot_username: str) -> list[dict[str, Any]]:
    """The entities Telegram adds to a user's plain text: a leading /command and mentions of the bot."""
    entities: list[dict[str, Any]] = []
    command_end = 0
    if (m := _BOT_COMMAND_RE.match(text)) is not None:
        entities.append({"type": "bot_command", "offset": 0, "length": u16(m.group(0))})
        command_end = m.end()
    mention = "@" + bot_username
    for m in re.finditer(re.escape(mention) + r"(?![A-Za-z0-9_])", text, flags=re.IGNORECASE):
        if m.start() >= command_end:
            entities.append({"type": "mention", "offset": u16(text[: m.start()]), "length": u16(mention)})
    return entities


class _Builder:
    """Collects plain text and entities with UTF-16 offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.entities: list[dict[str, Any]] = []

    def emit(self, s: str) -> None:
        self.parts.append(s)
        self.pos += u16(s)

    def close(self, kind: str, start: int, extra: dict[str, Any] | None = None) -> None:
        if self.pos > start:
            self.entities.append({"type": kind, "offset": start, "length": self.pos - start, **(extra or {})})

    def result(self) -> tuple[str, list[dict[str, Any]]]:
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), self.entities


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
}
_HTML_ENTITY_RE = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8}));")
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_NAME_RE = re.compile(r"[A-Za-z0-9-]*")
_ATTR_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")


def _entity_error(message: str) -> ApiError:
    return bad(f"can't parse entities: {message}")


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _html_unescape(value: str) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(1):
            return _HTML_NAMED[m.group(1)]
        code = int(m.group(2)) if m.group(2) else int(m.group(3), 16)
        return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else m.group(0)

    return _HTML_ENTITY_RE.sub(one, value)


def _parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    out = _Builder()
    stack: list[tuple[str, int, dict[str, Any]]] = []  # (tag, start, entity extras)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "&":
            m = _HTML_ENTITY_RE.match(text, i)
            decoded = _html_unescape(m.group(0)) if m else None
            if m is None or decoded == m.group(0):
                raise _entity_error(f'unescaped "&" at byte offset {_byte_offset(text, i)}; write it as "&amp;"')
            assert decoded is not None
            out.emit(decoded)
            i = m.end()
            continue
        if c != "<":
            j = i
            while j < n and text[j] not in "<&":
                j += 1
            out.emit(text[i:j])
            i = j
            continue
        offset = _byte_offset(text, i)
        if text.startswith("</", i):
            end = text.find(">", i)
            if end == -1:
                raise _entity_error(f"Unclosed end tag at byte offset {offset}")
            name = text[i + 2 : end].strip().lower()
            if not stack:
                raise _entity_error(f"Unexpected end tag at byte offset {offset}")
            tag, start, closed = stack.pop()
            if name != tag:
                raise _entity_error(
                    f'Unmatched end tag at byte offset {offset}, expected "</{tag}>", found "</{name}>"'
                )
            kind = _HTML_TAGS[tag]
            if tag == "a" and not closed.get("url"):
                kind = ""
            if kind:
                out.close(kind, start, closed)
            i = end + 1
            continue
        name_m = _TAG_NAME_RE.match(text, i + 1)
        assert name_m is not None
        name = name_m.group(0).lower()
        if name not in _HTML_TAGS:
            raise _entity_error(f'Unsupported start tag "{name}" at byte offset {offset}')
        attrs, i = _html_attributes(text, name_m.end(), name, offset)
        extra: dict[str, Any] = {}
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise _entity_error(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
        if name == "a":
            extra["url"] = attrs.get("href", "")
        if name == "code" and stack and stack[-1][0] == "pre":
            language = attrs.get("class", "")
            if language.startswith("language-"):
                stack[-1][2]["language"] = language.removeprefix("language-")
        stack.append((name, out.pos, extra))
    if stack:
        raise _entity_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.result()


def _html_attributes(text: str, i: int, tag: str, offset: int) -> tuple[dict[str, str], int]:
    """Parse the attributes of a start tag from just after its name; returns them and the index after '>'."""
    attrs: dict[str, str] = {}
    n = len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            raise _entity_error(f"Unclosed start tag at byte offset {offset}")
        if text[i] == ">":
            return attrs, i + 1
        name_m = _ATTR_NAME_RE.match(text, i)
        if name_m is None:
            raise _entity_error(f'Empty attribute name in the tag "{tag}" at byte offset {offset}')
        attr = name_m.group(0).lower()
        i = name_m.end()
        while i < n and text[i].isspace():
            i += 1
        value = ""
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i].isspace():
                i += 1
            if i >= n:
                raise _entity_error(f"Unclosed start tag at byte offset {offset}")
            if text[i] in "'\"":
                end = text.find(text[i], i + 1)
                if end == -1:
                    raise _entity_error(f"Unclosed start tag at byte offset {offset}")
                value, i = text[i + 1 : end], end + 1
            else:
                start = i
                while i < n and not text[i].isspace() and text[i] != ">":
                    i += 1
                value = text[start:i]
            value = _html_unescape(value)
        attrs[attr] = value


_MD_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MD_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
}


def _parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Best-effort MarkdownV2: Telegram's reserved-character and unclosed-entity errors, and the plain text."""
    out = _Builder()
    stack: list[tuple[str, int, int, dict[str, Any]]] = []  # (kind, start, byte offset of the marker, extras)
    quote_start: int | None = None
    i, n = 0, len(text)

    def toggle(kind: str) -> None:
        if stack and stack[-1][0] == kind:
            closed = stack.pop()
            out.close(kind, closed[1], closed[3])
        else:
            stack.append((kind, out.pos, _byte_offset(text, i), {}))

    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
            out.emit(text[i + 1])
            i += 2
            continue
        top = stack[-1][0] if stack else None
        if top in ("code", "pre"):
            if top == "pre" and text.startswith("```", i):
                closed = stack.pop()
                out.close("pre", closed[1], closed[3])
                i += 3
            elif top == "code" and c == "`":
                closed = stack.pop()
                out.close("code", closed[1], closed[3])
                i += 1
            else:
                out.emit(c)
                i += 1
            continue
        if c == "\n":
            if quote_start is not None and not text.startswith(">", i + 1):
                out.close("blockquote", quote_start)
                quote_start = None
            out.emit(c)
            i += 1
            continue
        if c not in _MD_RESERVED:
            out.emit(c)
            i += 1
            continue
        if c == ">" and (i == 0 or text[i - 1] == "\n"):
            if quote_start is None:
                quote_start = out.pos
            i += 1
            continue
        if c == "`":
            if text.startswith("```", i):
                pre: dict[str, Any] = {}
                j = i + 3
                newline = text.find("\n", j)
                if newline != -1 and text[j:newline] and not any(ch.isspace() for ch in text[j:newline]):
                    pre["language"] = text[j:newline]
                    j = newline + 1
                stack.append(("pre", out.pos, _byte_offset(text, i), pre))
                i = j
            else:
                stack.append(("code", out.pos, _byte_offset(text, i), {}))
                i += 1
            continue
        if c == "*":
            toggle("bold")
            i += 1
        elif c == "~":
            toggle("strikethrough")
            i += 1
        elif c == "_":
            if top == "italic" or not text.startswith("__", i):
                toggle("italic")
                i += 1
            else:
                toggle("underline")
                i += 2
        elif c == "|" and text.startswith("||", i):
            toggle("spoiler")
            i += 2
        elif c == "[":
            stack.append(("text_link", out.pos, _byte_offset(text, i), {}))
            i += 1
        elif c == "]" and top == "text_link":
            closed = stack.pop()
            i += 1
            if i < n and text[i] == "(":
                url, i = _markdown_url(text, i + 1)
                if url:
                    out.close("text_link", closed[1], {"url": url})
        else:
            raise _entity_error(f"Character '{c}' is reserved and must be escaped with the preceding '\\'")
    if stack:
        kind, _, offset, _ = stack[-1]
        raise _entity_error(f"Can't find end of {_MD_NAMES[kind]} entity at byte offset {offset}")
    if quote_start is not None:
        out.close("blockquote", quote_start)
    return out.result()


def _markdown_url(text: str, i: int) -> tuple[str, int]:
    start, url = i, []
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            url.append(text[i + 1])
            i += 2
            continue
        if text[i] == ")":
            return "".join(url), i + 1
        url.append(text[i])
        i += 1
    raise _entity_error(f"Can't find end of a URL at byte offset {_byte_offset(text, start)}")
