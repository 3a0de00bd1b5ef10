"""The console adapter: reads lines, runs turns, asks `approve? [y/N]` for proposed orders."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agents.runner import AnalystChat, ApprovalRequest, Reply
from agents.state import TurnContext
from bot.core.approvals import Settlement
from engine.access import LOCAL_PLATFORMS
from storage.exchange_ids import PAPER
from storage.models import AccountMode
from storage.repositories import accounts as accounts_repo
from storage.repositories import engine as engine_repo
from storage.repositories import users as users_repo

T = TypeVar("T")
PLATFORM = "console"
CONSOLE_USER = "local"
EXIT_WORDS = frozenset({"exit", "quit", "/exit", "/quit"})
HELP_WORDS = frozenset({"/help", "help", "/start"})
YES = frozenset({"y", "yes"})
# What `line_reader` yields for a Ctrl-C: a line of its own, so the next real line is never taken for an answer.
INTERRUPTED = "\x03"


async def ensure_console_user(
    sessions: async_sessionmaker[AsyncSession], label: str = "paper", platform_user_id: str = CONSOLE_USER
) -> int:
    """The console user's id; on first start it gets an armed paper account in advise mode (zero setup)."""
    async with sessions.begin() as session:
        user = await users_repo.get_or_create_user(session, PLATFORM, platform_user_id, display_name="console")
        assert user.id is not None
        if not await accounts_repo.list_accounts(session, user.id):
            row = await accounts_repo.add_account(
                session, None, user_id=user.id, exchange_id=PAPER, label=label, credentials={}
            )
            assert row.id is not None
            await engine_repo.set_account_mode(session, row.id, mode=AccountMode.ADVISE, armed=True)
        return user.id


class ConsoleChat:
    """One console conversation: every line is a turn; an order proposal reads the next line as the answer."""

    def __init__(
        self,
        chat: AnalystChat,
        user_id: int,
        write: Callable[[str], None],
        help_text: str,
        thread_id: str = "console:local",
    ) -> None:
        self.chat = chat
        # The console is the operator's own terminal: a local platform, which always trades its paper account.
        self.ctx = TurnContext(
            user_id=user_id, platform=PLATFORM, chat_ref=thread_id, may_trade=PLATFORM in LOCAL_PLATFORMS
        )
        self.thread_id = thread_id
        self.write = write
        self.help_text = help_text

    async def run(self, lines: Iterator[str], prompt: Callable[[str], None] | None = None) -> None:
        """Handle lines until EOF or an exit word."""
        for raw in lines:
            if raw == INTERRUPTED:
                self.write("(Ctrl-C: nothing to cancel; Ctrl-D or 'exit' leaves)")
                continue
            text = raw.strip()
            if not text:
                continue
            if text.lower() in EXIT_WORDS:
                return
            if text.lower() in HELP_WORDS:
                self.write(self.help_text)
                continue
            try:
                reply = await cancellable(self.chat.ask(self.ctx, self.thread_id, text))
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the chat itself is being stopped, not just this turn
                self.write("Interrupted: that turn was cancelled; ask again or Ctrl-D to leave.")
                continue
            self.show(reply)
            if reply.approval is not None:
                await self._confirm(reply, lines, prompt)

    async def settled(
        self, settlements: Sequence[Settlement], lines: Iterator[str], prompt: Callable[[str], None] | None = None
    ) -> None:
        """Tell what became of this user's orders interrupted last time; a reopened one may be approved now."""
        for item in settlements:
            row = item.approval
            if row.owner_user_id != self.ctx.user_id:
                continue
            self.write(f"An order interrupted last time: {row.summary}\n{item.text}")
            if item.reopened:
                request = ApprovalRequest(row.token, row.summary, row.expires_at.isoformat())
                await self._confirm(Reply("", approval=request), lines, prompt)

    async def _confirm(self, reply: Reply, lines: Iterator[str], prompt: Callable[[str], None] | None) -> None:
        assert reply.approval is not None
        (prompt or self.write)("approve? [y/N] ")
        raw = next(lines, "")
        if raw == INTERRUPTED:
            self.write("\nInterrupted: rejected.")
            answer = ""
        else:
            answer = raw.strip().lower()
            if prompt is None:
                self.write(answer or "(no answer)")
        result = await self.chat.decide(self.ctx, reply.approval.token, approve=answer in YES)
        self.show(result)

    def show(self, reply: Reply) -> None:
        """Print a reply, and a note for each picture it carries (a terminal shows no images; nothing is saved)."""
        if reply.text:
            self.write(reply.text)
        for png in reply.photos:
            self.write(f"(chart drawn: {len(png) // 1024} KiB PNG; to save one: bastion analyze SYMBOL --chart FILE)")


async def cancellable(turn: Coroutine[Any, Any, T]) -> T:
    """Run one turn so that Ctrl-C cancels it (CancelledError here) instead of ending the whole chat."""
    task = asyncio.ensure_future(turn)
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGINT)
    try:
        loop.add_signal_handler(signal.SIGINT, task.cancel)
    except (NotImplementedError, RuntimeError, ValueError):  # no signals here (a thread, Windows): just run it
        return await task
    try:
        return await task
    finally:
        # Back to what reads lines expect (`interruptible_reads`): a Ctrl-C at the prompt is a line of its own.
        loop.remove_signal_handler(signal.SIGINT)
        signal.signal(signal.SIGINT, previous)


def line_reader(stream: Any) -> Iterator[str]:
    """Lines of a text stream, read lazily (so approvals read the line after the proposal); a Ctrl-C while waiting
    for a line is yielded as `INTERRUPTED` and reading goes on (see `interruptible_reads`)."""
    while True:
        try:
            line = stream.readline()
        except KeyboardInterrupt:
            yield INTERRUPTED
            continue
        if not line:
            return
        yield line


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def interruptible_reads() -> Iterator[None]:
    """Let Ctrl-C interrupt a blocking line read.

    asyncio.run replaces Python's default SIGINT handler with one that only cancels the main task, which a
    blocking `readline` never notices: the press would take effect after the next line, swallowing it. A handler
    of our own (not the default one, so asyncio keeps it) raises KeyboardInterrupt in the read itself.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
