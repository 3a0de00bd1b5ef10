"""Visible-range volume profile: 250 bins, buy/sell split, POC, 70% value area, HVN and LVN.

Each candle's volume is spread uniformly over its [low, high] range, so a bin receives the
share of the candle's range it overlaps (exact, not sampled). A candle with high == low puts
all its volume in the bin holding that price.

Buy/sell split (candles carry no trade side): the close-location value. A candle's buy share
is (close - low) / (high - low) and its sell share the rest; a zero-range candle splits 50/50.
A close at the high counts as all buying, at the low as all selling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tools.structure.pivots import rolling_max


@dataclass(frozen=True, slots=True)
class VolumeProfile:
    """Volume by price bin over a window; `edges` has one more entry than the bins."""

    edges: np.ndarray
    volume: np.ndarray
    buy: np.ndarray
    sell: np.ndarray
    poc_index: int
    poc: float
    vah: float
    val: float
    value_area_volume: float
    hvn: tuple[float, ...]
    lvn: tuple[float, ...]

    @property
    def total(self) -> float:
        """Total volume in the profile."""
        return float(self.volume.sum())

    def centers(self) -> np.ndarray:
        """Price at the middle of each bin."""
        return (self.edges[:-1] + self.edges[1:]) / 2


def _spread(edges: np.ndarray, low: np.ndarray, high: np.ndarray, vol: np.ndarray) -> np.ndarray:
    """Volume per bin with each candle spread uniformly over [low, high] (vectorised, O(n + bins))."""
    return _spread_each(edges, low, high, (vol,))[0]


def _spread_each(
    edges: np.ndarray, low: np.ndarray, high: np.ndarray, vols: tuple[np.ndarray, ...]
) -> list[np.ndarray]:
    """`_spread` of several volume columns over the same candles: the bins each candle covers are found once.

    A candle adds partial shares to its first and last bin and its density times the bin width
    to every bin fully inside it (a difference array); all terms are positive, so even a
    nearly flat candle with a huge density loses no precision to cancellation.
    """
    nbins = len(edges) - 1
    # edges[0] is the lowest low, so a low's bin is never below 0; only the top edge needs the clamp.
    b_lo = np.minimum(edges.searchsorted(low, side="right") - 1, nbins - 1)
    b_hi = np.minimum(np.maximum(edges.searchsorted(high, side="left") - 1, b_lo), nbins - 1)
    one = (b_lo == b_hi) | (high <= low)
    b_one = b_lo[one]
    many = np.flatnonzero(~one)
    if len(many):
        lo, hi, bl, bh = low[many], high[many], b_lo[many], b_hi[many]
        first, last, width, span, bl1 = edges[bl + 1] - lo, hi - edges[bh], np.diff(edges), hi - lo, bl + 1
    outs = []
    for vol in vols:
        # astype: bincount of no cells returns int64 zeros, weights or not.
        out = np.bincount(b_one, weights=vol[one], minlength=nbins).astype(np.float64, copy=False)
        if len(many):
            dens = vol[many] / span
            out += np.bincount(bl, weights=dens * first, minlength=nbins)
            out += np.bincount(bh, weights=dens * last, minlength=nbins)
            diff = np.bincount(bl1, weights=dens, minlength=nbins + 1)
            diff -= np.bincount(bh, weights=dens, minlength=nbins + 1)
            inner = np.cumsum(diff[:nbins])
            # Round-off can leave -1e-17 where nothing is inside; a bin fully covered holds only positives.
            np.maximum(inner, 0.0, out=inner)
            inner *= width
            out += inner
        outs.append(out)
    return outs


def value_area(volume: np.ndarray, poc: int, share: float) -> tuple[int, int, float]:
    """Grow from the POC one bin at a time towards the larger neighbour until `share` is covered."""
    target = share * float(volume.sum())
    lo = hi = poc
    acc = float(volume[poc])
    n = len(volume)
    vol = volume.tolist()
    while acc < target and (lo > 0 or hi < n - 1):
        up = vol[hi + 1] if hi < n - 1 else -1.0
        dn = vol[lo - 1] if lo > 0 else -1.0
        if up >= dn:
            hi += 1
            acc += up
        else:
            lo -= 1
            acc += dn
    return lo, hi, acc


def _smoothed(volume: np.ndarray, radius: int) -> np.ndarray:
    """Volume averaged over 2 * radius + 1 bins (what peaks and valleys are found on)."""
    k = np.ones(2 * radius + 1) / (2 * radius + 1)
    return np.convolve(volume, k, mode="same")


def _peaks(s: np.ndarray, centers: np.ndarray, radius: int, limit: int) -> list[float]:
    """Prices of the `limit` highest local maxima of the smoothed volume above its mean, by price."""
    w = 2 * radius + 1
    pad_hi = np.concatenate((np.full(radius, -np.inf), s, np.full(radius, -np.inf)))
    is_peak = (s >= rolling_max(pad_hi, w)) & (s > s.mean())
    peaks = np.flatnonzero(is_peak)
    peaks = peaks[np.argsort(-s[peaks], kind="stable")][:limit]
    return sorted(centers[peaks].tolist())


def _valleys(s: np.ndarray, centers: np.ndarray, radius: int, limit: int) -> list[float]:
    """Prices of the `limit` lowest local minima under half the mean, between traded areas, by price."""
    w = 2 * radius + 1
    pad_lo = np.concatenate((np.full(radius, -np.inf), -s, np.full(radius, -np.inf)))
    is_valley = (-s >= rolling_max(pad_lo, w)) & (s < 0.5 * s.mean())
    # Valleys only count between traded areas, not in the empty tails of the range.
    occupied = np.flatnonzero(s > 0.5 * s.mean())
    if len(occupied):
        inside = np.zeros(len(s), dtype=bool)
        inside[occupied[0] : occupied[-1] + 1] = True
        is_valley &= inside
    valleys = np.flatnonzero(is_valley)
    valleys = valleys[np.argsort(s[valleys], kind="stable")][:limit]
    return sorted(centers[valleys].tolist())


def volume_nodes(volume: np.ndarray, centers: np.ndarray, radius: int, limit: int) -> tuple[list, list]:
    """High-volume peaks above the mean and low-volume valleys below half the mean (smoothed)."""
    if len(volume) < 2 * radius + 1:
        return [], []
    s = _smoothed(volume, radius)
    return _peaks(s, centers, radius, limit), _valleys(s, centers, radius, limit)


_COUNTS: dict[int, np.ndarray] = {}


def bin_edges(bottom: float, top: float, bins: int) -> np.ndarray:
    """`np.linspace(bottom, top, bins + 1)` to the bit (0, 1, .. bins times the step, plus bottom; the last edge
    exactly top) without linspace's per-call overhead, paid at every analysed bar."""
    step = (top - bottom) / bins
    if not (bins > 0 and np.isfinite(step) and step != 0):
        return np.linspace(bottom, top, bins + 1)  # linspace's own handling of the degenerate cases
    counts = _COUNTS.get(bins)
    if counts is None:
        counts = _COUNTS[bins] = np.arange(bins + 1, dtype=np.float64)
        counts.flags.writeable = False
    edges = counts * step
    edges += bottom
    edges[-1] = top
    return edges


