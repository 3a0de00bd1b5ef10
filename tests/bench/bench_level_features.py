"""Grading ideas for displayed levels, screened on the earlier half of each series (plain script, not collected).

    .venv/bin/python tests/bench/bench_level_features.py [--data-dir DIR] [--series BTC_1h,...] [--every N]

For BTC/ETH/SOL 1h and 4h, every displayed level (bench_levels' evaluation bars) gets features known at its bar
(from the bars of its window only): the size of the swing its own pivots started (largest move away within 50
bars, in ATR), the strength of the rejection at its touches in its current role (close at the end of the touch
against the touch's extreme, in ATR), whether those touches all closed back outside the zone, the
departure since its last such touch (largest move away, in ATR) and its speed (bars to 1 ATR away), whether it is in
its first retest after a role flip, plus the level pass' own touches, respect, volume ratio and volume-node distance.
Its outcome is bench_levels' reaction (touch, then 1 ATR away before a close beyond, next 100 bars). The baseline is
per row: 10 random zones at its bar and side, with its own width, at the distance of a displayed level of that side
drawn from its distance decile (so any subset's baseline has that subset's bars, sides, distances and widths), none
broken at that bar. For each rule: reaction rate / baseline on the earlier and the later half of the evaluation
bars, per series and averaged, with the touched count. A rule worth a grade beats 1.0 clearly in both halves.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_levels import add_data_arguments, load  # noqa: E402
from tools.structure.analysis import frame_arrays  # noqa: E402
from tools.structure.config import DEFAULT_CONFIG as CFG  # noqa: E402
from tools.structure.levels import Level  # noqa: E402
from tools.structure.pivots import HIGH, find_pivots  # noqa: E402
from tools.structure.quality import displayed_levels, line_outcomes, zones_broken  # noqa: E402

Columns = dict[str, np.ndarray]


class Features:
    """Per displayed row (in displayed_levels' order): features from the bars of its window up to its bar."""

    def __init__(self, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> None:
        self.h, self.lo, self.c = h, lo, c
        self.pivots = find_pivots(h, lo, CFG.left, CFG.right)
        self.rows: dict[str, list[float]] = {}

    def swing(self, lv: Level, t: int, ws: int, a: float) -> float:
        """The largest move away (in ATR, within 50 bars, up to `t`) from the level's own pivots: its swing size."""
        p = self.pivots
        mine = (p.confirmed <= t) & (p.bar >= ws) & (p.price >= lv.zone_low) & (p.price <= lv.zone_high)
        best = 0.0
        for b, price, kind in zip(p.bar[mine].tolist(), p.price[mine].tolist(), p.kind[mine].tolist(), strict=True):
            end = min(b + 51, t + 1)
            move = price - self.lo[b + 1 : end].min() if kind == HIGH else self.h[b + 1 : end].max() - price
            best = max(best, move / a)
        return best

    def add(self, **kw: Any) -> None:
        """One row's values."""
        for k, v in kw.items():
            self.rows.setdefault(k, []).append(float(v))

    def __call__(self, t: int, a: float, shown: list[Level]) -> None:
        ws = max(0, t - CFG.window + 1)
        h, lo, c = (x[ws : t + 1] for x in (self.h, self.lo, self.c))
        tt, buf = CFG.level_touch_atr * a, CFG.break_buffer_atr * a
        for lv in shown:
            cur = 1 if (lv.zone_low + lv.zone_high) / 2 < self.c[t] else -1
            side = (c > lv.zone_high + buf).astype(np.int8) - (c < lv.zone_low - buf).astype(np.int8)
            # The last close off the zone before each bar (0: none yet).
            seen = np.where(side != 0, np.arange(len(side)), -1)
            last = np.maximum.accumulate(seen)
            before = np.concatenate(([0], np.where(last >= 0, side[np.maximum(last, 0)], 0)[:-1]))
            touch = (lo <= lv.zone_high + tt) & (h >= lv.zone_low - tt)
            edges = np.diff(np.concatenate(([0], touch.view(np.int8), [0])))
            starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
            flip = -1 if lv.broken_at is None else lv.broken_at - ws
            rej, outside, role_end, since_flip = [], [], -1, 0
            for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
                came = before[s] if s > 0 else side[s]
                run = side[s : e + 1]
                if came != cur or np.any((run != 0) & (run != came)):
                    continue  # not a touch in its current role, or one that closed through
                if cur > 0:
                    rej.append((c[e] - lo[s : e + 1].min()) / a)
                    outside.append(bool(np.all(c[s : e + 1] > lv.zone_high)))
                else:
                    rej.append((h[s : e + 1].max() - c[e]) / a)
                    outside.append(bool(np.all(c[s : e + 1] < lv.zone_low)))
                role_end = e
                since_flip += flip >= 0 and s > flip
            away = (h[role_end + 1 :] - lv.zone_high) / a if cur > 0 else (lv.zone_low - lo[role_end + 1 :]) / a
            hit = np.flatnonzero(away >= 1.0)
            self.add(
                rejection=np.mean(rej) if rej else np.nan,
                closed_outside=np.mean(outside) if outside else np.nan,
                departure=away.max() if role_end >= 0 and len(away) else np.nan,
                speed=hit[0] + 1 if role_end >= 0 and len(hit) else np.inf,
                first_retest=flip >= 0 and since_flip == 1,
                swing=self.swing(lv, t, ws, a),
                touches=lv.touches,
                respect=lv.respect,
                volume_ratio=lv.volume_ratio,
                node_atr=np.inf if lv.node_atr is None else lv.node_atr,
                grade=lv.grade,
                age=t - lv.last_touch,
            )


def stratified_baseline(
    h: np.ndarray, lo: np.ndarray, c: np.ndarray, t: np.ndarray, mid: np.ndarray, width: np.ndarray, atr: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(touched, reacted) counts per row over 10 random zones at its bar and side, its width, a distance-decile peer's
    distance, redrawn while broken there."""
    rng = np.random.default_rng(0)
    dist = (mid - c[t]) / atr
    key = np.searchsorted(np.quantile(np.abs(dist), np.linspace(0, 1, 11)[1:-1]), np.abs(dist)) * 2 + (dist < 0)
    pools = {int(k): np.flatnonzero(key == k) for k in np.unique(key)}
    rows = np.tile(np.arange(len(t)), 10)
    rt, ra, rw, d = t[rows], atr[rows], width[rows], np.zeros(len(rows))
    pending = np.arange(len(rows))
    for _ in range(20):
        for k, pool in pools.items():
            mine = pending[key[rows[pending]] == k]
            d[mine] = dist[rng.choice(pool, size=len(mine))]
        centre = c[rt[pending]] + d[pending] * ra[pending]
        half = rw[pending] / 2
        broken = np.zeros(len(pending), bool)
        order = np.argsort(rt[pending], kind="stable")
        bars, first = np.unique(rt[pending][order], return_index=True)
        for bar, at in zip(bars.tolist(), np.split(order, first[1:]), strict=True):
            broken[at] = zones_broken(h, lo, c, bar, float(ra[at[0]]), centre[at] - half[at], centre[at] + half[at])
        pending = pending[broken]
        if len(pending) == 0:
            break
    out = line_outcomes(h, lo, c, rt, c[rt] + d * ra, ra, 100, rw, CFG.level_touch_atr, 1.0, CFG.break_buffer_atr)
    n = len(t)
    return np.bincount(rows, out.touched, n), np.bincount(rows, out.reacted, n)


RULES: dict[str, Callable[[Columns], np.ndarray]] = {
    "all displayed": lambda z: np.ones(len(z["t"]), bool),
    "grade 3 (now)": lambda z: z["grade"] == 3,
    "rejection >= q75": lambda z: z["rejection"] >= np.nanquantile(z["rejection"], 0.75),
    "rejection >= q90": lambda z: z["rejection"] >= np.nanquantile(z["rejection"], 0.9),
    "closed outside always": lambda z: z["closed_outside"] == 1,
    "first retest after flip": lambda z: z["first_retest"] == 1,
    "departure >= 2 ATR": lambda z: z["departure"] >= 2,
    "departure < 1 ATR": lambda z: z["departure"] < 1,
    "left fast (<= 3 bars)": lambda z: z["speed"] <= 3,
    "left slowly (> 20 bars)": lambda z: z["speed"] > 20,
    "own swing >= q75": lambda z: z["swing"] >= np.quantile(z["swing"], 0.75),
    "own swing >= q90": lambda z: z["swing"] >= np.quantile(z["swing"], 0.9),
    "own swing < q25": lambda z: z["swing"] < np.quantile(z["swing"], 0.25),
    "touches >= 12": lambda z: z["touches"] >= 12,
    "respect >= 0.8": lambda z: z["respect"] >= 0.8,
    "6+ touches, respect >= 0.7": lambda z: (z["touches"] >= 6) & (z["respect"] >= 0.7),
    "rejection q75 + departure 2": lambda z: (
        (z["rejection"] >= np.nanquantile(z["rejection"], 0.75)) & (z["departure"] >= 2)
    ),
}


def _mean(x: list[float]) -> float:
    """Mean of the finite values (NaN when none)."""
    f = [v for v in x if np.isfinite(v)]
    return float(np.mean(f)) if f else float("nan")


def main() -> None:
    """Print the rule table."""
    ap = argparse.ArgumentParser()
    add_data_arguments(ap)
    ap.add_argument("--series", default="BTC_1h,ETH_1h,SOL_1h,BTC_4h,ETH_4h,SOL_4h")
    args = ap.parse_args()
    data: dict[str, Columns] = {}
    for name in args.series.split(","):
        base, tf = name.split("_")
        df = load(args.data_dir, base, tf)
        h, lo, c, v = frame_arrays(df)
        every = args.every or (24 if tf == "1h" else 12)
        cpu = time.process_time()
        eval_bars = np.arange(CFG.window, len(c) - 101, every)
        feats = Features(h, lo, c)
        shown = displayed_levels(h, lo, c, v, eval_bars, CFG, feats)
        tol, react, buf = CFG.level_touch_atr, CFG.level_react_atr, CFG.break_buffer_atr
        out = line_outcomes(h, lo, c, shown.t, shown.price, shown.atr, 100, shown.width, tol, react, buf)
        rnd_t, rnd_r = stratified_baseline(h, lo, c, shown.t, shown.price, shown.width, shown.atr)
        z = {k: np.asarray(x) for k, x in feats.rows.items()}
        z |= {"t": shown.t, "lv_t": out.touched, "lv_r": out.reacted, "rnd_t": rnd_t, "rnd_r": rnd_r}
        z["late"] = shown.t >= np.median(eval_bars)
        data[name] = z
        print(f"{name}: {len(shown.t)} rows, {time.process_time() - cpu:.0f} s CPU", flush=True)

    def ratio(z: Columns, m: np.ndarray) -> tuple[float, int]:
        lt, rt = z["lv_t"][m].sum(), z["rnd_t"][m].sum()
        if lt == 0 or rt == 0:
            return float("nan"), 0
        return float((z["lv_r"][m].sum() / lt) / (z["rnd_r"][m].sum() / rt)), int(lt)

    print("ratio = reaction rate / matched random zones' rate, earlier half / later half (touched)")
    print(f"{'rule':28s} " + " ".join(f"{n:>18s}" for n in data) + "  mean early  mean late")
    for label, rule in RULES.items():
        cells, early, late = [], [], []
        for z in data.values():
            m = rule(z)
            (e, ne), (lt, nl) = ratio(z, m & ~z["late"]), ratio(z, m & z["late"])
            early.append(e)
            late.append(lt)
            cells.append(f"{e:5.2f}/{lt:5.2f} ({ne + nl:5d})")
        print(f"{label:28s} " + " ".join(cells) + f"  {_mean(early):10.2f} {_mean(late):10.2f}")


if __name__ == "__main__":
    main()
