"""Open-position scenarios from real candles: random and structure-setup entries, long and short, with
structural, ATR or no stops and a spread of leverage, evaluated some bars after entry.

Scenarios come in groups sharing one entry bar and one evaluation bar, so the expensive structure report is
computed once per (symbol, evaluation bar). Each group draws from its own generator seeded by (seed, symbol,
group), so the scenarios do not depend on how the work is split across processes.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, fields

import numpy as np

from backtest.config import BacktestConfig
from backtest.context import EntryLevels, ReplayContexts
from backtest.outcomes import Path, Position, walk_plan
from tools.structure.targets import plan_trade

RANDOM, STRUCTURE = 0, 1
KINDS = ("random", "structure")
STOP_STRUCTURE, STOP_ATR, STOP_NONE = 0, 1, 2
STOP_TYPES = ("structure", "atr", "none")
SETUP_MIN_GRADE = 2
SETUP_STRIDE = 5  # neighbouring bars share their levels, so the scan strides


@dataclass(slots=True)
class ScenarioSet:
    """Scenarios as parallel arrays (one row each); prices in quote currency, bars index the full series."""

    symbol: np.ndarray  # str objects
    group: np.ndarray
    kind: np.ndarray
    stop_type: np.ndarray
    entry_bar: np.ndarray
    bar: np.ndarray  # evaluation bar t
    d: np.ndarray  # +1 long, -1 short
    leverage: np.ndarray
    entry: np.ndarray
    initial_stop: np.ndarray  # NaN = no stop
    stop: np.ndarray  # stop at t (breakeven after T1); NaN = none
    t1: np.ndarray
    t2: np.ndarray
    t3: np.ndarray
    targets_hit: np.ndarray
    risk: np.ndarray  # 1R per unit
    atr_entry: np.ndarray
    price: np.ndarray  # close of bar t
    atr: np.ndarray  # ATR at t

    def __len__(self) -> int:
        return len(self.bar)

    @classmethod
    def concat(cls, parts: list[ScenarioSet]) -> ScenarioSet:
        """Rows of every part, in order."""
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    def take(self, idx: np.ndarray) -> ScenarioSet:
        """The rows at `idx`."""
        return ScenarioSet(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def position(self) -> Position:
        """What the outcome simulation needs."""
        return Position(
            self.d, self.entry, self.stop, self.t1, self.t2, self.targets_hit, self.price, self.atr, self.risk
        )


def symbol_key(symbol: str) -> int:
    """Stable per-symbol seed component (Python's hash() is salted per process)."""
    return zlib.crc32(symbol.encode())


def bar_range(n_bars: int, cfg: BacktestConfig) -> tuple[int, int]:
    """[lo, hi) of possible entry bars: a full lookback before, max_age + horizon bars after."""
    lo, hi = cfg.lookback, n_bars - 1 - cfg.horizon - cfg.max_age
    if hi <= lo:
        raise ValueError(f"{n_bars} bars are too few for lookback {cfg.lookback}, age {cfg.max_age}, H {cfg.horizon}")
    return lo, hi


def setup_side(lv: EntryLevels, setup_atr: float) -> int:
    """+1 near a grade 2+ support (long setup), -1 near such a resistance, 0 when neither; near both, the trend."""
    near = setup_atr * lv.atr
    long_ok = any(x.role == "support" and x.grade >= SETUP_MIN_GRADE and lv.close - x.price <= near for x in lv.levels)
    short_ok = any(
        x.role == "resistance" and x.grade >= SETUP_MIN_GRADE and x.price - lv.close <= near for x in lv.levels
    )
    if long_ok and short_ok:
        return lv.trend if lv.trend else 0
    return 1 if long_ok else -1 if short_ok else 0


@dataclass(slots=True)
class _Draft:
    rows: list[tuple[float, ...]]
    age: int


def _group_draft(ctx: ReplayContexts, cfg: BacktestConfig, group: int, size: int, lo: int, hi: int) -> _Draft:
    rng = np.random.default_rng([cfg.seed, symbol_key(ctx.symbol), group])
    entry_bar = int(rng.integers(lo, hi))
    want_setup = rng.random() < cfg.structure_share
    age = int(rng.integers(cfg.min_age, cfg.max_age + 1))
    random_side = 1 if rng.random() < 0.5 else -1
    stop_u = rng.random(size)
    levs = rng.choice(np.asarray(cfg.leverages, dtype=np.float64), size=size)
    lv = ctx.entry_levels(entry_bar)
    side = setup_side(lv, cfg.setup_atr) if want_setup else 0
    # A setup entry scans forward from the drawn bar to the first setup (using bars <= that entry only).
    tries = 1
    while want_setup and not side and tries <= cfg.setup_search and entry_bar + SETUP_STRIDE < hi:
        entry_bar, tries = entry_bar + SETUP_STRIDE, tries + 1
        lv = ctx.entry_levels(entry_bar)
        side = setup_side(lv, cfg.setup_atr)
    kind = STRUCTURE if side else RANDOM
    side = side or random_side
    name = "long" if side > 0 else "short"
    structural = plan_trade(name, lv.close, lv.atr, lv.levels)
    atr_only = plan_trade(name, lv.close, lv.atr, lv.levels, min_stop_grade=99)  # same targets, 1.5 ATR stop
    rows = []
    for i in range(size):
        u = stop_u[i]
        stype = STOP_NONE if u < cfg.no_stop_share else STOP_ATR if u < cfg.no_stop_share + cfg.atr_stop_share else 0
        plan = atr_only if stype == STOP_ATR else structural
        stop = np.nan if stype == STOP_NONE else plan.stop
        risk = cfg.no_stop_risk_atr * lv.atr if stype == STOP_NONE else plan.risk_per_unit
        t = [tg.price for tg in plan.targets]
        rows.append((group, kind, stype, entry_bar, side, levs[i], lv.close, stop, *t, risk, lv.atr))
    return _Draft(rows, age)


def generate(ctx: ReplayContexts, cfg: BacktestConfig, groups: range) -> ScenarioSet:
    """Scenarios of `groups` (group g holds rows g*per_bar ..); the evaluation bar is set by walking the plan."""
    lo, hi = bar_range(len(ctx.full), cfg)
    drafts = []
    for g in groups:
        size = min(cfg.per_bar, cfg.scenarios - g * cfg.per_bar)
        if size > 0:
            drafts.append(_group_draft(ctx, cfg, g, size, lo, hi))
    rows = np.array([r for dr in drafts for r in dr.rows], dtype=np.float64).reshape(-1, 13)
    ages = np.concatenate([np.full(len(dr.rows), dr.age) for dr in drafts]) if drafts else np.zeros(0, np.int64)
    group, kind, stype, entry_bar, d, lev, entry, stop, t1, t2, t3, risk, atr_e = rows.T
    entry_bar_i, d_i, group_i = entry_bar.astype(np.int64), d.astype(np.int64), group.astype(np.int64)
    bar, hit, stop_t = _evaluation_bar(ctx, cfg, group_i, entry_bar_i, ages, d_i, entry, stop, t1, t2)
    full = ctx.full
    atr_t = np.array([ctx.report(int(b)).atr for b in bar]) if len(bar) else np.zeros(0)
    return ScenarioSet(
        symbol=np.full(len(bar), ctx.symbol, dtype=object),
        group=group_i,
        kind=kind.astype(np.int64),
        stop_type=stype.astype(np.int64),
        entry_bar=entry_bar_i,
        bar=bar,
        d=d_i,
        leverage=lev,
        entry=entry,
        initial_stop=stop,
        stop=stop_t,
        t1=t1,
        t2=t2,
        t3=t3,
        targets_hit=hit,
        risk=risk,
        atr_entry=atr_e,
        price=full.close[bar],
        atr=atr_t,
    )


def _evaluation_bar(
    ctx: ReplayContexts,
    cfg: BacktestConfig,
    group: np.ndarray,
    entry_bar: np.ndarray,
    age: np.ndarray,
    d: np.ndarray,
    entry: np.ndarray,
    stop: np.ndarray,
    t1: np.ndarray,
    t2: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """t = entry + age, or earlier: the first bar that would close any position of the group (a stop or T2
    touched), so every scenario is still open at t. Returns (t, targets taken before t, stop at t)."""
    f = ctx.full
    zero = np.zeros(len(d), np.int64)
    pre = Path.take(f.open, f.high, f.low, f.close, entry_bar + 1, cfg.max_age)
    first = walk_plan(pre, d, entry, stop, t1, t2, zero, 1.0, time_exit=False, length=age).closed_at
    offset = np.where(first >= 0, first, age - 1)  # bar entry+1+offset is t
    by_group: dict[int, int] = {}
    for g, o in zip(group.tolist(), offset.tolist(), strict=True):
        by_group[g] = min(by_group.get(g, o), o)
    offset = np.array([by_group[g] for g in group.tolist()], dtype=np.int64)
    state = walk_plan(pre, d, entry, stop, t1, t2, zero, 1.0, time_exit=False, length=offset)
    return entry_bar + 1 + offset, state.targets_hit, state.stop
