"""The test side: users write messages and press buttons."""

from __future__ import annotations

import copy
import time
from typing import Any

from tests.fakes.telegram_api.entities import user_entities
from tests.fakes.telegram_api.markup import callback_datas
from tests.fakes.telegram_api.state import without_reply
from tests.fakes.telegram_api.webhook import Webhook


class UserActions(Webhook):
    """What users do: each action becomes an Update, queued for getUpdates or posted to the webhook."""

    def user_message(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        chat_type: str = "private",
        first_name: str = "User",
        reply_to_message_id: int | None = None,
        message_id: int | None = None,
    ) -> dict[str, Any]:
        """A user writes `text` in a chat; returns the Message update queued (or delivered to the webhook)."""
        user = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}
        with self._lock:
            chat = self._remember_chat(chat_id, chat_type, first_name)
            mid = self._take_message_id(chat_id, message_id)
            message: dict[str, Any] = {
                "message_id": mid,
                "from": user,
                "chat": chat,
                "date": int(time.time()),
                "text": text,
            }
            entities = user_entities(text, self.bot_username)
            if entities:
                message["entities"] = entities
            if reply_to_message_id is not None:
                replied = self._messages.get((chat_id, reply_to_message_id))
                if replied is None:
                    raise ValueError(f"chat {chat_id} has no message {reply_to_message_id} to reply to")
                message["reply_to_message"] = without_reply(replied)
            self._messages[(chat_id, mid)] = message
        return self.push_update({"message": copy.deepcopy(message)})

    def press_button(
        self,
        chat_id: int,
        user_id: int,
        message_id: int,
        data: str,
        *,
        chat_type: str = "private",
        strict: bool = False,
    ) -> dict[str, Any]:
        """A user presses an inline button of a bot message; returns the callback_query update.

        The message must exist. With `strict` it must also not be deleted and must currently carry a button with
        that callback data; without it, stale presses (a keyboard already edited away) are allowed, as real clients
        can send them.
        """
        with self._lock:
            message = self._messages.get((chat_id, message_id))
            if message is None:
                raise ValueError(f"chat {chat_id} has no message {message_id} with buttons to press")
            if strict and (chat_id, message_id) in self._deleted_keys:
                raise ValueError(f"message {message_id} in chat {chat_id} was deleted; its buttons are gone")
            if strict and data not in callback_datas(message.get("reply_markup")):
                raise ValueError(
                    f"message {message_id} in chat {chat_id} has no button with callback data {data!r} "
                    f"(it has {sorted(callback_datas(message.get('reply_markup')))})"
                )
            query_id = str(4_000_000_000_000 + next(self._callback_ids))
            self._open_callbacks.add(query_id)
            chat = self._chats.get(chat_id) or self._remember_chat(chat_id, chat_type, "User")
            query = {
                "id": query_id,
                "from": {"id": user_id, "is_bot": False, "first_name": "User", "language_code": "en"},
                "message": copy.deepcopy(message),
                "chat_instance": str(abs(chat["id"]) * 7919 % 10**12),
                "data": data,
            }
        return self.push_update({"callback_query": query})
