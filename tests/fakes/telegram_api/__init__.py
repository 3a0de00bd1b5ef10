"""The in-process fake Telegram Bot API server (see `server.FakeTelegram`); callers import its names from here.

Modules: `server` (HTTP app, lifecycle, method dispatch), `state` (chats, messages, updates, files), `users` (what
the test's users do), `activity` (what the bot did), `faults` (injected errors), `updates` (getUpdates),
`webhook` (setWebhook and delivery), `messages` and `bot_methods` (the other methods), `entities` (HTML and
MarkdownV2 with UTF-16 offsets), `markup`, `images`, `wire` (request decoding), `protocol` (records and errors).
"""

from tests.fakes.telegram_api.protocol import ApiCall, SentMessage
from tests.fakes.telegram_api.server import FakeTelegram

__all__ = ["ApiCall", "FakeTelegram", "SentMessage"]
