"""Send-rate limits per platform: an overall rate and a minimum spacing per chat (groups slower)."""

from __future__ import annotations

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


@dataclass
class RateLimiter:
    """Decides when the next message to a chat may go, given what was already sent (times in seconds)."""

    limits: PlatformLimits
    _window: list[float] = field(default_factory=list)  # send times within the last second
    _last_by_chat: dict[str, float] = field(default_factory=dict)
    _paused_until: float = 0.0
    _next_prune: float = float("-inf")

    def ready_at(self, chat: str, is_group: bool, now: float) -> float:
        """Earliest time a message to `chat` may be sent."""
        self._window = [t for t in self._window if t > now - 1.0]
        at = max(now, self._paused_until)
        if len(self._window) >= self.limits.per_second:
            at = max(at, self._window[-int(self.limits.per_second)] + 1.0)
        last = self._last_by_chat.get(chat)
        if last is not None:
            gap = self.limits.group_interval_s if is_group else self.limits.chat_interval_s
            at = max(at, last + gap)
        return at

    def record(self, chat: str, at: float) -> None:
        """Note a message sent to `chat` at `at`."""
        self._window.append(at)
        self._last_by_chat[chat] = at
        self._prune(at)

    def delivered(self, chat: str, at: float) -> None:
        """Note that the message to `chat` finished at `at`: the per-chat spacing counts from its arrival."""
        self._last_by_chat[chat] = max(self._last_by_chat.get(chat, at), at)

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
