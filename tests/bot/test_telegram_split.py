"""The split planner's cost: a reply that fits is measured once; a long one is measured once per character plus
once per tag, not once more per character for its closing markup."""

from __future__ import annotations

import pytest

from bot.core.render import TELEGRAM_LIMIT, plan_split, split_message, utf16_len
from bot.core.render import split as render


def test_a_reply_that_fits_is_one_chunk_without_a_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "<b>Commands</b>\n" + "\n".join(f"<code>/cmd{i}</code> does thing {i} 🚀" for i in range(60))
    assert 1_700 < utf16_len(text) <= TELEGRAM_LIMIT

    def no_atoms(_: str) -> list[object]:
        raise AssertionError("a text that fits needs no atoms")

    monkeypatch.setattr(render, "_html_atoms", no_atoms)
    assert split_message(text, TELEGRAM_LIMIT, "html") == [text]
    assert plan_split("", TELEGRAM_LIMIT) == []


def test_a_long_text_is_measured_about_once_per_character() -> None:
    text = "".join(f"<b>part {i}</b> " + "word " * 40 + "\n" for i in range(60))
    calls = 0

    def counting(s: str) -> int:
        nonlocal calls
        calls += 1
        return utf16_len(s)

    chunks = plan_split(text, 1000, "html", measure=counting)
    assert "".join(text[c.start : c.end] for c in chunks) == text
    assert all(utf16_len(c.render(text)) <= 1000 for c in chunks)
    atoms = len(render._html_atoms(text))
    assert calls < atoms * 1.2  # was two per character: the closing tags were built and measured at each one
