"""Reply markup as Telegram checks it: inline keyboards, their buttons and callback data."""

from __future__ import annotations

from typing import Any

from tests.fakes.telegram_api.protocol import bad

MAX_CALLBACK_DATA = 64
MAX_BUTTONS = 100
_BUTTON_ACTIONS = frozenset(
    [
        "url",
        "callback_data",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    ]
)


def check_markup(markup: Any, *, inline_only: bool = False) -> dict[str, Any] | None:
    """The reply markup if Telegram would accept it (only an inline keyboard where `inline_only`), else 400."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        if inline_only:
            raise bad("inline keyboard expected")
        return markup
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or any(not isinstance(row, list) for row in rows):
        raise bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    if sum(len(row) for row in rows) > MAX_BUTTONS:
        raise bad("reply markup is too long")
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
            if not button["text"]:
                raise bad("can't parse inline keyboard button: Text must be non-empty")
            if not _BUTTON_ACTIONS & button.keys():
                raise bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if "callback_data" in button and (
                not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA
            ):
                raise bad("BUTTON_DATA_INVALID")
            url = button.get("url")
            if "url" in button and (not isinstance(url, str) or not url.startswith(("http://", "https://", "tg://"))):
                raise bad("BUTTON_URL_INVALID")
    return markup


def callback_datas(markup: Any) -> set[str]:
    """The callback data of every inline button of a reply markup."""
    if not isinstance(markup, dict):
        return set()
    return {
        b["callback_data"]
        for row in markup.get("inline_keyboard", [])
        for b in row
        if isinstance(b, dict) and "callback_data" in b
    }
