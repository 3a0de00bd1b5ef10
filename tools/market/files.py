"""Candle and funding-rate files: discovery and loading of ccxt CSV and freqtrade feather/JSON downloads."""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tools.market.base import TIMEFRAME_SECONDS, MarketDataError
from tools.market.features import OhlcvArrays
from tools.market.symbols import SymbolParts

# BTC_USDT-1h.csv (spot), BTC_USDT_USDT-1h.feather or BTC_USDT_USDT-1h-futures.feather (freqtrade futures).
_FILE = re.compile(
    r"^(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)(?:_(?P<settle>[A-Za-z0-9]+))?"
    r"-(?P<tf>\d+[mhdwM])(?:-(?P<kind>futures|spot))?\.(?P<ext>csv|feather|json|json\.gz|jsongz)$"
)
# BTC_USDT_USDT-8h-funding_rate.feather (freqtrade: one row per funding event, the rate in `open`) or
# BTC_USDT_USDT-funding.csv (ccxt's fetch_funding_rate_history written out: timestamp, fundingRate).
_FUNDING_FILE = re.compile(
    r"^(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)(?:_(?P<settle>[A-Za-z0-9]+))?"
    r"(?:-\d+[mhdwM])?-(?:funding_rate|funding)\.(?P<ext>csv|feather|json|json\.gz|jsongz)$"
)
_RATE_COLUMNS = ("fundingRate", "funding_rate", "rate", "open")
# A funding rate beyond 10% per interval is not a rate any venue pays: a wrong column or a corrupt file.
MAX_FUNDING_RATE = 0.1
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
    for path in _data_files(data_dir):
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


def _data_files(data_dir: Path) -> list[Path]:
    """The files of `data_dir` and of its freqtrade `futures/` folder, in name order per folder."""
    folders = [f for f in (data_dir, data_dir / "futures") if f.is_dir()]
    return [path for folder in folders for path in sorted(folder.iterdir())]


@dataclass(frozen=True, slots=True)
class FundingFile:
    """One discovered funding-rate file of a perpetual."""

    path: Path
    base: str
    ext: str


@dataclass(frozen=True, slots=True)
class FundingRates:
    """The funding events of one perpetual: time (epoch ms, ascending, unique) and the rate longs pay shorts there
    (a fraction of the position's value; negative: shorts pay longs)."""

    ts: np.ndarray
    rate: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.ts)

    def per_bar(self, bar_open_ms: np.ndarray, tf_ms: int) -> np.ndarray:
        """The rates of the events inside each bar, summed: an event at time e belongs to the bar with
        open < e <= open + tf (it is paid by what is still open at that bar's close). 0 where none fell."""
        total = np.concatenate([[0.0], np.cumsum(self.rate)])
        opens = np.asarray(bar_open_ms, dtype=np.int64)
        lo = np.searchsorted(self.ts, opens, side="right")
        hi = np.searchsorted(self.ts, opens + tf_ms, side="right")
        return total[hi] - total[lo]

    def settled_by(self, ms: int) -> int | None:
        """Index of the last event at or before `ms` (what is known then), None before the first."""
        i = int(np.searchsorted(self.ts, ms, side="right")) - 1
        return None if i < 0 else i

    def interval_ms(self) -> int | None:
        """The usual time between events (the median of the last steps), None with fewer than two events."""
        if len(self.ts) < 2:
            return None
        return int(np.median(np.diff(self.ts[-50:])))


def discover_funding(data_dir: Path) -> dict[str, FundingFile]:
    """Funding-rate files in `data_dir` and its freqtrade `futures/` folder, keyed by base (feather first)."""
    found: dict[str, FundingFile] = {}
    for path in _data_files(data_dir):
        match = _FUNDING_FILE.match(path.name)
        if not match:
            continue
        candidate = FundingFile(path, match["base"].upper(), match["ext"])
        current = found.get(candidate.base)
        if current is None or _EXT_PRIORITY[candidate.ext] < _EXT_PRIORITY[current.ext]:
            found[candidate.base] = candidate
    return found


