"""Open-position scenarios from real candles: random and structure-setup entries, long and short, with
structural, ATR or no stops and a spread of leverage, evaluated some bars after entry.

Scenarios come in groups sharing one evaluation bar t, so the expensive structure report is computed once per
(symbol, t). Each entry draw picks an age and reads the levels at its entry bar once (the live level pass, cached
per bar): where that bar shows a tradable setup the entry takes it; elsewhere it is a random entry taken on both
sides (a long/short pair on one level pass). Each entry gets every leverage for each stop type it is given (a
type with probability share / largest share), each (stop type, leverage) pair once, and no (entry bar, side) is
drawn twice in a group: no row repeats another. Each group draws from its own generator seeded by
(seed, symbol, group), so the scenarios do not depend on how the work is split across processes.

The evaluation bar t and each entry's age are drawn before anything after an entry is looked at: no t is
chosen by a later stop or target touch. The position state at t is the plan walked over every bar from entry+1 up
to and including t (stop, T1 taken and the stop at breakeven, T2); a position already flat at the close of t is no
scenario (so a group may hold fewer rows than drawn).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, fields

import numpy as np

from backtest.config import BacktestConfig
from backtest.context import EntryLevels, ReplayContexts
from backtest.outcomes import Path, Position, WalkResult, walk_plan
from tools.structure.targets import Side

RANDOM, STRUCTURE = 0, 1
KINDS = ("random", "structure")
STOP_STRUCTURE, STOP_ATR, STOP_NONE = 0, 1, 2
STOP_TYPES = ("structure", "atr", "none")
SETUP_MIN_GRADE = 2
SETUP_STRIDE = 5  # neighbouring bars share their levels, so the scan strides
MAX_DRAWS_PER_ENTRY = 4  # a group with few distinct (entry bar, side) positions stops drawing after this many


@dataclass(slots=True)
class ScenarioSet:
    """Scenarios as parallel arrays (one row each); prices in quote currency, bars index the full series."""

    symbol: np.ndarray  # str objects
    seed: np.ndarray
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
    remaining: np.ndarray  # share of the position still open at the close of t (> 0)
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

    def cluster(self) -> np.ndarray:
        """Cluster id of each row for standard errors: rows of one (seed, symbol, group) share an entry and a bar."""
        keys = [
            f"{a}|{b}|{c}"
            for a, b, c in zip(self.seed.tolist(), self.symbol.tolist(), self.group.tolist(), strict=True)
        ]
        return np.unique(np.array(keys, dtype=object), return_inverse=True)[1].astype(np.int64)

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


def tradable_setup(lv: EntryLevels, setup_atr: float) -> int:
    """The setup side (see setup_side) when the structure plan a trader would be shown for it is not rejected
    (the same plan_trade as analyze and the calculator); 0 otherwise."""
    side = setup_side(lv, setup_atr)
    if side and lv.plan("long" if side > 0 else "short").rejected:
        return 0
    return side


@dataclass(slots=True)
class _Draft:
    rows: list[tuple[float, ...]]
    ages: list[int]


def stop_leverage_rows(rng: np.random.Generator, cfg: BacktestConfig) -> list[tuple[int, float]]:
    """The (stop type, leverage) rows of one entry, each pair at most once: every leverage of each stop type the
    entry gets, a stop type included with probability share / largest share (so the rows drawn keep the stop-type
    shares: 60/20/20 by default, about 10 rows per entry), at most `per_bar` of them (a random subset)."""
    structure_share = max(0.0, 1.0 - cfg.no_stop_share - cfg.atr_stop_share)
    shares = {STOP_STRUCTURE: structure_share, STOP_ATR: cfg.atr_stop_share, STOP_NONE: cfg.no_stop_share}
    top = max(shares.values())
    included = [st for st, share in shares.items() if rng.random() < share / top]
    pairs = [(st, float(lev)) for st in included for lev in cfg.leverages]
    if len(pairs) > cfg.per_bar:
        pick = np.sort(rng.permutation(len(pairs))[: cfg.per_bar])
        pairs = [pairs[i] for i in pick.tolist()]
    return pairs


def _entry_rows(
    cfg: BacktestConfig,
    lv: EntryLevels,
    group: int,
    kind: int,
    entry_bar: int,
    side: int,
    pairs: list[tuple[int, float]],
) -> list[tuple[float, ...]]:
    """The rows of one entry: its structure plan (or the k x ATR one, or none) for each (stop type, leverage)."""
    name: Side = "long" if side > 0 else "short"
    structural = lv.plan(name)
    atr_only = lv.plan(name, min_stop_grade=99)  # same levels, k ATR stop
    same_plan = structural.stop == atr_only.stop and structural.targets == atr_only.targets
    rows: list[tuple[float, ...]] = []
    for stype, lev in pairs:
        if stype == STOP_ATR and same_plan:
            continue
        plan = atr_only if stype == STOP_ATR else structural
        stop = np.nan if stype == STOP_NONE else plan.stop
        risk = cfg.no_stop_risk_atr * lv.atr if stype == STOP_NONE else plan.risk_per_unit
        rows.append(
            (group, kind, stype, entry_bar, side, lev, lv.close, stop, *(tg.price for tg in plan.targets), risk, lv.atr)
        )
    return rows


def draft_group(ctx: ReplayContexts, cfg: BacktestConfig, group: int, size: int, lo: int, hi: int) -> _Draft:
    """One evaluation bar t and `entries_per_bar` positions open at it (each: its own age, side, plan, and up to
    per_bar distinct rows of stop type and leverage). t and every age are drawn before any bar after an entry is
    read. An ATR-stop row identical to the structure-stop row (no structure level to put the stop behind) is
    dropped: it would be the same scenario twice."""
    rng = np.random.default_rng([cfg.seed, symbol_key(ctx.symbol), group])
    t = int(rng.integers(lo + cfg.max_age, hi + cfg.max_age))
    rows: list[tuple[float, ...]] = []
    ages: list[int] = []
    left = size
    taken: set[tuple[int, int]] = set()  # (entry bar, side): a second draw of one is the same position again
    draws = 0
    while left > 0 and draws < MAX_DRAWS_PER_ENTRY * cfg.entries_per_bar:
        draws += 1
        want_setup = rng.random() < cfg.structure_share
        age = int(rng.integers(cfg.min_age, cfg.max_age + 1))
        random_side = 1 if rng.random() < 0.5 else -1
        entry_bar = t - age
        lv = ctx.entry_levels(entry_bar)
        side = tradable_setup(lv, cfg.setup_atr) if want_setup else 0
        # A setup entry scans back from the drawn bar to a setup (each try reads bars <= that entry only).
        tries = 1
        while want_setup and not side and tries <= cfg.setup_search and age + SETUP_STRIDE <= cfg.max_age:
            entry_bar, age, tries = entry_bar - SETUP_STRIDE, age + SETUP_STRIDE, tries + 1
            lv = ctx.entry_levels(entry_bar)
            side = tradable_setup(lv, cfg.setup_atr)
        kind = STRUCTURE if side else RANDOM
        # A random entry is taken on both sides at its bar (antithetic pair: one level pass, half the side noise).
        sides = [side] if side else [random_side, -random_side]
        for sd in sides:
            if left <= 0 or (entry_bar, sd) in taken:
                continue
            taken.add((entry_bar, sd))
            pairs = stop_leverage_rows(rng, cfg)[:left]
            left -= len(pairs)
            rows += _entry_rows(cfg, lv, group, kind, entry_bar, sd, pairs)
            ages += [age] * (len(rows) - len(ages))
    return _Draft(rows, ages)


def generate(ctx: ReplayContexts, cfg: BacktestConfig, groups: range) -> ScenarioSet:
    """Scenarios of `groups` (group g draws rows g*group_size ..), each walked to the close of its bar t; flat ones
    are dropped."""
    return generate_counted(ctx, cfg, groups)[0]


def generate_counted(ctx: ReplayContexts, cfg: BacktestConfig, groups: range) -> tuple[ScenarioSet, int]:
    """generate(), with the number of rows drawn before the flat ones were dropped."""
    lo, hi = bar_range(len(ctx.full), cfg)
    drafts = []
    for g in groups:
        size = min(cfg.group_size, cfg.scenarios - g * cfg.group_size)
        if size > 0:
            drafts.append(draft_group(ctx, cfg, g, size, lo, hi))
    rows = np.array([r for dr in drafts for r in dr.rows], dtype=np.float64).reshape(-1, 13)
    ages = np.array([a for dr in drafts for a in dr.ages], dtype=np.int64)
    group, kind, stype, entry_bar, d, lev, entry, stop, t1, t2, t3, risk, atr_e = rows.T
    entry_bar_i, d_i, group_i = entry_bar.astype(np.int64), d.astype(np.int64), group.astype(np.int64)
    state = state_at(ctx, cfg, entry_bar_i, ages, d_i, entry, stop, t1, t2)
    bar = entry_bar_i + ages.astype(np.int64)
    keep = state.remaining > 0
    full = ctx.full
    sc = ScenarioSet(
        symbol=np.full(len(bar), ctx.symbol, dtype=object),
        seed=np.full(len(bar), cfg.seed, dtype=np.int64),
        group=group_i,
        kind=kind.astype(np.int64),
        stop_type=stype.astype(np.int64),
        entry_bar=entry_bar_i,
        bar=bar,
        d=d_i,
        leverage=lev,
        entry=entry,
        initial_stop=stop,
        stop=state.stop,
        t1=t1,
        t2=t2,
        t3=t3,
        targets_hit=state.targets_hit,
        remaining=state.remaining,
        risk=risk,
        atr_entry=atr_e,
        price=full.close[bar],
        atr=np.zeros(len(bar)),
    ).take(np.flatnonzero(keep))
    sc.atr = np.array([ctx.report(int(b)).atr for b in sc.bar]) if len(sc) else np.zeros(0)
    return sc, len(rows)


def state_at(
    ctx: ReplayContexts,
    cfg: BacktestConfig,
    entry_bar: np.ndarray,
    age: np.ndarray,
    d: np.ndarray,
    entry: np.ndarray,
    stop: np.ndarray,
    t1: np.ndarray,
    t2: np.ndarray,
) -> WalkResult:
    """The plan walked over bars entry+1 .. entry+age = t inclusive (what the position is at the close of t)."""
    f = ctx.full
    pre = Path.take(f.open, f.high, f.low, f.close, entry_bar + 1, cfg.max_age)
    zero = np.zeros(len(d), np.int64)
    take = cfg.t1_take_pct / 100.0
    return walk_plan(pre, d, entry, stop, t1, t2, zero, 1.0, t1_take=take, time_exit=False, length=age)
