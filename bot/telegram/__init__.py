"""The Telegram channel (python-telegram-bot 22)."""

import os

# Opt in to PTB's future behaviour (durations as timedelta) now; the adapter handles both forms.
os.environ.setdefault("PTB_TIMEDELTA", "true")