def load_funding(file: FundingFile) -> FundingRates:
    """Read a funding-rate file: a time column (`timestamp` in ms, or a `date`) and a rate column (`fundingRate`,
    `funding_rate`, `rate`, or freqtrade's `open`); JSON in freqtrade's [[ms, rate, ...], ...] form too."""
    path = file.path
    try:
        if file.ext == "csv":
            frame = pd.read_csv(path)
        elif file.ext == "feather":
            frame = pd.read_feather(path)
        else:
            rows = _json_rows(path, gzipped=file.ext != "json")
            if rows and not isinstance(rows[0], dict):
                rows = [{"timestamp": r[0], "rate": r[1]} for r in rows]
            frame = pd.DataFrame(rows)
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise MarketDataError(f"Cannot read funding file {path.name}: {exc}") from exc
    if frame.empty:
        return FundingRates(np.zeros(0, dtype=np.int64), np.zeros(0), path.name)
    first, unit = (2, "line") if file.ext == "csv" else (1, "row")
    column = next((c for c in _RATE_COLUMNS if c in frame.columns), None)
    if column is None:
        raise MarketDataError(f"Funding file {path.name} has no rate column ({', '.join(_RATE_COLUMNS)}).")
    if "timestamp" in frame.columns:
        ts = pd.to_numeric(frame["timestamp"], errors="coerce").to_numpy(dtype=np.float64)
    else:
        name = next((c for c in ("date", "datetime", "time") if c in frame.columns), None)
        if name is None:
            raise MarketDataError(f"Funding file {path.name} has no timestamp/date column.")
        stamps = pd.to_datetime(frame[name], utc=True, errors="coerce")
        ts = np.where(stamps.isna(), np.nan, stamps.to_numpy(dtype="datetime64[ms]").astype(np.int64))
    rate = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad_time = ~np.isfinite(ts)
        steps = np.diff(ts, prepend=ts[0] - 1 if len(ts) else 0)
        checks = [
            (bad_time, "time"),
            (~np.isfinite(rate) | (np.abs(rate) > MAX_FUNDING_RATE), "rate"),
            (~bad_time & (steps <= 0), "order"),
        ]
    bad = _first_bad_row(checks)
    if bad is not None:
        i, kind = bad
        where = f"Funding file {path.name} {unit} {first + i}"
        if kind == "time":
            raise MarketDataError(f"{where}: no readable time.")
        if kind == "rate":
            raise MarketDataError(
                f"{where}: rate {rate[i]:g} is not a funding rate (a fraction within ±{MAX_FUNDING_RATE:g})."
            )
        raise MarketDataError(f"{where}: time is not after the previous row's (rows must be in time order, unique).")
    return FundingRates(np.ascontiguousarray(ts, dtype=np.int64), np.ascontiguousarray(rate), path.name)


def _rank(file: CandleFile) -> tuple[int, int]:
    # A futures file describes the perp better than a spot one.
    return (0 if file.futures else 1), _EXT_PRIORITY[file.ext]


def load(file: CandleFile) -> OhlcvArrays:
    """Read a candle file into arrays (open time in ms, ascending, unique)."""
    try:
        if file.ext == "csv":
            return _load_csv(file.path)
        if file.ext == "feather":
            return _load_frame(pd.read_feather(file.path), file.path)
        return _load_json(file.path, gzipped=file.ext != "json")
    except MarketDataError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise MarketDataError(f"Cannot read candle file {file.path.name}: {exc}") from exc


def _load_csv(path: Path) -> OhlcvArrays:
    head = pd.read_csv(path, nrows=0)
    # Data rows start on line 2 (line 1 is the header): errors name the line an editor shows.
    if "timestamp" in head.columns:
        df = pd.read_csv(path, usecols=["timestamp", "open", "high", "low", "close", "volume"])
        ts = df["timestamp"].to_numpy(dtype=np.int64)
        return _arrays(ts, df, path, first=2, unit="line")
    return _load_frame(pd.read_csv(path), path, first=2, unit="line")


def _load_frame(df: pd.DataFrame, path: Path, first: int = 1, unit: str = "row") -> OhlcvArrays:
    """freqtrade frames carry a `date` column (UTC datetime); ccxt-style ones a `timestamp` in ms."""
    if "timestamp" in df.columns:
        return _arrays(df["timestamp"].to_numpy(dtype=np.int64), df, path, first, unit)
    for name in ("date", "datetime", "time"):
        if name in df.columns:
            dates = pd.to_datetime(df[name], utc=True)
            ts = dates.to_numpy(dtype="datetime64[ms]").astype(np.int64)
            return _arrays(ts, df, path, first, unit)
    raise MarketDataError(f"Candle file {path.name} has no timestamp/date column.")


