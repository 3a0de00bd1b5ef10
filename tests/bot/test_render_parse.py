"""The markdown-it parse under the renderers: no span marker lost or added, paragraphs, the subset's rules."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.render import parse, render_for, to_discord, to_plain, to_telegram_html
from bot.core.render.parse import _parse
from tests.bot.test_render import assert_telegram_html, markdownish

# ---------------------------------------------------------------------------------------------------------------
# Messages built from known spans: how many of each the input holds is known without parsing it.

# (source, what it reads as): literal text full of would-be markers, which must stay text.
_WORDS = [
    ("BTC_USDT_PERP", "BTC_USDT_PERP"),
    ("2 * 3", "2 * 3"),
    ("x**2", "x**2"),
    ("a*b*c", "a*b*c"),
    ("__init__", "__init__"),
    ("\\*not bold\\*", "*not bold*"),
    ("61,250.5", "61,250.5"),
    ("-2.3%", "-2.3%"),
    ("(grade 3)", "(grade 3)"),
    ("a < b & c", "a < b & c"),
    ("R:R", "R:R"),
    ("@everyone", "@everyone"),
    ("📈", "📈"),
    ("é", "é"),
    ("word", "word"),
]
_CODE = st.text(alphabet="abcxyz019 <&_.=/:", min_size=1, max_size=8).filter(lambda s: s.strip() == s)


@dataclass
class Span:
    """A piece of a message with the Markdown that writes it and what each renderer must show."""

    md: str
    text: str  # what a reader sees (Telegram and Discord)
    plain: str  # to_plain's text (links add their URL)
    counts: dict[str, int] = field(default_factory=dict)  # bold, italic, code (code_in_link), link
    kinds: frozenset[str] = frozenset()  # span kinds anywhere inside


def _total(children: list[Span], seps: list[str]) -> Span:
    md = text = plain = ""
    counts: dict[str, int] = {}
    kinds: frozenset[str] = frozenset()
    for k, child in enumerate(children):
        sep = seps[k - 1] if k else ""
        md, text, plain = md + sep + child.md, text + sep + child.text, plain + sep + child.plain
        for key, n in child.counts.items():
            counts[key] = counts.get(key, 0) + n
        kinds |= child.kinds
    return Span(md, text, plain, counts, kinds)


def _wrap(inner: Span, kind: str, data: st.DataObject) -> Span:
    counts = dict(inner.counts)
    if kind == "link":  # a link's code is plain text in Telegram, still code on Discord
        counts["code_in_link"] = counts.pop("code", 0) + counts.get("code_in_link", 0)
        url = f"https://e.x/{data.draw(st.sampled_from(['a', 'b_c', 'q?x=1&y=2']))}"
        counts["link"] = counts.get("link", 0) + 1
        return Span(f"[{inner.md}]({url})", inner.text, f"{inner.plain} ({url})", counts, inner.kinds | {"link"})
    counts[kind] = counts.get(kind, 0) + 1
    if kind == "bold":
        mark = "**"
    else:  # "_" only where the italic's edges are letters: "___init__" would be a run of three
        edges = inner.md[0].isalnum() and inner.md[-1].isalnum()
        mark = data.draw(st.sampled_from(["*", "_"])) if edges else "*"
    return Span(mark + inner.md + mark, inner.text, inner.plain, counts, inner.kinds | {kind})


@st.composite
def spans(draw: st.DrawFn, depth: int = 0, inside: frozenset[str] = frozenset()) -> Span:
    """A word, code span, or bold/italic/link around 1-3 spans (no bold in bold, italic in italic, link in link)."""
    choices = ["word", "word", "code"]
    if depth < 3:
        choices += [k for k in ("bold", "italic", "link") if k not in inside]
    kind = draw(st.sampled_from(choices))
    if kind == "word":
        source, text = draw(st.sampled_from(_WORDS))
        return Span(source, text, text)
    if kind == "code":
        code = draw(_CODE)
        return Span(f"`{code}`", code, code, {"code": 1})
    children = draw(st.lists(spans(depth + 1, inside | {kind}), min_size=1, max_size=3))
    # A span's parts are one paragraph: a soft line break between them is part of it.
    seps = [draw(st.sampled_from([" ", " ", "\n"])) for _ in children[1:]]
    return _wrap(_total(children, seps), kind, draw(st.data()))


@st.composite
def messages(draw: st.DrawFn) -> Span:
    """Paragraphs (their lines broken inside spans too), quotes and bullet lists, separated by blank lines."""
    blocks: list[Span] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["paragraph", "quote", "list"]))
        items = draw(st.lists(spans(), min_size=1, max_size=4))
        if kind == "list":
            bullets = [Span("- " + s.md, s.text, s.plain, s.counts) for s in items]
            blocks.append(_total(bullets, ["\n"] * len(bullets)))
            continue
        block = _total(items, [draw(st.sampled_from([" ", "\n"])) for _ in items[1:]])
        if kind == "quote":
            block = Span("> " + block.md.replace("\n", "\n> "), block.text, block.plain, block.counts)
        blocks.append(block)
    return _total(blocks, ["\n\n"] * len(blocks))


def _flat(text: str) -> str:
    """Text without whitespace and the renderers' own line marks (bullets, quote bars)."""
    return re.sub(r"[\s•│]", "", text)


