"""The message methods: sendMessage, sendPhoto, editMessageText/Caption/ReplyMarkup, deleteMessage."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from tests.fakes.telegram_api.entities import check_parse_mode, render
from tests.fakes.telegram_api.images import image_size, thumb_size
from tests.fakes.telegram_api.markup import check_markup
from tests.fakes.telegram_api.protocol import Handler, SentMessage, Upload, bad
from tests.fakes.telegram_api.state import TelegramState, set_or_drop
from tests.fakes.telegram_api.wire import int_param

MAX_TEXT = 4096
MAX_CAPTION = 1024
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)


class MessageMethods(TelegramState):
    """Sends, edits and deletes the bot's messages with Telegram's checks and error descriptions."""

    def _message_methods(self) -> dict[str, Handler]:
        return {
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "editmessagetext": self._edit_message_text,
            "editmessagecaption": self._edit_message_caption,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "deletemessage": self._delete_message,
        }

    def _send_message(self, params: dict[str, Any], files: dict[str, Upload], at: float) -> dict[str, Any]:
        chat_id = self._target_chat(params)
        text, parse_mode, plain, entities = _text(params)
        markup = check_markup(params.get("reply_markup"))

        def fill(message: dict[str, Any]) -> None:
            message["text"] = plain
            if entities:
                message["entities"] = entities

        return self._new_message(
            chat_id,
            params,
            markup,
            fill,
            text=text,
            caption=None,
            photo_size=None,
            plain=plain,
            parse_mode=parse_mode,
            at=at,
        )

    def _send_photo(self, params: dict[str, Any], files: dict[str, Upload], at: float) -> dict[str, Any]:
        chat_id = self._target_chat(params)
        size, width, height, data = self._photo(params, files)
        caption, parse_mode, plain, entities = _caption(params)
        markup = check_markup(params.get("reply_markup"))

        def fill(message: dict[str, Any]) -> None:
            file_id = f"AgACAgFAKE{next(self._file_ids):06d}"
            self._files[file_id] = (size or 0, width, height)
            thumb_w, thumb_h = thumb_size(width, height)
            message["photo"] = [
                {
                    "file_id": file_id + "_t",
                    "file_unique_id": f"t{file_id[-6:]}",
                    "width": thumb_w,
                    "height": thumb_h,
                    "file_size": max(1, (size or 0) // 20),
                },
                {
                    "file_id": file_id,
                    "file_unique_id": f"u{file_id[-6:]}",
                    "width": width,
                    "height": height,
                    "file_size": size or 0,
                },
            ]
            if plain:
                message["caption"] = plain
                if entities:
                    message["caption_entities"] = entities

        return self._new_message(
            chat_id,
            params,
            markup,
            fill,
            text=None,
            caption=caption,
            photo_size=size,
            plain=plain if caption is not None else None,
            parse_mode=parse_mode,
            at=at,
            photo_bytes=data,
        )

    def _new_message(
        self,
        chat_id: int,
        params: dict[str, Any],
        markup: dict[str, Any] | None,
        fill: Callable[[dict[str, Any]], None],
        **record: Any,
    ) -> dict[str, Any]:
        """Store a new bot message, its content set by `fill` under the lock, and its record; returns a copy."""
        with self._lock:
            reply_to = self._reply_target(chat_id, params)
            mid = self._take_message_id(chat_id)
            message = self._bot_message(chat_id, mid, reply_to, markup)
            fill(message)
            sent = SentMessage(
                chat_id=chat_id,
                message_id=mid,
                reply_markup=markup,
                edits=[],
                deleted=False,
                reply_to_message_id=reply_to["message_id"] if reply_to else None,
                **record,
            )
            self._store(message, sent)
            return copy.deepcopy(message)

    def _photo(self, params: dict[str, Any], files: dict[str, Upload]) -> tuple[int | None, int, int, bytes | None]:
        photo = params.get("photo")
        upload = files.get("photo")
        if isinstance(photo, str) and photo.startswith("attach://"):
            upload = files.get(photo.removeprefix("attach://"))
        if upload is not None:
            data = upload.data
            if not data:
                raise bad("file must be non-empty")
            dims = image_size(data)
            if dims is None:
                if self.validate_photos:
                    raise bad("IMAGE_PROCESS_FAILED")
                dims = (512, 512)
            return len(data), dims[0], dims[1], data
        if isinstance(photo, str) and photo:
            if photo.startswith(("http://", "https://")):
                return None, 800, 600, None
            with self._lock:
                known = self._files.get(photo)
            if known is None:
                raise bad("wrong file identifier/HTTP URL specified")
            return known[0], known[1], known[2], None
        raise bad("there is no photo in the request")

    def _edit_message_text(self, params: dict[str, Any], files: dict[str, Upload], at: float) -> dict[str, Any]:
        chat_id, mid = self._edit_target(params)
        text, parse_mode, plain, entities = _text(params)
        markup = check_markup(params.get("reply_markup"), inline_only=True)
        with self._lock:
            message, record = self._editable(chat_id, mid)
            if "text" not in message:
                raise bad("there is no text in the message to edit")
            if (
                message["text"] == plain
                and message.get("entities", []) == entities
                and message.get("reply_markup") == markup
            ):
                raise bad(_NOT_MODIFIED)
            message["text"] = plain
            set_or_drop(message, "entities", entities or None)
            set_or_drop(message, "reply_markup", markup)
            message["edit_date"] = int(time.time())
            record.text, record.plain, record.parse_mode, record.reply_markup = text, plain, parse_mode, markup
            record.edits.append(text)
            return copy.deepcopy(message)

    def _edit_message_caption(self, params: dict[str, Any], files: dict[str, Upload], at: float) -> dict[str, Any]:
        chat_id, mid = self._edit_target(params)
        caption, parse_mode, plain, entities = _caption(params)
        markup = check_markup(params.get("reply_markup"), inline_only=True)
        with self._lock:
            message, record = self._editable(chat_id, mid)
            if "text" in message:
                raise bad("there is no caption in the message to edit")
            if (
                message.get("caption", "") == plain
                and message.get("caption_entities", []) == entities
                and message.get("reply_markup") == markup
            ):
                raise bad(_NOT_MODIFIED)
            set_or_drop(message, "caption", plain or None)
            set_or_drop(message, "caption_entities", entities or None)
            set_or_drop(message, "reply_markup", markup)
            message["edit_date"] = int(time.time())
            record.caption, record.plain, record.parse_mode, record.reply_markup = caption, plain, parse_mode, markup
            record.edits.append(caption or "")
            return copy.deepcopy(message)

    def _edit_message_reply_markup(self, params: dict[str, Any], files: dict[str, Upload], at: float) -> dict[str, Any]:
        chat_id, mid = self._edit_target(params)
        markup = check_markup(params.get("reply_markup"), inline_only=True)
        with self._lock:
            message, record = self._editable(chat_id, mid)
            if message.get("reply_markup") == markup:
                raise bad(_NOT_MODIFIED)
            set_or_drop(message, "reply_markup", markup)
            message["edit_date"] = int(time.time())
            record.reply_markup = markup
            return copy.deepcopy(message)

    def _delete_message(self, params: dict[str, Any], files: dict[str, Upload], at: float) -> bool:
        chat_id = self._target_chat(params)
        mid = int_param(params.get("message_id"), "message_id")
        with self._lock:
            key = (chat_id, mid)
            if key not in self._messages or key in self._deleted_keys:
                raise bad("message to delete not found")
            self._deleted_keys.add(key)
            self.deleted.append(key)
            record = self._sent_by_key.get(key)
            if record is not None:
                record.deleted = True
        return True


def _text(params: dict[str, Any]) -> tuple[str, str | None, str, list[dict[str, Any]]]:
    """The text as sent, its parse mode, and Telegram's plain text and entities; 400 when empty or too long."""
    raw = params.get("text")
    text = "" if raw is None else str(raw)
    parse_mode = check_parse_mode(params.get("parse_mode"))
    plain, entities = render(text, parse_mode, params.get("entities"))
    if not plain.strip():
        raise bad("message text is empty")
    if len(plain) > MAX_TEXT:
        raise bad("message is too long")
    return text, parse_mode, plain, entities


def _caption(params: dict[str, Any]) -> tuple[str | None, str | None, str, list[dict[str, Any]]]:
    """The caption as sent (None without one), its parse mode, and Telegram's plain text and entities."""
    raw = params.get("caption")
    caption = None if raw is None else str(raw)
    parse_mode = check_parse_mode(params.get("parse_mode"))
    plain, entities = render(caption or "", parse_mode, params.get("caption_entities"))
    if len(plain) > MAX_CAPTION:
        raise bad("message caption is too long")
    return caption, parse_mode, plain, entities
