"""Every parameter of the exit-decision backtest, in one pydantic model (each one is a CLI/API option)."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from engine.risk.context import CONTEXT_BARS

# The four action classes every decision is scored in (SPEC §5 actions grouped by what they do to the position).
CLASSES: tuple[str, ...] = ("HOLD", "PARTIAL", "EXIT", "TIGHTEN")
HOLD, PARTIAL, EXIT, TIGHTEN = range(4)
INVALID = -1
ACTION_CLASS: dict[str, int] = {
    "HOLD": HOLD,
    "TP_PARTIAL": PARTIAL,
    "REDUCE_SIZE": PARTIAL,
    "EXIT_FULL": EXIT,
    "TP_FULL": EXIT,
    "EMERGENCY_EXIT": EXIT,
    "MOVE_STOP_BE": TIGHTEN,
    "TRAIL_STOP": TIGHTEN,
    "ADJUST_STOP": TIGHTEN,
}


class BacktestConfig(BaseModel):
    """Scenario generation, outcome simulation and scoring parameters; the defaults are the published method."""

    symbols: list[str] = Field(default_factory=lambda: ["BTC", "ETH", "SOL"], description="Symbols to replay")
    timeframe: str = Field(default="1h", description="Evaluation timeframe (a candle file or a resample of one)")
    scenarios: int = Field(default=5000, ge=1, description="Scenario rows drawn per symbol (about 46 evaluation bars)")
    seed: int = Field(default=0, description="Seed: the same seed and data give the same scenarios and scores")
    seeds: list[int] | None = Field(default=None, description="Several seeds pooled (scored together); None: `seed`")
    horizon: int = Field(default=48, ge=1, description="H: bars simulated after the decision; time exit at t+H close")
    fee: float = Field(default=0.0005, ge=0, lt=0.05, description="Taker fee per side (entry and every close)")
    slippage: float = Field(
        default=0.0002, ge=0, lt=0.05, description="Adverse slippage of every market fill (fraction of price)"
    )
    funding: bool = Field(
        default=True,
        description="Charge funding on the bars after t where the perpetual's funding-rate file is beside its candles "
        "(the shared spot candles have none)",
    )
    tie_r: float = Field(default=0.1, ge=0, description="Decisions within this many R of the best are all 'best'")
    t1_take_pct: float = Field(default=50.0, gt=0, lt=100, description="The plan takes this % at T1 (stop then BE)")
    trail_atr: float = Field(default=1.5, gt=0, description="The oracle's trailing-stop candidate: ATR behind price")
    no_stop_risk_atr: float = Field(default=1.5, gt=0, description="1R of a no-stop scenario, in ATR at entry")
    per_bar: int = Field(
        default=18,
        ge=1,
        description="Most (stop type, leverage) rows sharing one entry (each pair at most once)",
    )
    entries_per_bar: int = Field(
        default=6, ge=1, description="Entries evaluated at one bar t (they share its structure report: speed)"
    )
    min_age: int = Field(default=1, ge=1, description="Fewest bars between entry and evaluation")
    max_age: int = Field(default=24, ge=1, description="Most bars between entry and evaluation")
    structure_share: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="Chance an entry draw takes the setup its bar shows (else a long/short pair there)",
    )
    setup_atr: float = Field(default=1.5, gt=0, description="A setup: grade>=2 level within this many ATR of close")
    setup_search: int = Field(
        default=0, ge=0, description="Earlier bars (5 apart) an entry draw also tries for a setup (0: its own bar only)"
    )
    leverages: list[float] = Field(
        default_factory=lambda: [1.0, 2.0, 3.0, 5.0, 10.0, 20.0], description="Leverage spread"
    )
    no_stop_share: float = Field(default=0.2, ge=0, le=1, description="Share of scenarios without a stop")
    atr_stop_share: float = Field(default=0.2, ge=0, le=1, description="Share with a plain 1.5 ATR stop")
    lookback: int = Field(
        default=CONTEXT_BARS, ge=100, description="Bars of history before the first entry (contexts read CONTEXT_BARS)"
    )
    workers: int = Field(default=0, ge=0, description="Worker processes; 0 = one per symbol up to the CPU count")
    chunk: int = Field(default=25, ge=1, description="Entry bars per work item (progress granularity)")

    @model_validator(mode="after")
    def _check(self) -> BacktestConfig:
        if self.min_age > self.max_age:
            raise ValueError("min_age must not exceed max_age")
        if self.no_stop_share + self.atr_stop_share > 1:
            raise ValueError("no_stop_share + atr_stop_share must not exceed 1")
        if not self.leverages or any(x < 1 for x in self.leverages):
            raise ValueError("leverages must be a non-empty list of values >= 1")
        return self

    @property
    def group_size(self) -> int:
        """Scenarios drawn per evaluation bar."""
        shares = (max(0.0, 1.0 - self.no_stop_share - self.atr_stop_share), self.atr_stop_share, self.no_stop_share)
        # Rows an entry gets on average (see backtest.scenarios.stop_leverage_rows): its leverages for each stop type
        # included, a type with probability share / largest share.
        per_entry = len(self.leverages) * sum(x / max(shares) for x in shares)
        return max(1, round(min(self.per_bar, per_entry) * self.entries_per_bar))

    @property
    def groups(self) -> int:
        """Evaluation bars per symbol."""
        return -(-self.scenarios // self.group_size)
