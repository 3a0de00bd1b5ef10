"""Build the configured market data provider from settings (no global instance: callers own it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from tools.market.base import MarketData
from tools.market.ccxt_live import CcxtMarketData
from tools.market.replay import ReplayMarketData
from tools.market.simulated import SimulatedMarketData

DATA_DIR_ENV = "BASTION_DATA_DIR"


class MarketDataSettings(Protocol):
    """The fields of `bastion.settings.ExchangeSettings` this factory reads (tools never import bastion)."""

    @property
    def market_data(self) -> str:
        """simulated | ccxt | replay."""
        ...

    @property
    def market_exchange(self) -> str:
        """ccxt id of the live market data exchange."""
        ...

    @property
    def fallback_exchange(self) -> str | None:
        """ccxt id of the candle fallback exchange."""
        ...

    @property
    def data_dir(self) -> Path:
        """Candle files of the replay provider."""
        ...

    @property
    def sandbox(self) -> bool:
        """Use testnets."""
        ...


def resolve_data_dir(configured: Path | str, root: Path | None = None) -> Path:
    """The candle folder: $BASTION_DATA_DIR if set, else `configured` (relative paths from `root` or cwd)."""
    raw = os.environ.get(DATA_DIR_ENV) or str(configured)
    path = Path(raw).expanduser()
    if not path.is_absolute() and root is not None:
        path = root / path
    return path


def build_market_data(settings: MarketDataSettings, *, seed: int = 0, data_dir: Path | str | None = None) -> MarketData:
    """The provider named by `settings.market_data`: simulated (default), ccxt (live) or replay (files)."""
    if settings.market_data == "ccxt":
        return CcxtMarketData.from_ids(settings.market_exchange, settings.fallback_exchange, sandbox=settings.sandbox)
    if settings.market_data == "replay":
        folder = Path(data_dir) if data_dir is not None else resolve_data_dir(settings.data_dir)
        return ReplayMarketData(folder)
    return SimulatedMarketData(seed=seed)
