"""Versioned prompt files: newest by default, exact versions on request, and content that matches the schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference import RiskDecisionOut, load_prompt
from inference.prompts import PromptNotFound, available
from inference.schemas import RISK_ACTIONS


def test_shipped_prompts_are_found() -> None:
    assert {"analyst", "risk"} <= set(available())
    prompt = load_prompt("risk", 1)
    assert (prompt.name, prompt.version, prompt.id) == ("risk", 1, "risk_v1")
    assert prompt.as_message() == {"role": "system", "content": prompt.text}


def test_newest_version_is_the_default_by_number_not_by_name(tmp_path: Path) -> None:
    for version in (1, 2, 10):
        (tmp_path / f"risk_v{version}.md").write_text(f"risk prompt {version}\n")
    (tmp_path / "notes.md").write_text("not a prompt")
    assert available(tmp_path) == {"risk": [1, 2, 10]}
    assert load_prompt("risk", directory=tmp_path).text == "risk prompt 10"
    assert load_prompt("risk", 2, directory=tmp_path).version == 2


def test_unknown_name_or_version_is_reported() -> None:
    with pytest.raises(PromptNotFound, match="available: analyst, risk"):
        load_prompt("trader")
    with pytest.raises(PromptNotFound, match=r"no version 99; available: \[1"):
        load_prompt("risk", 99)


def test_risk_prompt_names_every_action_and_answer_field() -> None:
    text = load_prompt("risk").text
    for action in RISK_ACTIONS:
        assert f"- {action}:" in text, action
    for field in RiskDecisionOut.model_fields:
        assert f'"{field}"' in text and f"- {field}:" in text, field
    for rule in ("breached stop", "Funding alone is never a reason to exit", "20x", "Hard stop", "Time exit"):
        assert rule in text, rule


def test_analyst_prompt_carries_the_layout_and_the_rules() -> None:
    text = load_prompt("analyst").text
    sections = ["Key structural levels", "Entry setup", "Scenarios", "Position sizing", "Verdict"]
    positions = [text.index(section) for section in sections]
    assert positions == sorted(positions)  # in the specified order
    for rule in ("Never invent", "No emojis", "R:R", "Reject a setup", "2% per trade"):
        assert rule in text, rule
    assert not any(ord(ch) > 0x2FFF for ch in text)  # the prompt itself has no emoji
