"""Rendering of the bot's Markdown subset for Telegram (HTML), Discord (Markdown) and plain text, and splitting.

The analyst and the command handlers write a small Markdown subset, parsed by markdown-it-py (`parse`, with the
rules in `rules`):

- inline: ``**bold**``, ``*italic*`` / ``_italic_``, `` `code` ``, ``[text](url)`` and backslash escapes; inline
  constructs may span the lines of one paragraph;
- blocks: ``# heading`` (rendered bold), ``- item`` / ``* item`` (bullet "•"), ``1. item`` (kept as written),
  ``> quote`` (consecutive lines form one quote), fenced code blocks (```` ``` ```` or ``~~~``, optional language).

Everything else is literal text, and the output keeps the input's lines. The renderers (`telegram_html`,
`discord`, `plain`) work on a tree, so the Telegram HTML is balanced whatever the input; `split` cuts rendered text
to the platform limits in UTF-16 units, closing and reopening markup at the cuts; `platforms.render_for` does both.
"""

from bot.core.render.discord import to_discord
from bot.core.render.parse import parse
from bot.core.render.plain import to_plain
from bot.core.render.platforms import DISCORD_EMBED_LIMIT, DISCORD_LIMIT, TELEGRAM_LIMIT, render_for
from bot.core.render.split import Chunk, Markup, plan_split, split_message, utf16_len
from bot.core.render.telegram_html import to_telegram_html

__all__ = [
    "DISCORD_EMBED_LIMIT",
    "DISCORD_LIMIT",
    "TELEGRAM_LIMIT",
    "Chunk",
    "Markup",
    "parse",
    "plan_split",
    "render_for",
    "split_message",
    "to_discord",
    "to_plain",
    "to_telegram_html",
    "utf16_len",
]
