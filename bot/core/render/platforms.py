"""Render and split for a platform: Telegram HTML, Discord Markdown or the console's plain text."""

from __future__ import annotations

import re

from bot.core.render.discord import to_discord
from bot.core.render.plain import to_plain
from bot.core.render.split import Markup, split_message
from bot.core.render.telegram_html import to_telegram_html

TELEGRAM_LIMIT = 4096
DISCORD_LIMIT = 2000
DISCORD_EMBED_LIMIT = 4096

_TAG = re.compile(r"<[^<>]*>")


def _visible(chunk: str, markup: Markup) -> str:
    if markup == "html":
        chunk = _TAG.sub("", chunk)
    return chunk.strip()


def render_for(platform: str, md: str) -> list[str]:
    """Render and split for a platform: "telegram" (HTML ≤4096), "discord" (≤2000) or "console" (one chunk)."""
    if platform == "telegram":
        markup: Markup = "html"
        chunks = split_message(to_telegram_html(md), TELEGRAM_LIMIT, "html")
    elif platform == "discord":
        markup = "markdown"
        chunks = split_message(to_discord(md), DISCORD_LIMIT, "markdown")
    elif platform == "console":
        return [to_plain(md)]
    else:
        raise ValueError(f"unknown platform {platform!r}")
    return [c for c in chunks if _visible(c, markup)]  # the platforms refuse blank messages
