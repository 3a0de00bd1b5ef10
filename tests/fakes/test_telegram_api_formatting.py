"""The fake Bot API's formatted text: MarkdownV2 and HTML parsed to Telegram's plain text and entities."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.telegram_api.entities import check_parse_mode, render
from tests.fakes.telegram_api.protocol import ApiError


def _e(kind: str, offset: int, length: int, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "offset": offset, "length": length, **extra}


@pytest.mark.parametrize(
    ("text", "plain", "entities"),
    [
        (
            "*b* _i_ __u__ ~s~ ||sp||",
            "b i u s sp",
            [
                _e("bold", 0, 1),
                _e("italic", 2, 1),
                _e("underline", 4, 1),
                _e("strikethrough", 6, 1),
                _e("spoiler", 8, 2),
            ],
        ),
        ("```python\nprint(1)\n```", "print(1)\n", [_e("pre", 0, 9, language="python")]),
        ("```\nx\n```", "\nx\n", [_e("pre", 0, 3)]),
        (">quote\n>more\nafter", "quote\nmore\nafter", [_e("blockquote", 0, 10)]),
        ("a\n>q", "a\nq", [_e("blockquote", 2, 1)]),
        ("[here](http://x.y/a\\)b)", "here", [_e("text_link", 0, 4, url="http://x.y/a)b")]),
        ("😀 *b*", "😀 b", [_e("bold", 3, 1)]),  # offsets count UTF-16 code units: the emoji is two
    ],
)
def test_markdown_v2_gives_telegrams_plain_text_and_entities(
    text: str, plain: str, entities: list[dict[str, Any]]
) -> None:
    assert render(text, "MarkdownV2", None) == (plain, entities)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("a.b", "Character '.' is reserved and must be escaped with the preceding '\\'"),
        ("x *open", "Can't find end of Bold entity at byte offset 2"),
        ("é ||s", "Can't find end of Spoiler entity at byte offset 3"),  # byte offsets count UTF-8 bytes
        ("[a](http://x", "Can't find end of a URL at byte offset 4"),
    ],
)
def test_markdown_v2_errors_name_the_byte_offset(text: str, error: str) -> None:
    with pytest.raises(ApiError) as caught:
        render(text, "MarkdownV2", None)
    assert (caught.value.status, caught.value.description) == (400, f"Bad Request: can't parse entities: {error}")


@pytest.mark.parametrize(
    ("text", "plain", "entities"),
    [
        ("<a href=http://x.y>l</a>", "l", [_e("text_link", 0, 1, url="http://x.y")]),
        ('<a  href = "u" >x</a>', "x", [_e("text_link", 0, 1, url="u")]),
        ("<a>no link</a>", "no link", []),
        ("<s>a</s><del>b</del> &#x1F600;&lt;", "ab 😀<", [_e("strikethrough", 0, 1), _e("strikethrough", 1, 1)]),
    ],
)
def test_html_gives_telegrams_plain_text_and_entities(text: str, plain: str, entities: list[dict[str, Any]]) -> None:
    assert render(text, "HTML", None) == (plain, entities)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("ok </b", "Unclosed end tag at byte offset 3"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ("<a href=", "Unclosed start tag at byte offset 0"),
        ('<a href="x>y', "Unclosed start tag at byte offset 0"),
        ("<a =x>y</a>", 'Empty attribute name in the tag "a" at byte offset 0'),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ],
)
def test_html_errors_name_the_byte_offset(text: str, error: str) -> None:
    with pytest.raises(ApiError) as caught:
        render(text, "HTML", None)
    assert caught.value.description == f"Bad Request: can't parse entities: {error}"


def test_without_a_parse_mode_the_entities_sent_are_kept() -> None:
    sent = [_e("bold", 0, 2)]
    assert render("*a*", None, sent) == ("*a*", sent)
    assert render("*a*", "Markdown", "not a list") == ("*a*", [])


def test_parse_mode_must_be_one_telegram_knows() -> None:
    assert check_parse_mode("") is None
    assert check_parse_mode("MarkdownV2") == "MarkdownV2"
    with pytest.raises(ApiError, match="unsupported parse_mode 'bbcode'"):
        check_parse_mode("bbcode")
