"""Markdown rendering for Telegram HTML, Discord and plain text, and splitting of rendered messages."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.render import (
    DISCORD_LIMIT,
    TELEGRAM_LIMIT,
    plan_split,
    render_for,
    split_message,
    to_discord,
    to_plain,
    to_telegram_html,
    utf16_len,
)

# ---------------------------------------------------------------------------------------------------------------
# Helpers

_TAG = re.compile(r"<[^<>]*>")
_OPEN_TAGS = {
    "b": re.compile(r"<b>"),
    "i": re.compile(r"<i>"),
    "pre": re.compile(r"<pre>"),
    "code": re.compile(r'<code(?: class="language-[^"<>]+")?>'),
    "a": re.compile(r'<a href="[^"<>]+">'),
    "blockquote": re.compile(r"<blockquote>"),
}
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot);")


def assert_telegram_html(text: str) -> None:
    """Allowed tags only, balanced, nested as Telegram allows; text outside tags fully escaped."""
    stack: list[str] = []
    pos = 0
    for m in _TAG.finditer(text):
        outside = text[pos : m.start()]
        assert "<" not in outside and ">" not in outside, text
        assert len(_ENTITY.findall(outside)) == outside.count("&"), f"bare & in {outside!r}"
        pos = m.end()
        tag = m.group(0)
        if tag.startswith("</"):
            name = tag[2:-1]
            assert stack and stack[-1] == name, f"unbalanced {tag} in {text!r}"
            stack.pop()
            continue
        name = re.match(r"<([a-z]+)", tag).group(1)  # type: ignore[union-attr]
        assert name in _OPEN_TAGS and _OPEN_TAGS[name].fullmatch(tag), f"bad tag {tag!r}"
        if "class=" in tag:
            assert stack and stack[-1] == "pre" and text[m.start() - 5 : m.start()] == "<pre>", text
        assert "code" not in stack, f"{tag} inside code: {text!r}"
        assert "pre" not in stack or (name == "code" and stack[-1] == "pre"), f"{tag} inside pre: {text!r}"
        if name in ("a", "code"):
            assert "a" not in stack, f"{tag} inside a link: {text!r}"
        if name == "blockquote":
            assert not stack, f"nested blockquote: {text!r}"
        stack.append(name)
    tail = text[pos:]
    assert "<" not in tail and ">" not in tail and len(_ENTITY.findall(tail)) == tail.count("&"), text
    assert not stack, f"unclosed {stack} in {text!r}"


def telegram_visible(text: str) -> str:
    """What the user sees, with link targets and code languages kept where they were written."""
    text = re.sub(r'<code class="language-([^"]*)">', lambda m: m.group(1), text)
    text = re.sub(r'<a href="([^"]*)">(.*?)</a>', lambda m: m.group(2) + m.group(1), text, flags=re.DOTALL)
    return html.unescape(_TAG.sub("", text))


_MARKERS = set("*_`~#>[]()\\-•")


def significant(text: str) -> str:
    """Characters that no rendering may drop, add or reorder: everything except markers and whitespace."""
    return "".join(c for c in text if c not in _MARKERS and not c.isspace())


# ---------------------------------------------------------------------------------------------------------------
# Telegram HTML


@pytest.mark.parametrize(
    ("md", "expected"),
    [
        ("a < b & c", "a &lt; b &amp; c"),
        ("BTC_USDT_PERP", "BTC_USDT_PERP"),
        ("BTC/USDT:USDT at 1,234.5 (-2.3%) (grade 3)", "BTC/USDT:USDT at 1,234.5 (-2.3%) (grade 3)"),
        ("**R:R 2.5**", "<b>R:R 2.5</b>"),
        ("*italic* and _also_", "<i>italic</i> and <i>also</i>"),
        ("2 * 3 * 4", "2 * 3 * 4"),
        ("x**2 + y**2", "x**2 + y**2"),
        ("a*b*c and snake_case_name", "a*b*c and snake_case_name"),
        ("__init__", "__init__"),
        ("a lone * star and _ underscore", "a lone * star and _ underscore"),
        ("**unclosed bold", "**unclosed bold"),
        ("***both***", "<i><b>both</b></i>"),
        ("**bold *and italic***", "<b>bold <i>and italic</i></b>"),
        ("*outer **inner** outer*", "<i>outer <b>inner</b> outer</i>"),
        ("_BTC_USDT_", "<i>BTC_USDT</i>"),
        ("\\*literal\\* \\_too\\_", "*literal* _too_"),
        ("use `a<b && c` now", "use <code>a&lt;b &amp;&amp; c</code> now"),
        ("``a `tick` b``", "<code>a `tick` b</code>"),
        ("`**not bold**`", "<code>**not bold**</code>"),
        ("an `unclosed code", "an `unclosed code"),
        ("**bold `code`**", "<b>bold <code>code</code></b>"),
        ('[chart](https://x.io/c?a=1&b="2")', '<a href="https://x.io/c?a=1&amp;b=&quot;2&quot;">chart</a>'),
        ("[wiki](https://w.org/A_(b)) end", '<a href="https://w.org/A_(b)">wiki</a> end'),
        ("[**bold** `code`](https://e.com)", '<a href="https://e.com"><b>bold</b> code</a>'),
        ("[not a link](javascript:alert(1))", "[not a link](javascript:alert(1))"),
        ("[text] (https://e.com)", "[text] (https://e.com)"),
        ("# Heading", "<b>Heading</b>"),
        ("### Levels **x** ###", "<b>Levels x</b>"),
        ("#hashtag", "#hashtag"),
        ("- one\n* two\n  - nested\n1. first", "• one\n• two\n  • nested\n1. first"),
        ("-2.3% today", "-2.3% today"),
        ("> quoted **b**\n> second\nafter", "<blockquote>quoted <b>b</b>\nsecond</blockquote>\nafter"),
        (">> not nested", "<blockquote>&gt; not nested</blockquote>"),
        ("```\nplain < code\n```", "<pre>plain &lt; code</pre>"),
        (
            "```python\nif a < b:\n    x = '*'\n```",
            "<pre><code class=\"language-python\">if a &lt; b:\n    x = '*'</code></pre>",
        ),
        ("~~~\ntilde\n~~~", "<pre>tilde</pre>"),
        ("```\nnever closed **x**", "<pre>never closed **x**</pre>"),
        ("text ```inline``` text", "text <code>inline</code> text"),
        ("line\r\nwindows", "line\nwindows"),
    ],
)
def test_telegram_examples(md: str, expected: str) -> None:
    out = to_telegram_html(md)
    assert out == expected
    assert_telegram_html(out)


def test_heading_with_bold_is_not_nested_bold() -> None:
    assert to_telegram_html("# **Plan** for BTC") == "<b>Plan for BTC</b>"


# Fragments that combine into every construct, broken constructs and awkward text.
_TOKENS = [
    "**",
    "*",
    "_",
    "`",
    "``",
    "```",
    "```py\n",
    "~~~",
    "[",
    "]",
    "(",
    ")",
    "](",
    "https://e.x/a?b=1&c=2",
    "tg://user?id=1",
    "# ",
    "## ",
    "> ",
    "- ",
    "* ",
    "1. ",
    "\n",
    "\n\n",
    " ",
    "  ",
    "\\",
    "<",
    ">",
    "&",
    '"',
    "a",
    "b",
    "BTC_USDT",
    "1,234.5",
    "-2.3%",
    "é",
    "📈",
    "@everyone",
    "#",
    "|",
    "~",
    "&amp;",
    "<b>",
]
markdownish = st.lists(st.one_of(st.sampled_from(_TOKENS), st.text(max_size=4)), max_size=80).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markdownish)
def test_telegram_html_is_always_valid_and_loses_no_text(md: str) -> None:
    out = to_telegram_html(md)
    assert_telegram_html(out)
    assert significant(telegram_visible(out)) == significant(md)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_telegram_html_arbitrary_unicode(md: str) -> None:
    out = to_telegram_html(md)
    assert_telegram_html(out)
    assert significant(telegram_visible(out)) == significant(md)


# ---------------------------------------------------------------------------------------------------------------
# Discord and plain


@pytest.mark.parametrize(
    ("md", "expected"),
    [
        ("# Plan", "**Plan**"),
        ("**R:R 2.5** and *it*", "**R:R 2.5** and *it*"),
        ("BTC_USDT_PERP", "BTC_USDT_PERP"),
        ("a < b & c", "a < b & c"),
        ("2 * 3 and a*b*c", "2 \\* 3 and a\\*b\\*c"),
        ("__init__", "\\_\\_init\\_\\_"),
        ("~~no~~ ||spoiler||", "\\~\\~no\\~\\~ \\|\\|spoiler\\|\\|"),
        ("~2% move", "~2% move"),
        ("hey @everyone and @here", "hey @\u200beveryone and @\u200bhere"),
        ("`@everyone in code`", "`@everyone in code`"),
        ("```\n@here *raw*\n```", "```\n@here *raw*\n```"),
        ("```python\nx = 1\n```", "```python\nx = 1\n```"),
        ("- item\n1. first", "• item\n1. first"),
        ("> quote\n>\n> more", "> quote\n>\n> more"),
        ("\\# not a heading", "\\# not a heading"),
        ("[chart](https://x.io)", "[chart](https://x.io)"),
        ("``a`b``", "`` a`b ``"),
    ],
)
def test_discord_examples(md: str, expected: str) -> None:
    assert to_discord(md) == expected


@settings(max_examples=200, deadline=None)
@given(markdownish)
def test_discord_never_pings(md: str) -> None:
    out = to_discord(md)
    outside_code = re.sub(r"```.*?```|`[^`]*`", "", out, flags=re.DOTALL)
    assert "@everyone" not in outside_code and "@here" not in outside_code


@pytest.mark.parametrize(
    ("md", "expected"),
    [
        ("# Plan\n**R:R 2.5**, *risk* `1%`", "Plan\nR:R 2.5, risk 1%"),
        ("- a\n* b", "• a\n• b"),
        ("[chart](https://x.io) and [https://y.io](https://y.io)", "chart (https://x.io) and https://y.io"),
        ("> quoted", "│ quoted"),
        ("```py\nx = 1\n```\nBTC_USDT 2 * 3", "x = 1\nBTC_USDT 2 * 3"),
    ],
)
def test_plain_examples(md: str, expected: str) -> None:
    assert to_plain(md) == expected


# ---------------------------------------------------------------------------------------------------------------
# Splitting


def test_split_prefers_paragraphs_then_lines_then_spaces() -> None:
    text = "a" * 50 + "\n\n" + "b" * 20 + "\n" + "c" * 30
    assert split_message(text, 80, "plain") == ["a" * 50 + "\n\n", "b" * 20 + "\n" + "c" * 30]
    text = "a" * 50 + "\n" + "b b b " + "c" * 40
    assert split_message(text, 80, "plain") == ["a" * 50 + "\n", "b b b " + "c" * 40]
    words = " ".join(["word"] * 30)
    chunks = split_message(words, 50, "plain")
    assert all(c.endswith(" ") for c in chunks[:-1])
    assert "".join(chunks) == words


def test_split_hard_cuts_without_spaces() -> None:
    assert split_message("x" * 25, 10, "plain") == ["x" * 10, "x" * 10, "x" * 5]


def test_split_counts_utf16_units() -> None:
    chunks = split_message("📈" * 10, 10, "plain")
    assert chunks == ["📈" * 5, "📈" * 5]
    assert all(utf16_len(c) <= 10 for c in chunks)


def test_split_never_cuts_entities_or_tags() -> None:
    chunks = split_message("&amp;" * 10, 7)
    assert chunks == ["&amp;"] * 10
    chunks = split_message('<a href="https://e.com">x</a>' * 5, 40)
    assert all(c.count("<") == c.count(">") for c in chunks)
    assert "".join(chunks) == '<a href="https://e.com">x</a>' * 5


def test_split_closes_and_reopens_html() -> None:
    text = "<b>" + "word " * 30 + "</b> tail"
    chunks = split_message(text, 50)
    assert len(chunks) > 3
    for chunk in chunks:
        assert utf16_len(chunk) <= 50
        assert_telegram_html(chunk)
    assert chunks[1].startswith("<b>") and chunks[0].endswith("</b>")
    assert "".join(_TAG.sub("", c) for c in chunks) == _TAG.sub("", text)


def test_split_reopens_pre_with_language() -> None:
    code = "\n".join(f"x{i} = {i}" for i in range(40))
    text = to_telegram_html(f"intro\n```python\n{code}\n```\noutro")
    chunks = split_message(text, 120)
    middle = [c for c in chunks[1:] if c.startswith('<pre><code class="language-python">')]
    assert middle, chunks
    for chunk in chunks:
        assert_telegram_html(chunk)
        assert len(chunk) <= 120
    assert "".join(_TAG.sub("", c) for c in chunks) == _TAG.sub("", text)


def test_split_discord_fence_is_closed_and_reopened() -> None:
    md = to_discord("intro\n```py\n" + "\n".join(f"line {i}" for i in range(40)) + "\n```\nend")
    chunks = split_message(md, 60, "markdown")
    assert len(chunks) > 3
    for chunk in chunks:
        assert len(chunk) <= 60
        fences = [line for line in chunk.split("\n") if line.startswith("```")]
        assert len(fences) % 2 == 0, chunk
    assert all(c.startswith("```py\n") for c in chunks[1:-1])
    plan = plan_split(md, 60, "markdown")
    assert "".join(md[c.start : c.end] for c in plan) == md


def test_split_raises_when_markup_cannot_fit() -> None:
    with pytest.raises(ValueError):
        split_message('<pre><code class="language-python">' + "x" * 100 + "</code></pre>", 40)


def test_split_short_and_empty() -> None:
    assert split_message("short", 10) == ["short"]
    assert split_message("", 10) == []


# Fragments for split properties: fences always end their line, so the open markup stays small (< 100 chars).
_SPLIT_TOKENS = [
    "**",
    "*",
    "_",
    "`",
    "```py\n",
    "```\n",
    "[link **b**](https://e.x/a?b=1&c=2)",
    "# ",
    "> ",
    "- ",
    "\n",
    "\n\n",
    " ",
    "<",
    "&",
    "word",
    "BTC_USDT",
    "-2.3%",
    "📈",
    "é",
    "The quick brown fox jumps over the lazy dog. ",
]
splittable = st.lists(st.sampled_from(_SPLIT_TOKENS), min_size=30, max_size=300).map("".join)


def _limit_for(data: st.DataObject, text: str, floor: int) -> int:
    """A limit that usually forces several chunks."""
    return data.draw(st.integers(min_value=floor, max_value=max(floor, utf16_len(text) // 2)), label="limit")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(splittable, st.data())
def test_split_html_properties(md: str, data: st.DataObject) -> None:
    text = to_telegram_html(md)
    limit = _limit_for(data, text, 100)
    plan = plan_split(text, limit)
    assert "".join(text[c.start : c.end] for c in plan) == text
    chunks = split_message(text, limit)
    assert chunks == [c.render(text) for c in plan]
    for chunk in chunks:
        assert utf16_len(chunk) <= limit
        assert_telegram_html(chunk)
    assert "".join(_TAG.sub("", c) for c in chunks) == _TAG.sub("", text)  # only markup was added


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(splittable, st.data())
def test_split_markdown_properties(md: str, data: st.DataObject) -> None:
    text = to_discord(md)
    limit = _limit_for(data, text, 20)
    plan = plan_split(text, limit, "markdown")
    assert "".join(text[c.start : c.end] for c in plan) == text
    for chunk in plan:
        rendered = chunk.render(text)
        assert utf16_len(rendered) <= limit
        assert chunk.prefix in ("", "```py\n", "```\n")
        assert chunk.suffix in ("", "```", "\n```")
        fences = [line for line in rendered.split("\n") if line.startswith("```")]
        assert len(fences) % 2 == 0, rendered  # to_discord closes every fence, so every chunk is balanced


@settings(max_examples=100, deadline=None)
@given(st.text(), st.integers(min_value=2, max_value=50))
def test_split_plain_properties(text: str, limit: int) -> None:
    chunks = split_message(text, limit, "plain")
    assert "".join(chunks) == text
    assert all(0 < utf16_len(c) <= limit for c in chunks)


def _long_analysis() -> str:
    paragraph = (
        "**BTC/USDT:USDT** holds the *4h* demand zone at 61,250.5 after a -2.3% sweep (grade 3); "
        "funding is flat & open interest < last week. Invalidation below 60,900, R:R 2.5. "
    )
    code = "\n".join(f"level_{i} = {61000 + 37 * i}  # zone <{i}> & note" for i in range(80))
    parts = ["# Market structure"]
    parts += [paragraph * 3 for _ in range(12)]
    parts.append(f"```python\n{code}\n```")
    parts += ["- " + paragraph for _ in range(10)]
    parts.append("> Not financial advice & no @everyone pings.")
    return "\n\n".join(parts)


def test_long_analysis_splits_into_valid_chunks() -> None:
    md = _long_analysis()
    assert len(md) > 10_000
    html_text = to_telegram_html(md)
    chunks = render_for("telegram", md)
    assert len(chunks) >= 3
    for chunk in chunks:
        assert utf16_len(chunk) <= TELEGRAM_LIMIT
        assert_telegram_html(chunk)
    assert any(c.startswith('<pre><code class="language-python">level_') for c in chunks[1:])
    assert "".join(_TAG.sub("", c) for c in chunks) == _TAG.sub("", html_text)

    discord = render_for("discord", md)
    assert len(discord) >= 6
    for chunk in discord:
        assert len(chunk) <= DISCORD_LIMIT
        assert sum(1 for line in chunk.split("\n") if line.startswith("```")) % 2 == 0
        assert "@everyone" not in chunk

    console = render_for("console", md)
    assert len(console) == 1 and "**" not in console[0] and "```" not in console[0]


def test_render_for_never_raises_on_huge_markup() -> None:
    long_link = "[x](https://e.com/?" + "&" * 3000 + ")"
    assert "<a " not in to_telegram_html(long_link)
    long_lang = "```" + "a" * 3000 + "\ncode\n```"
    assert "language-" not in to_telegram_html(long_lang)
    deep = "> **_[" + "y " * 3000 + "](https://e.com/" + "b" * 2000 + ")_**"
    for platform, limit in (("telegram", TELEGRAM_LIMIT), ("discord", DISCORD_LIMIT)):
        for md in (long_link, long_lang, deep, "```py\n" + "z" * 9000 + "\n```"):
            chunks = render_for(platform, md)
            assert chunks and all(utf16_len(c) <= limit for c in chunks)
    for chunk in render_for("telegram", deep):
        assert_telegram_html(chunk)


def test_render_for_edge_cases() -> None:
    assert render_for("telegram", "") == []
    assert render_for("discord", "**hi**") == ["**hi**"]
    with pytest.raises(ValueError):
        render_for("slack", "hi")
