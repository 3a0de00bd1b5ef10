"""Send-rate limits per platform: an overall rate and a minimum spacing per chat (groups slower)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PlatformLimits:
    """Limits of one platform's bot API."""

    per_second: float  # messages per second for the whole bot
    chat_interval_s: float  # minimum spacing between two messages to one chat
    group_interval_s: float  # minimum spacing in a group chat


# Telegram: about 30 messages/s per bot, 1/s per chat, 20/min per group. Discord buckets are per route;
# 5 messages per 5 s per channel is the documented channel limit.
TELEGRAM = PlatformLimits(per_second=30.0, chat_interval_s=1.0, group_interval_s=3.0)
DISCORD = PlatformLimits(per_second=40.0, chat_interval_s=1.0, group_interval_s=1.0)
DEFAULT_LIMITS = {"telegram": TELEGRAM, "discord": DISCORD}
# How soon to look again when every slot of the second is held by an unanswered request.
IN_FLIGHT_POLL_S = 0.02


@dataclass
class RateLimiter:
    """Decides when the next message to a chat may go, given what was already sent (times in seconds).

    The platform counts a message when it arrives, anywhere between the request's start and its answer. So a
    request occupies a slot of the per-second budget from its start until one second after its answer: at any
    start, every other request that can arrive in the same second is counted, and no second (sliding, hence no
    calendar second) ever sees more than `per_second` arrivals, however the latencies spread under a 429 storm.
    """

    limits: PlatformLimits
    _finished: deque[float] = field(default_factory=deque)  # answer times within the last second, in order
    _in_flight: int = 0
    _last_by_chat: dict[str, float] = field(default_factory=dict)
    _paused_until: float = 0.0
    _next_prune: float = float("-inf")

    def ready_at(self, chat: str, is_group: bool, now: float) -> float:
        """Earliest time a message to `chat` may be sent (`now` + a short wait while only answers can free a slot)."""
        while self._finished and self._finished[0] <= now - 1.0:
            self._finished.popleft()
        at = max(now, self._paused_until)
        excess = self._in_flight + len(self._finished) - int(self.limits.per_second) + 1
        if excess > 0:
            if excess <= len(self._finished):
                at = max(at, self._finished[excess - 1] + 1.0)
            else:  # every slot is held by a request still waiting for its answer
                at = max(at, now + IN_FLIGHT_POLL_S)
        last = self._last_by_chat.get(chat)
        if last is not None:
            gap = self.limits.group_interval_s if is_group else self.limits.chat_interval_s
            at = max(at, last + gap)
        return at

    def record(self, chat: str, at: float) -> None:
        """Note a request to `chat` started at `at`; `delivered` must follow when it is answered (or failed)."""
        self._in_flight += 1
        self._last_by_chat[chat] = at
        self._prune(at)

    def delivered(self, chat: str, at: float) -> None:
        """Note that the request to `chat` was answered at `at`: per-chat spacing and its budget slot count from it."""
        self._in_flight = max(0, self._in_flight - 1)
        if self._finished and at < self._finished[-1]:
            at = self._finished[-1]  # a clock never goes back; keeps the deque ordered
        self._finished.append(at)
        self._last_by_chat[chat] = max(self._last_by_chat.get(chat, at), at)

    def in_flight(self) -> int:
        """Requests started and not yet answered."""
        return self._in_flight

    def tracked_chats(self) -> int:
        """How many chats' last send times are kept."""
        return len(self._last_by_chat)

    def _prune(self, now: float) -> None:
        # A chat last sent to longer ago than the widest spacing constrains nothing any more: forget it, so the map
        # holds the chats of the last few seconds however many chats the bot has ever written to. One sweep per
        # spacing interval keeps the cost constant per message.
        if now < self._next_prune:
            return
        horizon = max(self.limits.chat_interval_s, self.limits.group_interval_s)
        cutoff = now - horizon
        self._last_by_chat = {c: t for c, t in self._last_by_chat.items() if t > cutoff}
        self._next_prune = now + horizon

    def pause(self, until: float) -> None:
        """Stop all sending until `until` (the platform answered 429 with retry_after)."""
        self._paused_until = max(self._paused_until, until)
