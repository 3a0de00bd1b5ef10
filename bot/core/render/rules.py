"""The markdown-it rules that narrow CommonMark to the subset the bot writes.

markdown-it does the parsing (blocks, code spans, escapes, delimiter matching); these rules decide what counts:

- emphasis never splits a word: a run of ``*`` (at most three) or a single ``_`` opens only after a
  non-alphanumeric character and before a non-space one, and closes only after a non-space character and before a
  non-alphanumeric one, so ``BTC_USDT_PERP``, ``2 * 3``, ``x**2`` and ``a*b*c`` stay literal; ``__`` is literal;
- a link is ``[text](url)`` with an ``http(s)://``, ``tg://`` or ``mailto:`` URL of at most 2048 characters once
  escaped, no title and no link inside its text;
- a fence's info is one word of at most 32 characters, or the line is text;
- ``+`` does not start a list, nor does a marker that ends its line (``-``, ``1.``);
- a quote ends at the first line without ``>`` (no lazy continuation);
- quotes and lists nest at most ``MAX_LEVEL`` token levels deep: deeper markers stay text, so markdown-it never
  reaches its nesting limit, where it would drop the rest of the message.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from markdown_it.helpers import parseLinkLabel
from markdown_it.rules_block import StateBlock, blockquote, fence, heading, list_block
from markdown_it.rules_inline import StateInline
from markdown_it.rules_inline.state_inline import Delimiter

BlockRule = Callable[[StateBlock, int, int, bool], bool]

MAX_LEVEL = 12  # below markdown-it's maxNesting (20) with room for the paragraph and inline levels
MAX_URL = 2048  # escaped; keeps any open markup far below the platform limits
# The characters at which an inline rule of the subset can fire; the text rule runs over everything else.
TERMINATORS = re.compile(r"[\n\\`*_\[\]]")

_URL = re.compile(r"(?:https?://|tg://|mailto:)\S+", re.IGNORECASE)
_FENCE_INFO = re.compile(r"(?:`{3,}|~{3,})[ \t]*([^ \t]*)[ \t]*")
_LANG = re.compile(r"[\w+#.-]{0,32}")
_BARE_MARKER = re.compile(r"[-*]|\d{1,9}[.)]")


def emphasis(state: StateInline, silent: bool) -> bool:
    """Delimiter runs of ``*`` and ``_`` under the no-intraword rule; markdown-it's balance_pairs matches them."""
    src, start = state.src, state.pos
    marker = src[start]
    if silent or (marker != "*" and marker != "_"):
        return False
    end, stop = start + 1, state.posMax
    while end < stop and src[end] == marker:
        end += 1
    run = end - start
    prev = src[start - 1] if start > 0 else ""
    nxt = src[end] if end < stop else ""
    valid = run <= 3 if marker == "*" else run == 1
    can_open = valid and nxt != "" and not nxt.isspace() and not prev.isalnum()
    can_close = valid and prev != "" and not prev.isspace() and not nxt.isalnum()
    state.pos = end
    if not (can_open or can_close):
        state.append_pending(src[start:end])
        return True
    for _ in range(run):  # one token per marker, as markdown-it's own emphasis rule does
        token = state.push("text", "", 0)
        token.content = marker
        state.delimiters.append(Delimiter(ord(marker), run, len(state.tokens) - 1, -1, can_open, can_close))
    return True


def _url_end(src: str, start: int, stop: int) -> int | None:
    """Index of the ``)`` closing a URL that starts at `start`: parentheses balanced, no whitespace."""
    depth = 0
    for k in range(start, min(stop, start + MAX_URL + 1)):
        c = src[k]
        if c.isspace():
            return None
        if c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                return k
            depth -= 1
    return None


def _escaped_len(url: str) -> int:
    """Length of `url` in an HTML attribute."""
    return len(url) + 4 * url.count("&") + 3 * (url.count("<") + url.count(">")) + 5 * url.count('"')


def link(state: StateInline, silent: bool) -> bool:
    """``[text](url)`` with a URL the platforms open; the text is inline Markdown without links."""
    src, start = state.src, state.pos
    if src[start] != "[" or state.linkLevel > 0:
        return False
    label_end = parseLinkLabel(state, start)
    stop = state.posMax
    if label_end <= start + 1 or label_end + 1 >= stop or src[label_end + 1] != "(":
        return False
    url_end = _url_end(src, label_end + 2, stop)
    if url_end is None:
        return False
    url = src[label_end + 2 : url_end]
    if not _URL.fullmatch(url) or _escaped_len(url) > MAX_URL:
        return False
    if not silent:
        state.pos, state.posMax = start + 1, label_end
        state.push("link_open", "a", 1).attrs = {"href": url}
        state.linkLevel += 1
        state.md.inline.tokenize(state)
        state.linkLevel -= 1
        state.push("link_close", "a", -1)
    state.pos, state.posMax = url_end + 1, stop
    return True


def _line_start(state: StateBlock, line: int) -> int:
    return state.bMarks[line] + state.tShift[line]


def _fence(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    """markdown-it's fence rule for fences whose info is one short word (or none)."""
    pos = _line_start(state, start_line)
    if state.src.startswith(("```", "~~~"), pos):
        info = _FENCE_INFO.fullmatch(state.src, pos, state.eMarks[start_line])
        if info is None or not _LANG.fullmatch(info.group(1)):
            return False
    return fence(state, start_line, end_line, silent)


def _list(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    """markdown-it's list rule without a bare marker ending its line, below `MAX_LEVEL`."""
    pos, end = _line_start(state, start_line), state.eMarks[start_line]
    if state.level >= MAX_LEVEL or _BARE_MARKER.fullmatch(state.src, pos, end):
        return False
    return list_block(state, start_line, end_line, silent)


def _blockquote(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    """markdown-it's blockquote rule below `MAX_LEVEL`."""
    return state.level < MAX_LEVEL and blockquote(state, start_line, end_line, silent)


# The block rules of the subset by the first character of a line (markdown-it's rules check it first too, but
# each in its own call, and every paragraph line asks all of them whether it ends the paragraph). "+" has no rule.
_BY_FIRST: dict[str, BlockRule] = {">": _blockquote, "`": _fence, "~": _fence, "#": heading, "-": _list, "*": _list}
_BY_FIRST.update(dict.fromkeys("0123456789", _list))
# Inside a list, only a fence or a quote ends an item's paragraph early (markdown-it's "list" chain; hr is off).
_LIST_TERMINATORS: dict[str, BlockRule] = {">": _blockquote, "`": _fence, "~": _fence}


def _dispatch(table: dict[str, BlockRule]) -> BlockRule:
    def rule(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
        pos = _line_start(state, start_line)
        found = table.get(state.src[pos : pos + 1])
        return found is not None and found(state, start_line, end_line, silent)

    return rule


blocks = _dispatch(_BY_FIRST)
blocks.__doc__ = "The subset's blocks (quote, fence, heading, list) at a line, as a rule and a paragraph terminator."
list_terminators = _dispatch(_LIST_TERMINATORS)
list_terminators.__doc__ = "As a terminator in a list's chain: a fence or quote ends the item; never a block."


def no_lazy_quote(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    """As a blockquote terminator, ends a quote at any line without ``>``; never matches as a block."""
    return silent
