"""The Telegram channel on python-telegram-bot 22: handlers into the core, command menu, polling or webhook."""

from __future__ import annotations

import logging
from typing import Any

from telegram import BotCommand, Update
from telegram.ext import Application, ApplicationBuilder, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from bot.core.commands import CommandRegistry
from bot.core.dispatcher import BotCore
from bot.telegram.convert import to_inbound, to_press
from bot.telegram.replier import TelegramButtonReplier, TelegramEditor, TelegramOut, TelegramReplier

log = logging.getLogger(__name__)
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
# Updates handled at once; per-conversation locks keep one user's messages in order. Bounded so a burst queues
# in PTB instead of in front of the database's connection pool (SQLite has a single writer).
CONCURRENT_UPDATES = 32


class TelegramChannel:
    """A PTB `Application` wired to the core; start/stop it in polling or webhook mode."""

    def __init__(
        self,
        core: BotCore,
        token: str,
        *,
        base_url: str = "https://api.telegram.org/bot",
        mode: str = "polling",
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        poll_timeout_s: int = 10,
    ) -> None:
        self.core = core
        self.mode = mode
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.poll_timeout_s = poll_timeout_s
        self.application = _build(token, base_url, mode, poll_timeout_s)
        self.out = TelegramOut(self.application.bot)
        self.editor = TelegramEditor(self.out)
        self.application.add_handler(MessageHandler(filters.TEXT, self._on_message))
        self.application.add_handler(CallbackQueryHandler(self._on_press))
        self.application.add_error_handler(self._on_error)

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        bot = context.bot
        inbound = to_inbound(update, bot.id, bot.username)
        if inbound is None or update.effective_message is None or update.effective_user is None:
            return
        msg = update.effective_message
        replier = TelegramReplier(self.out, msg.chat_id, update.effective_user.id, msg.message_id)
        await self.core.handle(inbound, replier)

    async def _on_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        press = to_press(update)
        if press is None or update.callback_query is None:
            return
        await self.core.press(press, TelegramButtonReplier(self.out, update.callback_query))

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram update failed", exc_info=context.error)

    async def set_commands(self, registry: CommandRegistry) -> None:
        """Publish the command menu (setMyCommands) from the registry."""
        commands = [BotCommand(name, summary) for name, summary in registry.menu()]
        await self.application.bot.set_my_commands(commands)

    async def start(self) -> None:
        """Initialise, publish the menu, and start receiving (long polling, or register the webhook)."""
        app = self.application
        await app.initialize()
        await self.set_commands(self.core.registry)
        await app.start()
        if self.mode == "webhook":
            assert self.webhook_url, "webhook mode needs a URL"
            await app.bot.set_webhook(
                self.webhook_url, secret_token=self.webhook_secret, allowed_updates=ALLOWED_UPDATES
            )
        else:
            await app.bot.delete_webhook()
            assert app.updater is not None
            await app.updater.start_polling(
                poll_interval=0.0, timeout=self.poll_timeout_s, allowed_updates=ALLOWED_UPDATES
            )
        log.info("telegram channel started (%s) as @%s", self.mode, app.bot.username)

    async def stop(self) -> None:
        """Stop receiving and shut the application down."""
        app = self.application
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    async def feed(self, data: dict[str, Any]) -> None:
        """Queue one update received by the webhook endpoint."""
        update = Update.de_json(data, self.application.bot)
        await self.application.update_queue.put(update)


def _build(token: str, base_url: str, mode: str, poll_timeout_s: int) -> Application[Any, Any, Any, Any, Any, Any]:
    builder = (
        ApplicationBuilder()
        .token(token)
        .base_url(base_url)
        .concurrent_updates(CONCURRENT_UPDATES)
        .connection_pool_size(64)
        .get_updates_read_timeout(poll_timeout_s + 5)
    )
    if mode == "webhook":
        builder = builder.updater(None)
    return builder.build()
