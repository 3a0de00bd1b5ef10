"""A separate process that closes part of one paper position many times at once (for the cross-process test).

Run: `python -m tests.exchange.paper_worker DB_URL PREFIX COUNT STEP START_FILE`; it waits until START_FILE
exists, so both processes begin together, then places COUNT closes of STEP concurrently and prints "done".
"""

from __future__ import annotations

import asyncio
import sys
import time
from decimal import Decimal
from pathlib import Path

from storage.db import create_engine, session_factory
from tests.exchange.fakes import FakeMarket
from tools.exchange.models import IntentKind, OrderIntent
from tools.exchange.paper import PaperAccount
from tools.exchange.paper_engine import PaperConfig

CFG = PaperConfig(
    initial_balance=Decimal(10_000), taker_fee=Decimal("0.0005"), maker_fee=Decimal("0.0002"), slippage=Decimal("0.001")
)


async def main(url: str, prefix: str, count: int, step: Decimal, start: Path) -> None:
    """Wait for the start file, then close `step` `count` times at once."""
    engine = create_engine(url)
    account = PaperAccount("shared", FakeMarket(BTC=50_000), session_factory(engine), CFG)
    try:
        deadline = time.monotonic() + 60
        while not start.exists():  # a barrier across processes
            if time.monotonic() > deadline:
                raise SystemExit("start file never appeared")
            await asyncio.sleep(0.01)
        await asyncio.gather(
            *(
                account.place(
                    OrderIntent(
                        account_ref="x",
                        symbol="BTC/USDT:USDT",
                        kind=IntentKind.CLOSE,
                        amount=step,
                        intent_id=f"{prefix}-{n}",
                    )
                )
                for n in range(count)
            )
        )
        print("done", flush=True)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), Decimal(sys.argv[4]), Path(sys.argv[5])))