def _telegram_text(html_text: str) -> str:
    from html import unescape

    return unescape(re.sub(r"<[^<>]*>", "", html_text))


_DISCORD_MARKUP = re.compile(r"\\(.)|\]\([^)\s]*\)|[*`\[]")


def _discord_text(out: str) -> str:
    out = re.sub(r"(?m)^> ?", "", out).replace("\u200b", "")
    return _DISCORD_MARKUP.sub(lambda m: m.group(1) or "", out)


def _discord_markers(out: str) -> str:
    """Discord's unescaped markers."""
    return re.sub(r"\\.", "", out)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_no_span_marker_is_lost_or_added(message: Span) -> None:
    n = {k: message.counts.get(k, 0) for k in ("bold", "italic", "code", "code_in_link", "link")}
    html_text = to_telegram_html(message.md)
    assert_telegram_html(html_text)
    assert html_text.count("<b>") == n["bold"], (message.md, html_text)
    assert html_text.count("<i>") == n["italic"], (message.md, html_text)
    assert html_text.count("<code>") == n["code"], (message.md, html_text)  # none inside a link
    assert html_text.count("<a href=") == n["link"], (message.md, html_text)
    assert _flat(_telegram_text(html_text)) == _flat(message.text)

    discord = to_discord(message.md)
    markers = _discord_markers(discord)
    assert markers.count("*") == 4 * n["bold"] + 2 * n["italic"], (message.md, discord)
    assert markers.count("`") == 2 * (n["code"] + n["code_in_link"]), (message.md, discord)
    assert markers.count("](") == n["link"], (message.md, discord)
    assert "@everyone" not in discord
    assert _flat(_discord_text(discord)) == _flat(message.text)

    assert _flat(to_plain(message.md)) == _flat(message.plain)


# ---------------------------------------------------------------------------------------------------------------
# The real parser's paragraphs and the subset's rules


@pytest.mark.parametrize(
    ("md", "expected"),
    [
        ("**bold over\ntwo lines**", "<b>bold over\ntwo lines</b>"),
        ("*from here\nto there* and `a\nb`", "<i>from here\nto there</i> and <code>a b</code>"),
        ("> **quoted over\n> two lines**", "<blockquote><b>quoted over\ntwo lines</b></blockquote>"),
        ("**not across\n\nparagraphs**", "**not across\n\nparagraphs**"),
        ("- a\n    - four spaces in\n- b", "• a\n  • four spaces in\n• b"),
        ("1. one\n2. two\n   - under two", "1. one\n2. two\n  • under two"),
        ("+ plus stays text", "+ plus stays text"),
        ("-\n*\n1.", "-\n*\n1."),
        ("**(*)**", "<b>(*)</b>"),
        ('a [link](https://e.com "title") stays text', 'a [link](https://e.com "title") stays text'),
        ("[a [inner](https://i.x)](https://o.x)", '<a href="https://o.x">a [inner](https://i.x)</a>'),
        ("```py extra\nx", "```py extra\nx"),
        ("> ```py\n> x\n> ```", "<blockquote>```py\nx\n```</blockquote>"),
        ("> quote\nnot lazy", "<blockquote>quote</blockquote>\nnot lazy"),
        ("a\x00b", "a\x00b"),
        ("\n\ntwo blank lines above and one below\n", "\n\ntwo blank lines above and one below\n"),
    ],
)
def test_telegram_paragraphs_and_rules(md: str, expected: str) -> None:
    out = to_telegram_html(md)
    assert out == expected
    assert_telegram_html(out)


def test_deep_nesting_keeps_all_text() -> None:
    deep = "> " * 40 + "deep **text**"
    out = to_telegram_html(deep)
    assert_telegram_html(out)
    assert "deep <b>text</b>" in out and out.startswith("<blockquote>")
    lists = "".join("  " * k + "- level\n" for k in range(40)) + "end"
    assert to_plain(lists).count("level") == 40 and to_plain(lists).endswith("end")
    for platform in ("telegram", "discord", "console"):
        assert "text" in "".join(render_for(platform, deep))


def test_discord_escapes_line_starts_inside_a_paragraph() -> None:
    # "-# x" after a soft break is literal text in CommonMark but Discord's subtext marker.
    assert to_discord("intro\n-# small\n> ") == "intro\n\\-# small\n>"
    assert to_discord("> one\n> -# two") == "> one\n> \\-# two"


def test_parse_keeps_the_lines() -> None:
    blocks = parse("# T\n\n- a\n  - b\n> q\n```py\nx\n```")
    kinds = [type(b).__name__ for b in blocks]
    assert kinds == ["Line", "Line", "Line", "Line", "Quote", "Fence"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(markdownish, st.text(), st.text(alphabet=" \t\n\x85\xa0ab").map(lambda s: s + "\n" + s)))
def test_shortcuts_parse_as_markdown_it_does(md: str) -> None:
    # Paragraph-only messages skip the block pass and marker-free paragraphs the inline pass: same blocks.
    assert parse(md) == _parse(md, fast=False)
