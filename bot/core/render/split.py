"""Splitting of rendered text into messages the platforms accept, counted in UTF-16 code units.

Telegram counts UTF-16 code units (never less than ``len``). Cuts prefer a paragraph break, then a line break, then
a space (each in the second half of the window first), then anywhere, but never inside an HTML tag or entity. The
break's whitespace ends the chunk, so the slices concatenate back to the text exactly. With ``markup="html"`` tags
open at a cut are closed at the end of the chunk and reopened (with their attributes) at the start of the next;
with ``markup="markdown"`` (Discord) a code fence open at a cut is closed and reopened with its language. A limit
too small to hold the open markup raises ValueError (never with the renderers' output and the platform limits).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from typing import Literal

Markup = Literal["html", "markdown", "plain"]

_HTML_ATOM = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s[^<>]*)?)>|&(?:#\d+|#[xX][0-9a-fA-F]+|[a-zA-Z]+);")
_MD_FENCE_OPEN = re.compile(r"^(`{3,})([^`\s]*)[^`]*\n$")
_MD_FENCE_CLOSE = re.compile(r"^`{3,}[ \t]*$")


def utf16_len(s: str) -> int:
    """Length in UTF-16 code units (how Telegram counts); never less than len(s)."""
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


@dataclass(frozen=True)
class _Atom:
    text: str
    kind: Literal["text", "open", "close"] = "text"
    name: str = ""  # tag name (html) or fence language (markdown)


def _chars(s: str, cache: dict[str, _Atom]) -> list[_Atom]:
    """One atom per character, each distinct character's atom made once (they are frozen)."""
    out: list[_Atom] = []
    for c in s:
        atom = cache.get(c)
        if atom is None:
            atom = cache[c] = _Atom(c)
        out.append(atom)
    return out


def _html_atoms(text: str) -> list[_Atom]:
    atoms: list[_Atom] = []
    cache: dict[str, _Atom] = {}
    pos = 0
    for m in _HTML_ATOM.finditer(text):
        atoms.extend(_chars(text[pos : m.start()], cache))
        if m.group(2) is None:
            atoms.append(_Atom(m.group(0)))
        else:
            atoms.append(_Atom(m.group(0), "close" if m.group(1) else "open", m.group(2).lower()))
        pos = m.end()
    atoms.extend(_chars(text[pos:], cache))
    return atoms


def _markdown_atoms(text: str) -> list[_Atom]:
    atoms: list[_Atom] = []
    cache: dict[str, _Atom] = {}
    in_fence = False
    for line in text.splitlines(keepends=True):
        body = line[:-1] if line.endswith("\n") else line
        if not in_fence and (m := _MD_FENCE_OPEN.match(line)):
            atoms.append(_Atom(line, "open", m.group(2)))
            in_fence = True
            continue
        if in_fence and _MD_FENCE_CLOSE.match(body):
            atoms.append(_Atom(body, "close"))
            atoms.extend(_chars(line[len(body) :], cache))
            in_fence = False
            continue
        atoms.extend(_chars(line, cache))
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
        atoms = _chars(text, {})
    texts = [a.text for a in atoms]
    if measure is utf16_len:  # a character below U+10000 is one unit: measured without a call
        sizes = [1 if len(t) == 1 and t <= "\uffff" else utf16_len(t) for t in texts]
    else:
        sizes = [measure(t) for t in texts]
    offsets = list(accumulate((len(t) for t in texts), initial=0))
    marks = [k for k, a in enumerate(atoms) if a.kind != "text"]  # tags and fences: where the state changes
    n = len(atoms)

    chunks: list[Chunk] = []
    state = _State(markup)
    p = 0
    while p < n:
        prefix = state.prefix()
        head = measure(prefix)
        run = state.copy()
        used: dict[int, int] = {}  # cut -> size of the chunk with its closing markup, for the cuts that fit
        last_any = last_line = last_para = last_space = -1  # last cut of each break kind that fits
        raw, q, room = 0, p, limit - head
        # The closing markup changes only at a tag or fence: its two sizes (after a newline or not) are measured
        # there, not at every character, which kept long texts at a suffix build per character.
        closing = (measure(run.suffix(False)), measure(run.suffix(True)))
        while q < n and raw + sizes[q] <= room:
            raw += sizes[q]
            t = texts[q]
            if atoms[q].kind != "text":
                run.feed(atoms[q])
                closing = (measure(run.suffix(False)), measure(run.suffix(True)))
            q += 1
            size = head + raw + closing[t[-1] == "\n"]
            if size > limit:
                continue
            used[q] = size
            last_any = q
            if t == "\n":
                last_line = q
                if q - 2 >= p and texts[q - 2] == "\n":
                    last_para = q
            elif t == " " or t == "\t":
                last_space = q
        best = {
            kind: cut
            for kind, cut in (("any", last_any), ("line", last_line), ("para", last_para), ("space", last_space))
            if cut >= 0
        }
        if q == n:
            cut = q  # the rest fits; what the source leaves open stays open
        elif not best:
            raise ValueError(f"limit {limit} is too small for the markup open at offset {offsets[p]}")
        else:
            cut = _choose_cut(atoms, p, best, used, limit)
        end_state = state.copy()
        for k in marks[bisect_left(marks, p) : bisect_left(marks, cut)]:
            end_state.feed(atoms[k])
        suffix = end_state.suffix(texts[cut - 1][-1] == "\n") if cut < n else ""
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
