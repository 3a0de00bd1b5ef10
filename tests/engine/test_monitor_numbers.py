"""Monitor proposals write stops at the instrument's precision (issue 19 item 2: no "2.10938" or "128852")."""

from __future__ import annotations

from decimal import Decimal

from engine.monitor.notifier import summarise
from engine.risk.decision import Decision
from tools import numbers
from tools.exchange.models import Position, PositionSide


def _position(symbol: str, size: str, entry: str) -> Position:
    return Position(symbol=symbol, side=PositionSide.LONG, size=Decimal(size), entry_price=Decimal(entry))


def test_stops_in_proposals_are_written_at_the_tick() -> None:
    trail = Decision(action="TRAIL_STOP", confidence=0.7, reasoning="trail", rule="trail", new_stop=128852.0)
    text = summarise(_position("BTC/USDT:USDT", "0.025000000000", "120000"), trail)
    assert text.startswith("TRAIL STOP to 128,852.0 of BTC/USDT:USDT long (0.025 BTC held)")
    be = Decision(action="MOVE_STOP_BE", confidence=0.7, reasoning="be", rule="be", new_stop=2.109375)
    assert summarise(_position("XRP/USDT:USDT", "100", "2.109375"), be).startswith("MOVE STOP to breakeven 2.1094 ")


def test_a_partial_close_is_written_at_the_venue_step_never_more_than_the_share() -> None:
    reduce = Decision(action="REDUCE_SIZE", confidence=0.7, reasoning="reduce", rule="r", close_pct=33.0)
    text = summarise(_position("SOL/USDT:USDT", "0.1", "150"), reduce)
    assert "close 0.033 of 0.1 SOL" in text, text  # not "0.0333333333"
    numbers.register_step("SOL/USDT:USDT", Decimal("0.01"))
    assert "close 0.03 of 0.1 SOL" in summarise(_position("SOL/USDT:USDT", "0.1", "150"), reduce)
