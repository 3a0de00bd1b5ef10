"""Simple text messages are read straight from the webhook's JSON, and give what PTB's parsing gives.

`plain_message` either declines an update (PTB's parsing then handles it, as before) or reads it; where it reads
one, PTB parses the same update, `to_plain` of that gives the same message, and the handler's answer is the same.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from telegram import Update

from bot.telegram.convert import inbound_of, plain_message, to_plain

BOT_ID, BOT_NAME = 999, "bastion_bot"


def _message(text: str = "/price btc", chat_type: str = "private", **extra: Any) -> dict[str, Any]:
    message = {
        "message_id": 11,
        "from": {"id": 5, "is_bot": False, "first_name": "Alice", "language_code": "en"},
        "chat": {"id": 5 if chat_type == "private" else -100, "type": chat_type},
        "date": 1_764_000_000,
        "text": text,
    }
    message.update(extra)
    return {"update_id": 1, "message": message}


def _parsed(data: dict[str, Any]) -> Any:
    try:
        update = Update.de_json(copy.deepcopy(data), None)
    except Exception:
        return "unparseable"
    return to_plain(update)


def test_the_common_shapes_are_read_without_ptb() -> None:
    command = _message(entities=[{"type": "bot_command", "offset": 0, "length": 6}])
    group = _message(f"/price@{BOT_NAME} eth", "supergroup", message_thread_id=3, is_topic_message=True)
    mention = _message(f"hey @{BOT_NAME} levels sol", "group")
    for data in (command, group, mention, _message("price of sol?")):
        plain = plain_message(data)
        assert plain is not None and plain == _parsed(data)
        assert inbound_of(plain, BOT_ID, BOT_NAME) is not None
    addressed = inbound_of(plain_message(mention), BOT_ID, BOT_NAME)  # type: ignore[arg-type]
    assert addressed is not None and addressed.addressed and BOT_NAME not in addressed.text


@pytest.mark.parametrize(
    "data",
    [
        _message(reply_to_message={"message_id": 1, "date": 1, "chat": {"id": 5, "type": "private"}}),
        _message(photo=[{"file_id": "x", "file_unique_id": "y", "width": 1, "height": 1}]),
        _message(reply_markup={"inline_keyboard": []}),
        _message(entities=[{"type": "text_mention", "offset": 0, "length": 1, "user": {"id": 1}}]),
        {"update_id": 1, "edited_message": _message()["message"]},
        {"update_id": 1, "message": _message()["message"], "callback_query": {}},
        {**_message(), "update_id": True},
        _message(**{"from": {"id": 5, "is_bot": False}}),  # no first_name: PTB cannot parse it
        _message(**{"chat": {"id": "5", "type": "private"}}),  # an id as a string
        _message(**{"from": {"id": True, "is_bot": False, "first_name": "A"}}),
        _message(sender_chat={"id": -1, "type": "channel"}),
    ],
)
def test_anything_else_goes_through_ptb(data: dict[str, Any]) -> None:
    assert plain_message(data) is None


_int = st.integers(-(2**40), 2**40)
_texts = st.one_of(
    st.sampled_from(["/price btc", f"/price@{BOT_NAME} eth", "/price@other_bot x", f"@{BOT_NAME} hi", "", "  "]),
    st.text(max_size=20),
)
_user = st.fixed_dictionaries(
    {"id": _int, "is_bot": st.booleans(), "first_name": st.text(max_size=5)},
    optional={
        "username": st.text(max_size=5),
        "language_code": st.sampled_from(["en", "de"]),
        "is_premium": st.booleans(),
    },
)
_chat = st.fixed_dictionaries(
    {"id": _int, "type": st.sampled_from(["private", "group", "supergroup", "channel", "odd"])},
    optional={"title": st.text(max_size=5), "is_forum": st.booleans(), "first_name": st.text(max_size=5)},
)
_entity = st.fixed_dictionaries(
    {"type": st.sampled_from(["bot_command", "mention", "url"]), "offset": _int, "length": _int},
)
_valid = st.fixed_dictionaries(
    {
        "update_id": _int,
        "message": st.fixed_dictionaries(
            {"message_id": _int, "from": _user, "chat": _chat, "date": st.integers(0, 2**31), "text": _texts},
            optional={
                "entities": st.lists(_entity, max_size=2),
                "message_thread_id": _int,
                "is_topic_message": st.booleans(),
            },
        ),
    }
)
# One change that may make an update something else: a field of the wrong type, missing, or one more field.
_where = st.sampled_from([(), ("message",), ("message", "from"), ("message", "chat"), ("message", "entities", 0)])
_key = st.sampled_from(
    [
        "update_id",
        "message_id",
        "from",
        "chat",
        "date",
        "text",
        "id",
        "is_bot",
        "first_name",
        "type",
        "offset",
        "caption",
        "reply_to_message",
        "photo",
        "edited_message",
        "sender_chat",
        "url",
        "user",
    ]
)
_value = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=3),
    _int,
    st.just({}),
    st.just([]),
    st.just({"message_id": 1, "date": 1, "chat": {"id": 1, "type": "private"}}),
)


@st.composite
def _updates(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(_valid)
    if draw(st.booleans()):
        return data  # unchanged: mostly read without PTB
    target: Any = data
    for step in draw(_where):
        found = step in target if isinstance(target, dict) else isinstance(step, int) and len(target) > step
        if found:
            target = target[step]
        else:
            return data
    if isinstance(target, dict):
        key = draw(_key)
        if draw(st.booleans()) and key in target:
            del target[key]
        else:
            target[key] = draw(_value)
    return data


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_updates())
def test_what_is_read_without_ptb_is_what_ptb_reads(data: dict[str, Any]) -> None:
    plain = plain_message(copy.deepcopy(data))
    event("read without PTB" if plain is not None else "declined")
    if plain is None:
        return  # PTB's parsing handles it, as before
    parsed = _parsed(data)
    assert parsed != "unparseable"  # never accepted where PTB would refuse it (the update would be skipped)
    assert plain == parsed
    assert inbound_of(plain, BOT_ID, BOT_NAME) == inbound_of(parsed, BOT_ID, BOT_NAME)
