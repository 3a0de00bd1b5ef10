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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Markup = Literal["html", "markdown", "plain"]

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
