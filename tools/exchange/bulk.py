"""Positions of many accounts at once: paper accounts in a few shared queries, others concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from tools.exchange.base import Account
from tools.exchange.models import Position
from tools.exchange.paper import PaperAccount, paper_positions_bulk


async def positions_of(accounts: Sequence[Account]) -> list[list[Position] | BaseException]:
    """Each account's positions (or the error it raised), in the order given."""
    paper = [a for a in accounts if isinstance(a, PaperAccount)]
    by_store: dict[int, list[PaperAccount]] = {}
    for a in paper:
        by_store.setdefault(id(a.sessions), []).append(a)
    paper_results: dict[str, list[Position] | BaseException] = {}
    for group in by_store.values():
        paper_results.update(await paper_positions_bulk(group))
    others = [a for a in accounts if not isinstance(a, PaperAccount)]
    other_results = await asyncio.gather(*(a.positions() for a in others), return_exceptions=True)
    by_other = dict(zip((id(a) for a in others), other_results, strict=True))
    return [paper_results.get(a.account_id, []) if isinstance(a, PaperAccount) else by_other[id(a)] for a in accounts]