def _json_rows(path: Path, gzipped: bool) -> list[Any]:
    """The rows of a freqtrade JSON download (plain or gzipped)."""
    raw = gzip.decompress(path.read_bytes()) if gzipped else path.read_bytes()
    rows: list[Any] = json.loads(raw)
    return rows


def _load_json(path: Path, gzipped: bool) -> OhlcvArrays:
    rows = _json_rows(path, gzipped)
    # freqtrade's default JSON orient is "values": [[ms, o, h, l, c, v], ...].
    if rows and isinstance(rows[0], dict):
        return _load_frame(pd.DataFrame(rows), path)
    data = np.asarray([list(r[:6]) for r in rows], dtype=np.float64).reshape(-1, 6)
    columns = pd.DataFrame(data[:, 1:], columns=["open", "high", "low", "close", "volume"])
    return _arrays(data[:, 0].astype(np.int64), columns, path, first=1, unit="row")


def _arrays(ts: np.ndarray, df: pd.DataFrame, path: Path, first: int, unit: str) -> OhlcvArrays:
    cols = [df[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close", "volume")]
    validate_candles(path, ts, *cols, first=first, unit=unit)
    return OhlcvArrays(np.ascontiguousarray(ts, dtype=np.int64), *cols)


def _first_bad_row(checks: list[tuple[np.ndarray, str]]) -> tuple[int, str] | None:
    """(row, kind) of the first row any check marks bad (on a tie the first check in the list), None if none."""
    found = [(int(np.argmax(mask)), kind) for mask, kind in checks if mask.any()]
    return min(found, key=lambda f: f[0]) if found else None


def validate_candles(
    path: Path,
    ts: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    *,
    first: int = 1,
    unit: str = "row",
) -> None:
    """Refuse a corrupt series, naming the file and the first bad line: a non-positive or missing price, high
    below low, open/close outside the high-low range, a negative volume, or a time not after the previous one.

    A corrupt file otherwise analyses into nonsense (negative targets, absurd R multiples) without a word.
    """
    if len(ts) == 0:
        return
    prices = np.column_stack([open_, high, low, close])
    with np.errstate(invalid="ignore"):
        steps = np.diff(ts, prepend=ts[0] - 1)
        checks: list[tuple[np.ndarray, str]] = [
            (~np.isfinite(prices).all(axis=1) | (prices <= 0).any(axis=1), "price"),
            (high < low, "range"),
            ((open_ > high) | (open_ < low) | (close > high) | (close < low), "inside"),
            (~np.isfinite(volume) | (volume < 0), "volume"),
            (steps <= 0, "time"),
        ]
    bad = _first_bad_row(checks)
    if bad is None:
        return
    i, kind = bad
    where = f"Candle file {path.name} {unit} {first + i}"
    o, h, lo, c, v = (float(a[i]) for a in (open_, high, low, close, volume))
    if kind == "price":
        name, value = next(
            (n, x)
            for n, x in zip(("open", "high", "low", "close"), (o, h, lo, c), strict=True)
            if not (np.isfinite(x) and x > 0)
        )
        raise MarketDataError(f"{where}: {name} {value:g} is not a positive price.")
    if kind == "range":
        raise MarketDataError(f"{where}: high {h:g} is below low {lo:g}.")
    if kind == "inside":
        raise MarketDataError(f"{where}: open {o:g} / close {c:g} outside the low-high range {lo:g}-{h:g}.")
    if kind == "volume":
        raise MarketDataError(f"{where}: volume {v:g} is not a non-negative number.")
    stamp = pd.Timestamp(int(ts[i]), unit="ms", tz="UTC")
    problem = "repeats the previous row's time" if ts[i] == ts[i - 1] else "is earlier than the previous row's"
    raise MarketDataError(f"{where}: time {stamp:%Y-%m-%d %H:%M} {problem} (rows must be in time order, unique).")
