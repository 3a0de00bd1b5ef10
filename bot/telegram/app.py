"""The Telegram channel on python-telegram-bot 22: handlers into the core, command menu, polling or webhook."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterable
from typing import Any

from prometheus_client.core import Metric
from telegram import BotCommand, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    SimpleUpdateProcessor,
    filters,
)

from bot.api.inbox import ProcessorStopped
from bot.api.webhook_reply import CURRENT_SLOT
from bot.core.dispatcher import BotCore
from bot.core.registry import CommandRegistry
from bot.telegram.convert import PlainMessage, inbound_of, plain_message, to_plain, to_press
from bot.telegram.replier import TelegramButtonReplier, TelegramEditor, TelegramOut, TelegramReplier
from bot.telegram.request import AiohttpRequest
from bot.telegram.updates import DEFAULT_STALL_S, GuardedBot, UpdateGuard, Verdict, update_id_of

log = logging.getLogger(__name__)
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
# Updates handled at once; per-conversation locks keep one user's messages in order. Bounded so a burst queues
# in PTB instead of in front of the database's connection pool (SQLite has a single writer).
CONCURRENT_UPDATES = 32


class PulseProcessor(SimpleUpdateProcessor):
    """PTB's update processor (at most CONCURRENT_UPDATES at once) that tells the guard when an update starts.

    The pulse of the processing side of the loop, for every update (also those no handler matches), without a
    handler group of its own in front of the others.
    """

    __slots__ = ("_guard",)

    def __init__(self, guard: UpdateGuard) -> None:
        super().__init__(CONCURRENT_UPDATES)
        self._guard = guard

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Count the start, then process."""
        self._guard.processing_started()
        await coroutine


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
        stall_after_s: float = DEFAULT_STALL_S,
    ) -> None:
        self.core = core
        self.mode = mode
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.poll_timeout_s = poll_timeout_s
        self.guard = UpdateGuard(stall_after_s=max(stall_after_s, poll_timeout_s + 5.0))
        self.application = _build(token, base_url, mode, poll_timeout_s, self.guard)
        self.out = TelegramOut(self.application.bot)
        self.editor = TelegramEditor(self.out)
        self.application.add_handler(MessageHandler(filters.TEXT, self._on_message))
        self.application.add_handler(CallbackQueryHandler(self._on_press))
        self.application.add_error_handler(self._on_error)

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        plain = to_plain(update)
        if plain is not None:
            await self._handle(plain)

    async def _handle(self, msg: PlainMessage) -> None:
        bot = self.application.bot
        inbound = inbound_of(msg, bot.id, bot.username)
        if inbound is None:
            return
        # In a webhook request's turn (the inbox set its slot), the final message may go in the response body.
        replier = TelegramReplier(self.out, msg.chat_id, msg.user_id, msg.message_id, CURRENT_SLOT.get())
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
            self.guard.polling = True
            self.guard.last_round_at = self.guard.clock()  # the stall clock starts with the first poll
        log.info("telegram channel started (%s) as @%s", self.mode, app.bot.username)

    async def stop(self) -> None:
        """Stop receiving and shut the application down."""
        app = self.application
        self.guard.polling = False
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    async def feed(self, data: dict[str, Any]) -> Verdict:
        """Queue one update received by the webhook endpoint, unless it repeats a recent one or cannot be parsed."""
        update_id = update_id_of(data)
        if update_id is not None and not self.guard.first_time(update_id):
            return Verdict.DUPLICATE
        update = self.guard.parse(data, self.application.bot)
        if update is None:
            return Verdict.UNPARSEABLE
        self.guard.queued()
        await self.application.update_queue.put(update)
        return Verdict.QUEUED

    async def process(self, data: dict[str, Any]) -> Verdict:
        """Handle one update from the durable webhook inbox to the end (the inbox drops repeats itself);
        ProcessorStopped once the application stopped, so the inbox keeps the update for another worker."""
        if not self.application.running:
            raise ProcessorStopped("the Telegram application is not running")
        # A simple text message (most updates) goes to the same handler PTB would call, without PTB's parsing of
        # the Update and its dispatch (about a tenth of a worker's CPU per /price); anything else is PTB's.
        plain = plain_message(data)
        update = None if plain is not None else self.guard.parse(data, self.application.bot)
        if plain is None and update is None:
            return Verdict.UNPARSEABLE
        self.guard.queued()
        self.guard.processing_started()  # processed here, not through PTB's queue and update processor
        if update is not None:
            await self.application.process_update(update)
        elif plain is not None:
            try:
                await self._handle(plain)
            except Exception:
                log.error("telegram update failed", exc_info=True)  # as PTB's error handler (_on_error) logs it
        return Verdict.QUEUED

    def duplicate(self, update_id: int) -> None:
        """Count a repeated update that the durable inbox dropped (the same metric as the in-memory filter)."""
        self.guard.skipped[Verdict.DUPLICATE] += 1

    def stall_reason(self) -> str | None:
        """Why the update loop looks stalled (for /health), or None."""
        updater = self.application.updater
        if self.guard.polling and updater is not None and not updater.running:
            return "telegram polling stopped"
        return self.guard.stall_reason()

    def collect(self) -> Iterable[Metric]:
        """Prometheus metrics of the update loop."""
        return self.guard.collect()


def _build(
    token: str, base_url: str, mode: str, poll_timeout_s: int, guard: UpdateGuard
) -> Application[Any, Any, Any, Any, Any, Any]:
    bot = GuardedBot(
        token,
        base_url=base_url,
        request=AiohttpRequest(connection_pool_size=64),
        get_updates_request=AiohttpRequest(connection_pool_size=1, read_timeout=poll_timeout_s + 5),
        guard=guard,
    )
    # No JobQueue (the scheduler is APScheduler's, run by the leader) and no persistence: nothing PTB would keep
    # per update.
    builder = ApplicationBuilder().bot(bot).concurrent_updates(PulseProcessor(guard)).job_queue(None)
    if mode == "webhook":
        builder = builder.updater(None)
    return builder.build()
