"""markdown-it tokens of the bot's Markdown subset, turned into the lines, quotes and fences the renderers walk.

The output keeps the message's lines: every blank line of the input is an empty line, a paragraph's line breaks
stay "\\n" in its text, a heading is one line, a list item is a line with its marker as `lead` ("• " for
``-``/``*``, "1. " for a numbered item, two spaces of indent per nesting level), and consecutive ``>`` lines are
one quote (a nested quote's lines keep a literal "> "). A fence inside a quote stays literal text, since a code
block is not a quote line on every platform.
"""

from __future__ import annotations

from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.rules_block import blockquote, fence, list_block
from markdown_it.token import Token

from bot.core.render import rules
from bot.core.render.nodes import Block, Bold, Code, Fence, Inline, Italic, Line, LineKind, Link, Quote, Text


def _parser() -> MarkdownIt:
    """CommonMark's blocks and inlines that the subset uses, with the subset's own rules in markdown-it's chains."""
    md = MarkdownIt("zero", {"maxNesting": 20})
    md.enable(["blockquote", "fence", "heading", "list", "backticks", "emphasis", "escape", "link", "newline"])
    # text_join and fragments_join only merge adjacent text tokens, which _inlines does while it walks them;
    # normalize would rewrite NUL characters, which the renderers keep as they were written.
    md.disable(["normalize", "text_join", "fragments_join"])
    md.block.ruler.at("fence", rules.fence(fence), {"alt": ["paragraph", "reference", "blockquote", "list"]})
    md.block.ruler.at(
        "blockquote", rules.blockquote(blockquote), {"alt": ["paragraph", "reference", "blockquote", "list"]}
    )
    md.block.ruler.at("list", rules.bullet_list(list_block), {"alt": ["paragraph", "reference", "blockquote"]})
    md.block.ruler.push("no_lazy_quote", rules.no_lazy_quote, {"alt": ["blockquote"]})
    md.inline.ruler.at("emphasis", rules.emphasis)
    md.inline.ruler.at("link", rules.link)
    md.inline.terminator_re = rules.TERMINATORS
    return md


# Built once: the rule chains are configuration, and parsing keeps its state in per-call objects.
_MD = _parser()


def parse(md: str) -> list[Block]:
    """Parse the Markdown subset into blocks, one output line per input line (fence markers aside)."""
    src = md.replace("\r\n", "\n").replace("\r", "\n")
    blocks = _Blocks(src.split("\n"))
    blocks.walk(_MD.parse(src))
    blocks.gap_to(src.count("\n") + 1)
    return blocks.out


def _add_text(target: list[Inline], text: str) -> None:
    if not text:
        return
    last = target[-1] if target else None
    if type(last) is Text:
        last.text += text
    else:
        target.append(Text(text))


def _inlines(children: Sequence[Token] | None) -> list[Inline]:
    """The inline nodes of one paragraph or heading."""
    root: list[Inline] = []
    stack = [root]
    for token in children or ():
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

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
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
                self.add(self.line(_inlines(tokens[i + 1].children), kind == "heading_open"))
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
