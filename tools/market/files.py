"""Candle files: discovery and loading of ccxt CSV and freqtrade feather/JSON downloads."""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tools.market.base import TIMEFRAME_SECONDS, MarketDataError
from tools.market.features import OhlcvArrays, rows_to_arrays
from tools.market.symbols import SymbolParts

# BTC_USDT-1h.csv (spot), BTC_USDT_USDT-1h.feather or BTC_USDT_USDT-1h-futures.feather (freqtrade futures).
_FILE = re.compile(
    r"^(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)(?:_(?P<settle>[A-Za-z0-9]+))?"
    r"-(?P<tf>\d+[mhdwM])(?:-(?P<kind>futures|spot))?\.(?P<ext>csv|feather|json|json\.gz|jsongz)$"
)
# Where one series exists in several formats, the fastest to load wins.
_EXT_PRIORITY = {"feather": 0, "csv": 1, "json": 2, "json.gz": 3, "jsongz": 3}


@dataclass(frozen=True, slots=True)
class CandleFile:
    """One discovered candle file."""

    path: Path
    parts: SymbolParts
    timeframe: str
    ext: str
    futures: bool


def discover(data_dir: Path) -> dict[tuple[str, str], CandleFile]:
    """Candle files in `data_dir` (and its freqtrade `futures/` folder), keyed by (base, timeframe)."""
    found: dict[tuple[str, str], CandleFile] = {}
    folders = [data_dir, data_dir / "futures"]
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            match = _FILE.match(path.name)
            if not match or match["tf"] not in TIMEFRAME_SECONDS:
                continue
            quote = match["quote"].upper()
            parts = SymbolParts(match["base"].upper(), quote, (match["settle"] or quote).upper())
            futures = bool(match["settle"]) or match["kind"] == "futures"
            candidate = CandleFile(path, parts, match["tf"], match["ext"], futures)
            key = (parts.base, candidate.timeframe)
            current = found.get(key)
            if current is None or _rank(candidate) < _rank(current):
                found[key] = candidate
    return found


def _rank(file: CandleFile) -> tuple[int, int]:
    # A futures file describes the perp better than a spot one.
    return (0 if file.futures else 1), _EXT_PRIORITY[file.ext]


def load(file: CandleFile) -> OhlcvArrays:
    """Read a candle file into arrays (open time in ms, ascending, unique)."""
    try:
        if file.ext == "csv":
            return _load_csv(file.path)
        if file.ext == "feather":
            return _load_frame(pd.read_feather(file.path))
        return _load_json(file.path, gzipped=file.ext != "json")
    except MarketDataError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise MarketDataError(f"Cannot read candle file {file.path.name}: {exc}") from exc


def _load_csv(path: Path) -> OhlcvArrays:
    head = pd.read_csv(path, nrows=0)
    if "timestamp" in head.columns:
        df = pd.read_csv(path, usecols=["timestamp", "open", "high", "low", "close", "volume"])
        ts = df["timestamp"].to_numpy(dtype=np.int64)
        return _arrays(ts, df)
    return _load_frame(pd.read_csv(path))


def _load_frame(df: pd.DataFrame) -> OhlcvArrays:
    """freqtrade frames carry a `date` column (UTC datetime); ccxt-style ones a `timestamp` in ms."""
    if "timestamp" in df.columns:
        return _arrays(df["timestamp"].to_numpy(dtype=np.int64), df)
    for name in ("date", "datetime", "time"):
        if name in df.columns:
            dates = pd.to_datetime(df[name], utc=True)
            ts = dates.to_numpy(dtype="datetime64[ms]").astype(np.int64)
            return _arrays(ts, df)
    raise MarketDataError("Candle file has no timestamp/date column.")


def _load_json(path: Path, gzipped: bool) -> OhlcvArrays:
    raw = gzip.decompress(path.read_bytes()) if gzipped else path.read_bytes()
    rows = json.loads(raw)
    # freqtrade's default JSON orient is "values": [[ms, o, h, l, c, v], ...].
    if rows and isinstance(rows[0], dict):
        return _load_frame(pd.DataFrame(rows))
    return rows_to_arrays(rows)


def _arrays(ts: np.ndarray, df: pd.DataFrame) -> OhlcvArrays:
    cols = [df[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close", "volume")]
    if len(ts) > 1 and not np.all(ts[1:] > ts[:-1]):
        return rows_to_arrays(np.column_stack([ts.astype(np.float64), *cols]).tolist())
    return OhlcvArrays(np.ascontiguousarray(ts, dtype=np.int64), *cols)
