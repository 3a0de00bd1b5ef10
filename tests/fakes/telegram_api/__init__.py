"""The in-process fake Telegram Bot API server (see `server.FakeTelegram`); callers import its names from here."""

from tests.fakes.telegram_api.server import ApiCall, FakeTelegram, SentMessage

__all__ = ["ApiCall", "FakeTelegram", "SentMessage"]
