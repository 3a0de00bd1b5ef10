"""Seeded generator of realistic 15-minute candles: GARCH volatility clustering, fat tails, regimes.

Bars are produced in fixed chunks, each drawn from its own seeded stream with the state carried
over, so bar `i` is a pure function of (seed, symbol, i): it does not depend on when or in which
order it was asked for. Every higher timeframe is aggregated from these bars.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from tools.market.features import OhlcvArrays

BAR_MS = 900_000
MINUTES_PER_BAR = 15
CHUNK = 2_880  # 30 days of 15m bars
ORIGIN_MS = 1_735_689_600_000  # 2025-01-01 00:00 UTC: the first simulated bar
_BARS_PER_YEAR = 365 * 96

# GARCH(1,1) on the unit variance multiplier; omega = 1 - alpha - beta keeps its mean at 1.
_ALPHA, _BETA = 0.07, 0.92
_T_DF = 5.0
# A slow log-volatility factor (half-life about two weeks) gives the long memory real markets show.
_SLOW_PHI = 0.9995
_SLOW_STD = 0.35
# Regimes: 0 ranging (mean-reverting to where it began), 1 up-trend, 2 down-trend.
_MEAN_DURATION_BARS = (288.0, 160.0, 160.0)
_TREND_DRIFT = 0.05  # drift per bar in units of the bar's sigma
_RANGE_PULL = 0.008  # share of the distance to the range anchor recovered per bar


@dataclass(frozen=True, slots=True)
class AssetProfile:
    """Starting price, annualised volatility, mean volume per 15m bar and open interest of an asset."""

    price: float
    annual_vol: float
    volume: float
    open_interest: float


def _usd(price: float, annual_vol: float, usd_volume: float, usd_open_interest: float) -> AssetProfile:
    """A profile from dollar figures (volume per 15m bar, open interest), converted into base units."""
    return AssetProfile(price, annual_vol, usd_volume / price, usd_open_interest / price)


# The simulated market's fixed universe: the SPEC's report symbols plus the largest USDT perpetuals, each with a
# plausible early-2025 price, volatility and size. A name outside it does not exist in the simulated market.
_PROFILES: dict[str, AssetProfile] = {
    "BTC": AssetProfile(94_000.0, 0.50, 260.0, 85_000.0),
    "ETH": AssetProfile(3_350.0, 0.70, 5_200.0, 2_100_000.0),
    "SOL": AssetProfile(190.0, 0.90, 70_000.0, 9_000_000.0),
    "BNB": AssetProfile(700.0, 0.55, 4_000.0, 700_000.0),
    "XRP": AssetProfile(2.1, 0.85, 9_000_000.0, 1_300_000_000.0),
    "DOGE": AssetProfile(0.32, 0.95, 60_000_000.0, 7_000_000_000.0),
    "AVAX": _usd(36.0, 0.95, 3e6, 5.0e8),
    "LINK": _usd(21.0, 0.90, 3e6, 6.0e8),
    "ADA": _usd(0.95, 0.90, 4e6, 7.0e8),
    "POL": _usd(0.45, 0.95, 8e5, 1.2e8),
    "DOT": _usd(6.8, 0.90, 1.5e6, 2.5e8),
    "LTC": _usd(105.0, 0.80, 2e6, 3.5e8),
    "BCH": _usd(440.0, 0.85, 1e6, 3.0e8),
    "TRX": _usd(0.25, 0.60, 8e5, 2.0e8),
    "TON": _usd(5.3, 0.80, 8e5, 2.0e8),
    "SUI": _usd(4.2, 1.10, 5e6, 9.0e8),
    "APT": _usd(9.0, 1.00, 1e6, 2.0e8),
    "ARB": _usd(0.75, 1.00, 1e6, 2.5e8),
    "OP": _usd(1.9, 1.00, 8e5, 1.8e8),
    "NEAR": _usd(5.0, 1.00, 1.2e6, 2.5e8),
    "ATOM": _usd(6.5, 0.90, 6e5, 1.5e8),
    "UNI": _usd(13.0, 0.95, 8e5, 2.0e8),
    "AAVE": _usd(330.0, 1.00, 1.2e6, 2.5e8),
    "WIF": _usd(1.9, 1.30, 2e6, 3.0e8),
    "PEPE": _usd(0.000018, 1.20, 5e6, 6.0e8),
    "SHIB": _usd(0.000021, 1.00, 1e6, 1.5e8),
}
UNIVERSE: tuple[str, ...] = tuple(_PROFILES)


def symbol_key(text: str) -> int:
    """A stable 32-bit key of a symbol (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big")


def profile_for(base: str) -> AssetProfile:
    """The profile of an asset of the simulated universe; KeyError for any other name."""
    return _PROFILES[base]


def seasonality(ts_ms: np.ndarray) -> np.ndarray:
    """Volatility multiplier by time: busiest around the US open (14:30 UTC), quieter at weekends."""
    hours = (ts_ms // 3_600_000) % 24 + ((ts_ms // 60_000) % 60) / 60
    weekday = ((ts_ms // 86_400_000) + 3) % 7  # 1970-01-01 was a Thursday; 5, 6 = Sat, Sun
    daily = 1.0 + 0.2 * np.cos(2 * np.pi * (hours - 14.5) / 24)
    return daily * np.where(weekday >= 5, 0.75, 1.05)


@dataclass(slots=True)
class _State:
    log_price: float
    variance: float
    last_z2: float
    regime: int
    anchor: float
    slow: float


class SymbolPath:
    """The generated 15m bars of one symbol, extended chunk by chunk on demand."""

    def __init__(self, seed: int, base: str, origin_ms: int = ORIGIN_MS) -> None:
        self.seed, self.base, self.origin_ms = seed, base, origin_ms
        self.profile = profile_for(base)
        self.key = symbol_key(base)
        self.sigma_bar = self.profile.annual_vol / math.sqrt(_BARS_PER_YEAR)
        self._state = _State(math.log(self.profile.price), 1.0, 1.0, 0, math.log(self.profile.price), 0.0)
        self._chunks: list[dict[str, np.ndarray]] = []
        self._joined: dict[str, np.ndarray] = {}
        self._bridges: dict[int, np.ndarray] = {}
        self._minutes: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._chunks) * CHUNK

    def ensure(self, n_bars: int) -> None:
        """Generate until at least `n_bars` bars exist."""
        grew = False
        while len(self) < n_bars:
            self._chunks.append(self._generate(len(self._chunks)))
            grew = True
        if grew or not self._joined:
            self._joined = {k: np.concatenate([c[k] for c in self._chunks]) for k in self._chunks[0]}

    def column(self, name: str) -> np.ndarray:
        """A generated column over all bars: ts, open, high, low, close, volume, buy_share, sigma, oi_noise."""
        return self._joined[name]

    def bars(self, start: int, stop: int) -> OhlcvArrays:
        """Complete bars [start, stop) as arrays (views)."""
        c = self._joined
        sl = slice(max(0, start), max(0, stop))
        return OhlcvArrays(c["ts"][sl], c["open"][sl], c["high"][sl], c["low"][sl], c["close"][sl], c["volume"][sl])

    def forming(self, index: int, elapsed_ms: int) -> tuple[OhlcvArrays, float]:
        """Bar `index` as seen `elapsed_ms` after it opened, and its taker-buy share so far."""
        c = self._joined
        minute = min(MINUTES_PER_BAR, max(0, elapsed_ms // 60_000))
        path = self.minute_path(index)[: minute + 1]
        fraction = elapsed_ms / BAR_MS
        arrays = OhlcvArrays(
            c["ts"][index : index + 1],
            np.array([path[0]]),
            np.array([path.max()]),
            np.array([path.min()]),
            np.array([path[-1]]),
            np.array([c["volume"][index] * fraction]),
        )
        return arrays, float(c["buy_share"][index])

    def minute_path(self, index: int) -> np.ndarray:
        """Prices at the bar's open and after each of its 15 minutes (the last equals the close); read-only.

        A bar's path never changes, and a live process asks for the same few bars (now, a day ago) on every ticker,
        so the last few are kept."""
        cached = self._minutes.get(index)
        if cached is None:
            cached = self._minute_path(index)
            cached.flags.writeable = False
            if len(self._minutes) >= 8:
                self._minutes.pop(next(iter(self._minutes)))
            self._minutes[index] = cached
        return cached

    def _minute_path(self, index: int) -> np.ndarray:
        c = self._joined
        chunk, row = divmod(index, CHUNK)
        bridge = self._bridge(chunk)[row]
        log_open, log_close = math.log(c["open"][index]), math.log(c["close"][index])
        k = np.arange(MINUTES_PER_BAR + 1) / MINUTES_PER_BAR
        path = np.exp(log_open + k * (log_close - log_open) + c["sigma"][index] * bridge)
        path[0], path[-1] = c["open"][index], c["close"][index]  # exact ends, not round-tripped through log
        # Clip away last-ulp differences so a forming candle never pokes outside the candle it becomes.
        return np.clip(path, c["low"][index], c["high"][index])

    def _bridge(self, chunk: int) -> np.ndarray:
        """Brownian bridges (zero at both ends) giving each bar its intrabar path, from their own stream."""
        cached = self._bridges.get(chunk)
        if cached is not None:
            return cached
        rng = np.random.default_rng([self.seed, self.key, chunk, 1])
        steps = rng.standard_normal((CHUNK, MINUTES_PER_BAR)) / math.sqrt(MINUTES_PER_BAR)
        walk = np.concatenate([np.zeros((CHUNK, 1)), np.cumsum(steps, axis=1)], axis=1)
        k = np.arange(MINUTES_PER_BAR + 1) / MINUTES_PER_BAR
        bridge = walk - k * walk[:, -1:]
        if len(self._bridges) > 4:
            self._bridges.pop(next(iter(self._bridges)))
        self._bridges[chunk] = bridge
        return bridge

    def _generate(self, chunk: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, self.key, chunk])
        n = CHUNK
        ts = self.origin_ms + (chunk * CHUNK + np.arange(n, dtype=np.int64)) * BAR_MS
        season = seasonality(ts)
        z = (rng.standard_t(_T_DF, n) / math.sqrt(_T_DF / (_T_DF - 2))).tolist()
        switch = rng.random(n).tolist()
        slow_shocks = (rng.standard_normal(n) * _SLOW_STD * math.sqrt(1 - _SLOW_PHI**2)).tolist()
        pick = rng.random(n).tolist()
        noise_volume = rng.normal(0.0, 0.35, n)
        noise_buy = rng.normal(0.0, 0.06, n)
        oi_noise = rng.standard_normal(n)
        start_log_price = self._state.log_price
        returns, sigmas = self._walk(season.tolist(), z, switch, pick, slow_shocks)
        log_close = start_log_price + np.cumsum(returns)
        close = np.exp(log_close)
        open_ = np.exp(log_close - returns)
        bridge = self._bridge(chunk)
        k = np.arange(MINUTES_PER_BAR + 1) / MINUTES_PER_BAR
        path = (log_close - returns)[:, None] + k * returns[:, None] + sigmas[:, None] * bridge
        # The log round trip can leave an end a hair outside the path's extremes: include them exactly.
        high = np.maximum(np.exp(path.max(axis=1)), np.maximum(open_, close))
        low = np.minimum(np.exp(path.min(axis=1)), np.minimum(open_, close))
        rel_range = (path.max(axis=1) - path.min(axis=1)) / (2.0 * self.sigma_bar)
        volume = self.profile.volume * season * rel_range * np.exp(noise_volume - 0.06)
        buy_share = np.clip(0.5 + 0.3 * np.tanh(returns / sigmas) + noise_buy, 0.02, 0.98)
        return {
            "ts": ts,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "buy_share": buy_share,
            "sigma": sigmas,
            "oi_noise": oi_noise,
        }

    def _walk(
        self, season: list[float], z: list[float], switch: list[float], pick: list[float], slow_shocks: list[float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The sequential part: GARCH variance, regime switches and drift, one bar at a time."""
        st = self._state
        omega, alpha, beta = 1.0 - _ALPHA - _BETA, _ALPHA, _BETA
        base_sigma = self.sigma_bar
        returns, sigmas = [0.0] * len(z), [0.0] * len(z)
        log_price, variance, last_z2, regime, anchor = st.log_price, st.variance, st.last_z2, st.regime, st.anchor
        slow = st.slow
        # exp(slow) has mean exp(std^2 / 2); dividing it out keeps the asset's average volatility.
        slow_norm = math.exp(-0.5 * _SLOW_STD**2)
        for i, zi in enumerate(z):
            variance = omega + (alpha * last_z2 + beta) * variance
            slow = _SLOW_PHI * slow + slow_shocks[i]
            sigma = base_sigma * season[i] * math.sqrt(variance) * math.exp(slow) * slow_norm
            if switch[i] < 1.0 / _MEAN_DURATION_BARS[regime]:
                # A range breaks either way; a trend mostly stalls into a range, sometimes reverses.
                trend = 1 if pick[i] < 0.5 else 2
                regime = trend if regime == 0 else (0 if pick[i] < 0.7 else 3 - regime)
                anchor = log_price
            if regime == 0:
                drift = -_RANGE_PULL * (log_price - anchor)
            else:
                drift = _TREND_DRIFT * sigma * (1.0 if regime == 1 else -1.0)
            r = drift + sigma * zi
            log_price += r
            returns[i], sigmas[i] = r, sigma
            last_z2 = zi * zi
        self._state = _State(log_price, variance, last_z2, regime, anchor, slow)
        return np.asarray(returns), np.asarray(sigmas)
