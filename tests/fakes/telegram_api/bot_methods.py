"""The methods about the bot and its chats: getMe, the command menu, callback answers, chat actions and members."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from tests.fakes.telegram_api.protocol import Handler, Upload, bad
from tests.fakes.telegram_api.state import TelegramState
from tests.fakes.telegram_api.wire import int_param

_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_CHAT_ACTIONS = frozenset(
    [
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    ]
)


class BotMethods(TelegramState):
    """getMe, answerCallbackQuery, set/get/deleteMyCommands, getChatMember, sendChatAction, and the no-op setters."""

    def _bot_methods(self) -> dict[str, Handler]:
        ok = self._ok
        return {
            "getme": self._get_me,
            "answercallbackquery": self._answer_callback_query,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "sendchataction": self._send_chat_action,
            "getchatmember": self._get_chat_member,
            "setmydescription": ok,
            "setmyshortdescription": ok,
            "setmyname": ok,
            "setchatmenubutton": ok,
        }

    def _ok(self, params: dict[str, Any], files: dict[str, Upload], at: float) -> bool:
        return True

    def _get_me(self, params: dict[str, Any], files: dict[str, Upload], at: float) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _answer_callback_query(self, params: dict[str, Any], files: dict[str, Upload], at: float) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            raise bad("MESSAGE_TOO_LONG")
        with self._lock:
            if query_id not in self._open_callbacks:
                raise bad("query is too old and response timeout expired or query ID is invalid")
            self._open_callbacks.discard(query_id)
            self._callback_answers.append(dict(params))
        return True

    def _set_my_commands(self, params: dict[str, Any], files: dict[str, Upload], at: float) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad("too many commands")
        clean: list[dict[str, Any]] = []
        for command in commands:
            if not isinstance(command, dict):
                raise bad("can't parse BotCommand JSON object")
            name, description = command.get("command"), command.get("description")
            if not isinstance(name, str) or not _COMMAND_RE.match(name):
                raise bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": name, "description": description})
        with self._lock:
            self.commands = clean
            self.commands_by_scope[_scope_key(params)] = clean
        return True

    def _get_my_commands(self, params: dict[str, Any], files: dict[str, Upload], at: float) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self.commands_by_scope.get(_scope_key(params), []))

    def _delete_my_commands(self, params: dict[str, Any], files: dict[str, Upload], at: float) -> bool:
        with self._lock:
            self.commands_by_scope.pop(_scope_key(params), None)
        return True

    def _get_chat_member(self, params: dict[str, Any], files: dict[str, Upload], at: float) -> dict[str, Any]:
        chat_id = self._target_chat(params)
        user_id = int_param(params.get("user_id"), "user_id")
        user = {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"}
        with self._lock:
            owner = user_id in self.chat_admins.get(chat_id, set())
        # Admins are reported as the chat's owners ("creator"): the one status without a dozen permission flags.
        if owner:
            return {"status": "creator", "user": user, "is_anonymous": False}
        return {"status": "member", "user": user}

    def _send_chat_action(self, params: dict[str, Any], files: dict[str, Upload], at: float) -> bool:
        chat_id = self._target_chat(params)
        action = str(params.get("action") or "")
        if action not in _CHAT_ACTIONS:
            raise bad("wrong parameter action in request")
        with self._lock:
            self.chat_actions.append((chat_id, action))
        return True


def _scope_key(params: dict[str, Any]) -> str:
    scope = params.get("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True) + "|" + str(params.get("language_code") or "")
