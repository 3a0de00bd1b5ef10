"""markdown-it tokens of the bot's Markdown subset, turned into the lines, quotes and fences the renderers walk.

The output keeps the message's lines: every blank line of the input is an empty line, a paragraph's line breaks
stay "\\n" in its text, a heading is one line, a list item is a line with its marker as `lead` ("• " for
``-``/``*``, "1. " for a numbered item, two spaces of indent per nesting level), and consecutive ``>`` lines are
one quote (a nested quote's lines keep a literal "> "). A fence inside a quote stays literal text, since a code
block is not a quote line on every platform.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.common.utils import mdTrim
from markdown_it.rules_inline import backtick, escape, newline
from markdown_it.token import Token

from bot.core.render import rules
from bot.core.render.nodes import Block, Bold, Code, Fence, Inline, Italic, Line, LineKind, Link, Quote, Text


def _parser() -> MarkdownIt:
    """CommonMark's blocks and inlines that the subset uses, with the subset's own rules in markdown-it's chains."""
    md = MarkdownIt("zero", {"maxNesting": 20})
    # Each inline rule fires on its own first character, so their order is free: the frequent markers first.
    md.inline.ruler.push("subset_emphasis", rules.emphasis)
    md.inline.ruler.push("subset_backticks", backtick)
    md.inline.ruler.push("subset_newline", newline)
    md.inline.ruler.push("subset_link", rules.link)
    md.inline.ruler.push("subset_escape", escape)
    md.inline.ruler2.enable("emphasis")
    # text_join and fragments_join only merge adjacent text tokens, which _inlines does while it walks them;
    # normalize would rewrite NUL characters, which the renderers keep as they were written; the inline pass
    # runs per paragraph from _Blocks, so that one without inline markers skips it.
    md.disable(["normalize", "text_join", "fragments_join", "inline"])
    # One rule for the quote, fence, heading and list rules (the paragraph's terminators too), by first character;
    # the list chain's terminators and the quote's end come after the paragraph rule, so they only terminate.
    md.block.ruler.before("paragraph", "subset_blocks", rules.blocks, {"alt": ["paragraph", "reference", "blockquote"]})
    md.block.ruler.push("list_terminators", rules.list_terminators, {"alt": ["list"]})
    md.block.ruler.push("no_lazy_quote", rules.no_lazy_quote, {"alt": ["blockquote"]})
    md.inline.terminator_re = rules.TERMINATORS
    return md


# Built once: the rule chains are configuration, and parsing keeps its state in per-call objects.
_MD = _parser()


# A line that may open a block other than a paragraph (a superset: a false hit only costs the block pass), and
# the characters at which an inline rule may fire.
_BLOCK_START = re.compile(r"^[ \t]*(?:[>#`~]|[-*+](?:[ \t]|$)|\d{1,9}[.)](?:[ \t]|$))", re.MULTILINE)
_INLINE_MARK = re.compile(r"[\\`*_\[\]]")


def parse(md: str) -> list[Block]:
    """Parse the Markdown subset into blocks, one output line per input line (fence markers aside)."""
    return _parse(md, fast=True)


def _parse(md: str, fast: bool) -> list[Block]:
    """`parse`; with `fast` False, markdown-it's block and inline passes run even where they have nothing to do."""
    src = md.replace("\r\n", "\n").replace("\r", "\n")
    lines = src.split("\n")
    if fast and _BLOCK_START.search(src) is None:
        return _paragraphs(lines)
    blocks = _Blocks(lines, fast)
    blocks.walk(_MD.parse(src))
    blocks.gap_to(len(lines))
    return blocks.out


def _paragraphs(lines: list[str]) -> list[Block]:
    """Blocks of a message whose lines open no block: markdown-it's paragraph rule, without its per-line rules."""
    out: list[Block] = []
    k, n = 0, len(lines)
    while k < n:
        if not lines[k].strip(" \t"):  # markdown-it's blank line: spaces and tabs only
            out.append(Line([]))
            k += 1
            continue
        j = k + 1
        while j < n and lines[j].strip(" \t"):
            j += 1
        out.append(Line(_inline(mdTrim("\n".join(lines[k:j])), True)))
        k = j
    return out


def _inline(content: str, fast: bool) -> list[Inline]:
    """The inline nodes of a paragraph's or heading's content."""
    if fast and _INLINE_MARK.search(content) is None:
        # Text and line breaks only: what markdown-it's newline rule leaves of them (the spaces around a break).
        parts = content.split("\n")
        for k in range(len(parts)):
            part = parts[k].lstrip(" \t") if k else parts[k]
            if k < len(parts) - 1 and part.endswith(" "):
                part = part.rstrip(" ") if part.endswith("  ") else part[:-1]
            parts[k] = part
        text = "\n".join(parts)
        return [Text(text)] if text else []
    tokens: list[Token] = []
    _MD.inline.parse(content, _MD, {}, tokens)
    return _inlines(tokens)


def _add_text(target: list[Inline], text: str) -> None:
    if not text:
        return
    last = target[-1] if target else None
    if type(last) is Text:
        last.text += text
    else:
        target.append(Text(text))


