"""Rendered charts kept in memory between the tool that drew them and the channel that sends them."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

CHART_ID_PREFIX = "chart:"


class ChartStore:
    """A bounded in-process store of PNG bytes keyed by a short id.

    The conversation state carries only the id (checkpoints stay small, and no file is written on the server);
    the bytes are taken once when the reply is sent. Charts nobody takes (a failed turn) are evicted oldest first
    once `max_charts` or `max_bytes` is exceeded, so the store never grows without bound.
    """

    def __init__(self, max_charts: int = 64, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_charts = max_charts
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size_bytes(self) -> int:
        """Bytes held now."""
        return self._bytes

    def put(self, png: bytes) -> str:
        """Keep `png` and return its id (the same picture twice gets the same id)."""
        chart_id = CHART_ID_PREFIX + hashlib.sha256(png).hexdigest()[:16]
        old = self._items.pop(chart_id, None)
        if old is not None:
            self._bytes -= len(old)
        self._items[chart_id] = png
        self._bytes += len(png)
        while len(self._items) > 1 and (len(self._items) > self.max_charts or self._bytes > self.max_bytes):
            _, evicted = self._items.popitem(last=False)
            self._bytes -= len(evicted)
        return chart_id

    def get(self, chart_id: str) -> bytes | None:
        """The PNG of `chart_id`, still kept; None when unknown or evicted."""
        return self._items.get(chart_id)

    def take(self, chart_id: str) -> bytes | None:
        """The PNG of `chart_id`, removed from the store; None when unknown or evicted."""
        png = self._items.pop(chart_id, None)
        if png is not None:
            self._bytes -= len(png)
        return png