def _binned(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(edges, buy volume, sell volume) per bin of the candles' range."""
    top, bottom = float(high.max()), float(low.min())
    if top <= bottom:
        top = bottom + max(abs(bottom) * 1e-9, 1e-12)
    edges = bin_edges(bottom, top, bins)
    rng = high - low
    buy_share = np.where(rng > 0, (close - low) / np.where(rng > 0, rng, 1.0), 0.5)
    buy, sell = _spread_each(edges, low, high, (volume * buy_share, volume * (1.0 - buy_share)))
    return edges, buy, sell


def profile_hvn(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    bins: int = 250,
    node_radius: int = 5,
    max_nodes: int = 4,
) -> list[float]:
    """The `hvn` of `volume_profile` on the same candles, without the rest of the profile (the level grades')."""
    edges, buy, sell = _binned(high, low, close, volume, bins)
    total = buy + sell
    if len(total) < 2 * node_radius + 1:
        return []
    return _peaks(_smoothed(total, node_radius), (edges[:-1] + edges[1:]) / 2, node_radius, max_nodes)


def volume_profile(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    bins: int = 250,
    value_share: float = 0.70,
    node_radius: int = 5,
    max_nodes: int = 4,
) -> VolumeProfile:
    """Profile of the given candles (the caller passes exactly the visible range)."""
    edges, buy, sell = _binned(high, low, close, volume, bins)
    total = buy + sell
    poc = int(np.argmax(total))
    lo, hi, acc = value_area(total, poc, value_share)
    centers = (edges[:-1] + edges[1:]) / 2
    hvn, lvn = volume_nodes(total, centers, node_radius, max_nodes)
    return VolumeProfile(
        edges=edges,
        volume=total,
        buy=buy,
        sell=sell,
        poc_index=poc,
        poc=float(centers[poc]),
        vah=float(edges[hi + 1]),
        val=float(edges[lo]),
        value_area_volume=acc,
        hvn=tuple(hvn),
        lvn=tuple(lvn),
    )