def _inlines(children: Sequence[Token]) -> list[Inline]:
    """Inline nodes from markdown-it's inline tokens."""
    root: list[Inline] = []
    stack = [root]
    for token in children:
        kind, target = token.type, stack[-1]
        if kind == "text" or kind == "text_special":
            _add_text(target, token.content)
        elif kind == "softbreak" or kind == "hardbreak":
            _add_text(target, "\n")
        elif kind == "code_inline":
            target.append(Code(token.content))
        elif kind == "strong_open" or kind == "em_open" or kind == "link_open":
            node: Bold | Italic | Link
            if kind == "strong_open":
                node = Bold([])
            elif kind == "em_open":
                node = Italic([])
            else:
                node = Link([], str(token.attrs["href"]))
            target.append(node)
            stack.append(node.children)
        elif kind == "strong_close" or kind == "em_close" or kind == "link_close":
            stack.pop()
    return root


class _Blocks:
    """Walks the block tokens, keeping the input's line structure."""

    def __init__(self, lines: list[str], fast: bool) -> None:
        self.lines = lines
        self.fast = fast
        self.out: list[Block] = []
        self.quote: list[Line] | None = None
        self.quote_depth = 0
        self.lists = 0
        self.items: list[int] = []  # start line of each open list item
        self.quote_ends: list[int] = []  # end line of each open quote
        self.lead: tuple[str, bool] | None = None  # marker of a list item whose first line is not out yet
        self.cursor = 0  # the first input line not accounted for

    def add(self, line: Line) -> None:
        (self.quote if self.quote is not None else self.out).append(line)

    def gap_to(self, line_no: int) -> None:
        """Blank lines up to `line_no`: the input's blank lines (or empty quote lines) between blocks."""
        lead = ("> " * max(0, self.quote_depth - 1)).rstrip()
        for _ in range(line_no - self.cursor):
            self.add(Line([], lead=lead))
        self.cursor = max(self.cursor, line_no)

    def line(self, inlines: list[Inline], heading: bool = False) -> Line:
        """A line with the lead its position asks for: list marker, continuation indent, nested quote marks."""
        lead = "> " * max(0, self.quote_depth - 1)
        if self.lead is not None:
            marker, bullet = self.lead
            self.lead = None
            kind: LineKind = "heading" if heading else "bullet" if bullet else "text"
            return Line(inlines, kind, lead + marker)
        return Line(inlines, "heading" if heading else "text", lead + "  " * self.lists)

    def flush_lead(self) -> None:
        """An item marker with nothing on its line (an empty item, or one opening with a quote or fence)."""
        if self.lead is not None:
            self.add(self.line([]))

    def walk(self, tokens: list[Token]) -> None:
        """Turn the token stream into blocks."""
        i, n = 0, len(tokens)
        while i < n:
            token = tokens[i]
            kind = token.type
            if kind == "paragraph_open" or kind == "heading_open":
                start, end = token.map or (self.cursor, self.cursor + 1)
                self.gap_to(start)
                self.add(self.line(_inline(tokens[i + 1].content, self.fast), kind == "heading_open"))
                self.cursor = end
                i += 3
                continue
            if kind == "fence":
                self.fence(token)
            elif kind == "blockquote_open":
                self.flush_lead()
                if self.quote_depth == 0:
                    self.gap_to(token.map[0] if token.map else self.cursor)
                    self.quote = []
                self.quote_depth += 1
                self.quote_ends.append(token.map[1] if token.map else self.cursor)
            elif kind == "blockquote_close":
                end = self.quote_ends.pop()
                while end > self.cursor and not self.lines[end - 1].strip(" \t"):
                    end -= 1  # markdown-it counts a blank line after an empty quote in it
                self.gap_to(end)  # the quote's trailing empty ">" lines
                self.quote_depth -= 1
                if self.quote_depth == 0 and self.quote is not None:
                    self.out.append(Quote(self.quote))
                    self.quote = None
            elif kind == "bullet_list_open" or kind == "ordered_list_open":
                self.lists += 1
            elif kind == "bullet_list_close" or kind == "ordered_list_close":
                self.lists -= 1
            elif kind == "list_item_open":
                self.item_open(token)
            elif kind == "list_item_close":
                start = self.items.pop()
                if self.lead is not None:
                    self.gap_to(start)
                    self.flush_lead()
                    self.cursor = max(self.cursor, start + 1)
            i += 1

    def item_open(self, token: Token) -> None:
        bullet = token.markup in ("-", "*")
        marker = "• " if bullet else f"{token.info}{token.markup} "
        self.items.append(token.map[0] if token.map else self.cursor)
        if self.lead is not None:  # "- - x": the inner item's marker joins the outer one on its line
            self.lead = (self.lead[0] + marker, self.lead[1] or bullet)
        else:
            self.lead = ("  " * (self.lists - 1) + marker, bullet)

    def fence(self, token: Token) -> None:
        start, end = token.map or (self.cursor, self.cursor + 1)
        self.gap_to(start)
        self.flush_lead()
        code = token.content[:-1] if token.content.endswith("\n") else token.content
        if self.quote is None:
            self.out.append(Fence(code, token.info.strip()))
        else:
            body = code.split("\n") if token.content else []
            lines = [token.markup + token.info, *body]
            if end - start == len(body) + 2:  # closed
                lines.append(token.markup)
            for text in lines:
                self.add(self.line([Text(text)] if text else []))
        self.cursor = end
