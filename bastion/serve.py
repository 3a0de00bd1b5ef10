"""`bastion serve` wiring: the bot core, the configured channels, the API and the background jobs on one loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import uvicorn

from agents.runner import AnalystChat
from bastion import __version__
from bastion.app import Services
from bastion.reports import build_report_jobs
from bot.api.app import create_app, database_check
from bot.api.inbox import WebhookInbox
from bot.api.metrics import Metrics, ModelCallCounter
from bot.api.ops import bool_check, leader_check, market_check, migrations_check, model_check, ops_router, outbox_depth
from bot.api.reports import reports_router
from bot.api.signals import SignalService, signals_router, toolkit_analysis
from bot.core.approvals import ApprovalsService
from bot.core.commands import CommandDeps, build_registry
from bot.core.delivery import DeliveryWorker, Sender
from bot.core.dispatcher import BotCore, MessageEditor
from bot.core.notify import APPROVAL_TOKEN, OutboxNotifier
from bot.core.observed import CountingSender
from bot.core.userlimit import user_limiter
from bot.discord.app import DiscordChannel
from bot.discord.sender import DiscordSender
from bot.scheduler import JobScheduler, Leadership, leader_lock
from bot.telegram.app import TelegramChannel
from bot.telegram.sender import TelegramSender
from engine.alerts.job import AlertJob
from engine.execution.executor import IN_FLIGHT
from engine.monitor.expiry import LimitExpirySweep
from engine.monitor.market_view import StructureMarketViews
from engine.monitor.monitor import Monitor
from engine.reports.photos import ReportChartSender
from inference.client import ModelClient
from tools.agent_tools.base import PreferenceStore

log = logging.getLogger(__name__)


def build_core(services: Services, chat: AnalystChat, store: PreferenceStore | None) -> BotCore:
    """The channel-agnostic core over the services and the analyst."""
    s = services.settings
    policy = s.access_policy()
    if policy.trading_closed:
        log.warning(
            "Trading is closed: nobody on a chat channel can trade, see positions or press an order button. "
            "Open it by listing users in BASTION_ALLOWED_USERS (e.g. '[\"telegram:123\"]'), by a /grant <id> trader "
            "from an admin in BASTION_ADMIN_USERS, or for everyone with BASTION_TRADING_OPEN=true."
        )
    approvals = ApprovalsService(services.sessions, chat, services.executor, services.open_account)
    # Alert rules the grammar cannot read go to the configured model (JSON schema); none without one.
    rule_model = ModelClient(s.model) if s.model.base_url else None
    deps = CommandDeps(
        chat=chat, sessions=services.sessions, secret_box=services.secret_box, store=store, rule_model=rule_model
    )
    deps.reports = build_report_jobs(services, frozenset())  # /report, /reports, /subscribe, /scan
    core = BotCore(
        registry=build_registry(deps),
        chat=chat,
        approvals=approvals,
        sessions=services.sessions,
        policy=policy,
        # In the database on PostgreSQL: a user's budget holds across every worker.
        limiter=user_limiter(
            s.database.url.get_secret_value(), rate_per_minute=s.bot.rate_per_minute, burst=s.bot.burst
        ),
        stream_interval_s=s.bot.stream_interval_s,
    )
    deps.forget_user = core.forget_user  # /grant and /revoke drop the core's cached permission
    return core


def build_telegram(services: Services, core: BotCore) -> TelegramChannel:
    """The Telegram channel from the settings."""
    t = services.settings.telegram
    return TelegramChannel(
        core,
        t.token.get_secret_value(),
        base_url=t.base_url,
        mode=t.mode,
        webhook_url=t.webhook_url,
        webhook_secret=t.webhook_secret.get_secret_value() or None,
    )


def build_discord(services: Services, core: BotCore) -> DiscordChannel:
    """The Discord channel from the settings (commands synced to the configured guilds, else globally)."""
    d = services.settings.discord
    symbols = getattr(services.market, "symbols", None)  # the simulated market lists its symbols; others may not
    return DiscordChannel(core, d.token.get_secret_value(), guild_ids=d.guild_ids, symbols=symbols)


@dataclass
class Server:
    """Everything `bastion serve` runs; `run` returns after `stop` is set and all parts stopped."""

    services: Services
    core: BotCore
    telegram: TelegramChannel | None = None
    discord: DiscordChannel | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)  # set once every part is up
    api_port: int | None = None  # the bound port once the API is up (0 in settings = any free port)
    leadership: Leadership | None = None  # set in `run`: whether this process leads (runs jobs and delivery)
    inbox: WebhookInbox | None = None  # the durable webhook inbox, in webhook mode
    metrics: Metrics = field(default_factory=Metrics)  # this process's registry, served on /metrics
    _uvicorn: uvicorn.Server | None = None

    def senders(self) -> dict[str, Sender]:
        """Outbox senders of the running channels."""
        out: dict[str, Sender] = {}
        if self.telegram is not None:
            telegram = TelegramSender(self.telegram.application.bot, on_sent=self._remember_button_message)
            out["telegram"] = ReportChartSender(telegram, self.services.sessions)  # report charts from the table
        if self.discord is not None:
            discord = DiscordSender(self.discord.client, on_sent=self._remember_discord_message)
            out["discord"] = ReportChartSender(discord, self.services.sessions)
        return {name: CountingSender(sender, self.metrics) for name, sender in out.items()}

    def editors(self) -> dict[str, MessageEditor]:
        """Message editors of the running channels (approval expiry)."""
        editors: dict[str, MessageEditor] = {"telegram": self.telegram.editor} if self.telegram is not None else {}
        if self.discord is not None:
            editors["discord"] = self.discord.editor
        return editors

    async def _remember_button_message(self, payload: dict[str, Any], ref: str) -> None:
        token = payload.get(APPROVAL_TOKEN)
        if token:
            await self.core.approvals.attach_message(str(token), "telegram", ref)

    async def _remember_discord_message(self, payload: dict[str, Any], ref: str) -> None:
        token = payload.get(APPROVAL_TOKEN)
        if token:
            await self.core.approvals.attach_message(str(token), "discord", ref)

    async def _sweep(self) -> None:
        self.metrics.approvals.labels(outcome="expired").inc(await self.core.expire_approvals(self.editors()))

    def _jobs(self, senders: dict[str, Sender]) -> JobScheduler:
        """The deployment's scheduled jobs: the approval expiry sweep and, when enabled, the position monitor."""
        s = self.services.settings
        jobs = JobScheduler(s.database.url.get_secret_value(), timezone=s.scheduler.timezone)
        jobs.every("approval-expiry", s.bot.approval_sweep_s, self._sweep)
        # Paper limit entries past their expiry are cancelled at market time and their owners told once.
        notifier = OutboxNotifier(self.services.sessions, frozenset(senders))
        expiry = LimitExpirySweep(self.services.sessions, self.services.open_account, notifier)
        jobs.every("limit-expiry", s.bot.approval_sweep_s, expiry.run)
        if self.inbox is not None:
            inbox = self.inbox

            async def prune_inbox() -> None:
                await inbox.prune()

            jobs.every("inbox-prune", 3600, prune_inbox)
        limiter = self.core.limiter

        async def prune_rate_buckets() -> None:
            await limiter.prune()  # buckets full again are the same as none

        jobs.every("rate-bucket-prune", 3600, prune_rate_buckets)
        if s.scheduler.enabled:
            monitor = Monitor(
                self.services.sessions,
                open_account=self.services.open_account,
                views=StructureMarketViews(self.services.market),
                executor=self.services.executor,
                notifier=OutboxNotifier(self.services.sessions, frozenset(senders)),
                approval_ttl=timedelta(seconds=s.risk.approval_ttl_s),
            )

            async def cycle() -> None:
                with self.metrics.monitor_cycle.time():
                    await monitor.run_cycle()

            jobs.every("position-monitor", s.scheduler.monitor_interval_s, cycle)
            premium = self.services.premium  # liquidation and whale rules are active only with their providers
            alert_job = AlertJob(
                self.services.sessions,
                self.services.market,
                liquidations=premium.derivatives if premium is not None else None,
                whales=premium.whales if premium is not None else None,
                watchlist=s.scheduler.alert_watchlist,
            )

            async def alert_cycle() -> None:
                await alert_job.run_cycle()

            jobs.every("alerts", s.scheduler.alerts_interval_s, alert_cycle)
            reports = build_report_jobs(self.services, frozenset(senders))

            async def report_slots() -> None:
                await reports.tick()

            async def elite_scan() -> None:
                await reports.run_scan()

            jobs.every("report-slots", s.reports.tick_s, report_slots)
            jobs.cron("elite-scan", s.reports.scan_cron, elite_scan)
        return jobs

    async def _settle(self, older_than: timedelta) -> None:
        """Settle the orders an interrupted process left (pending executions, consumed approvals) and tell their
        chats; failures are logged and retried at the next run."""
        try:
            settled = await self.core.approvals.settle(older_than)
            if settled:
                log.info("settled %d interrupted order(s)", len(settled))
                await self.core.approvals.tell(settled, self.editors())
        except Exception:
            log.exception("settling interrupted orders failed")

    def _lead(self, senders: dict[str, Sender]) -> Any:
        """What the leader runs: settlement of interrupted orders, the jobs and one delivery worker per bot token."""
        jobs = self._jobs(senders)
        # On PostgreSQL other workers may be placing an order this very moment: only executions older than their
        # in-flight window are looked up (at each term's start and then every minute, so a SIGKILLed leader's
        # leftovers are settled by its successor). On SQLite the one process has nothing in flight elsewhere, and
        # its own placements hold the account lock settlement takes.
        one_process = self.services.settings.database.is_sqlite
        older_than = timedelta(0) if one_process else IN_FLIGHT
        if not one_process:

            async def settle_job() -> None:
                await self._settle(IN_FLIGHT)

            jobs.every("settle-interrupted", 60, settle_job)

        async def lead(term: asyncio.Event) -> None:
            await self._settle(older_than)
            delivery = None
            if senders:
                delivery = asyncio.create_task(
                    DeliveryWorker(
                        self.services.sessions,
                        senders,
                        lease_s=self.services.settings.bot.outbox_lease_s,
                        concurrency=self.services.settings.bot.outbox_concurrency,
                    ).run(term)
                )
            try:
                await jobs.lead(term)
            finally:
                if delivery is not None:
                    await asyncio.gather(delivery, return_exceptions=True)

        return lead

    def _routers(self) -> list[Any]:
        """The operator API (/healthz, /readyz with each dependency) and the signal webhook."""
        s, svc = self.services.settings, self.services
        checks = {
            "database": bool_check(database_check(svc.engine), "reachable", "unreachable"),
            "migrations": migrations_check(svc.engine),
            "scheduler": leader_check(lambda: None if self.leadership is None else self.leadership.is_leader),
            "model": model_check(s.model),
            "market_data": market_check(svc.market),
        }
        self.metrics.on_scrape(outbox_depth(svc.sessions, self.metrics))
        secret = s.api.signal_secret.get_secret_value() or None
        signals = SignalService(svc.sessions, toolkit_analysis(self.core.chat.toolkit), frozenset(self.senders()))
        reports = reports_router(svc.sessions)  # GET /v1/reports, /v1/reports/{id}
        return [ops_router(checks, __version__), signals_router(signals, secret, self.metrics), reports]

    def _api(self) -> uvicorn.Server:
        s = self.services.settings
        if self.telegram is not None and self.telegram.mode == "webhook":
            # Each update is stored in the inbox table before the 200 answer, and handled once by one worker.
            self.inbox = WebhookInbox(
                self.services.sessions,
                self.telegram,
                lease_s=s.api.inbox_lease_s,
                concurrency=s.api.inbox_concurrency,
                reply_budget_s=s.api.webhook_reply_budget_s,
            )
        app = create_app(
            database_ok=database_check(self.services.engine),
            telegram=self.inbox,
            telegram_secret=s.telegram.webhook_secret.get_secret_value() or None,
            update_loop=self.telegram,
            version=__version__,
            leader=lambda: self.leadership is not None and self.leadership.is_leader,
            metrics=self.metrics,
            routers=self._routers(),
        )
        # httptools parses HTTP in C: h11, uvicorn's pure-Python fallback, cost more CPU per webhook request.
        config = uvicorn.Config(
            app, host=s.api.host, port=s.api.port, log_level="warning", lifespan="off", http="httptools"
        )
        return uvicorn.Server(config)

    async def run(self) -> None:
        """Start the channels, the API and the jobs; stop them all when `stop` is set."""
        s = self.services.settings
        senders = self.senders()
        tasks: list[asyncio.Task[Any]] = []
        if s.api.enabled:
            self._uvicorn = self._api()
            tasks.append(asyncio.create_task(self._uvicorn.serve(), name="api"))
            while not self._uvicorn.started:
                if tasks[-1].done():
                    await tasks[-1]  # surfaces the bind error
                await asyncio.sleep(0.02)
            self.api_port = self._uvicorn.servers[0].sockets[0].getsockname()[1]
            log.info("API listening on %s:%s", s.api.host, self.api_port)
        if self.telegram is not None:
            await self.telegram.start()
        if self.discord is not None:
            await self.discord.start()
        if self.inbox is not None:
            self.inbox.ready.set()
            tasks.append(asyncio.create_task(self.inbox.run(self.stop), name="inbox-recovery"))
        # Settlement of interrupted orders, jobs and delivery run in the leader only (one per deployment); the
        # others stand by and take over within `leader_check_s` of its death.
        lock = leader_lock(s.database.url.get_secret_value())
        self.leadership = Leadership(lock, check_s=s.scheduler.leader_check_s)
        tasks.append(asyncio.create_task(self.leadership.run(self.stop, self._lead(senders)), name="leadership"))
        # The start-up heap (libraries, models, caches) is permanent: keep it out of later collections, which
        # would otherwise stall the loop for ~0.1 s on a full pass over it.
        gc.collect()
        gc.freeze()
        self.started.set()
        try:
            await self.stop.wait()
        finally:
            try:
                if self._uvicorn is not None:
                    self._uvicorn.should_exit = True
                if self.inbox is not None:
                    # Updates already answered 200 finish while the channel still runs (a crash leaves them stored).
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.inbox.drain(), 30)
                if self.telegram is not None:
                    await self.telegram.stop()
                if self.discord is not None:
                    await self.discord.stop()
                self.stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                await lock.dispose()
            finally:
                # The start-up heap goes back to the collector: a process that runs a server and goes on (the tests,
                # an embedding) would otherwise keep every later server's start-up objects out of collections.
                gc.unfreeze()


@contextlib.asynccontextmanager
async def open_server(services: Services) -> AsyncIterator[Server]:
    """A `Server` over the services, with the analyst's persistence open for its lifetime."""
    from agents.persistence import open_persistence
    from agents.wiring import build_chat, build_chat_model

    metrics = Metrics()
    model = None
    if services.settings.model.base_url:  # the analyst's calls to a configured model are counted and timed
        model = build_chat_model(services.settings.model)
        model.callbacks = [ModelCallCounter(metrics)]
    async with open_persistence(services.settings.database) as persistence:
        chat = build_chat(services, persistence, model)
        core = build_core(services, chat, persistence.store)
        telegram = build_telegram(services, core) if services.settings.telegram.enabled else None
        discord = build_discord(services, core) if services.settings.discord.enabled else None
        server = Server(services, core, telegram, discord, metrics=metrics)
        core.metrics = server.metrics  # messages, commands, presses, errors, latency
        server.metrics.instrument_executor(services.executor)  # orders by outcome
        try:
            yield server
        finally:
            await core.limiter.close()  # the connection of its buckets in the database (PostgreSQL)
