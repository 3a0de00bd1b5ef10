"""Market-structure engine (SPEC section 4): lookahead-free pivots, levels, trendlines, volume
profile, auto-support, multi-timeframe alignment, MCF score, stops and targets.

Every analysis reads only bars <= `as_of` and pivots confirmed <= `as_of` (a 20/15 pivot at
bar i is confirmed at bar i + 15)."""

from tools.structure.analysis import analyze_arrays, analyze_frame
from tools.structure.config import DEFAULT_CONFIG, StructureConfig
from tools.structure.liquidity import LiquidityPools, liquidity_pools
from tools.structure.mtf import StructureCache, analyze_frames, analyze_mtf, closed_candles
from tools.structure.pivots import Pivots, find_pivots
from tools.structure.report import MultiTimeframeReport, StructureReport
from tools.structure.score import DerivativesInputs, McfScore, OnChainInputs, OrderFlowInputs, mcf_score
from tools.structure.targets import TradePlan, plan_from_report, plan_trade

__all__ = [
    "DEFAULT_CONFIG",
    "DerivativesInputs",
    "LiquidityPools",
    "McfScore",
    "MultiTimeframeReport",
    "OnChainInputs",
    "OrderFlowInputs",
    "Pivots",
    "StructureCache",
    "StructureConfig",
    "StructureReport",
    "TradePlan",
    "analyze_arrays",
    "analyze_frame",
    "analyze_frames",
    "analyze_mtf",
    "closed_candles",
    "find_pivots",
    "liquidity_pools",
    "mcf_score",
    "plan_from_report",
    "plan_trade",
]
