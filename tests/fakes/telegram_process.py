"""The fake Bot API in a process of its own, so a benchmark's bot processes are measured without it.

    python -m tests.fakes.telegram_process      # prints one JSON line: {"base_url": ..., "token": ...}

Then each line on stdin is a command, answered by one JSON line on stdout:
    wait N T   → once the bot has sent N messages in all (or after T seconds):
                 {"sent": n, "first_at": t, "last_at": t, "cpu_s": c} (times: time.monotonic of this host)
    quit       → exits
The waits are woken by the fake's own events, never by polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time

from tests.fakes.telegram_api import FakeTelegram


async def main() -> None:
    """Serve until `quit` or end of input."""
    loop = asyncio.get_running_loop()
    async with FakeTelegram() as fake:
        print(json.dumps({"base_url": fake.base_url, "token": fake.token}), flush=True)
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            words = line.split()
            if not words or words[0] == "quit":
                return
            if words[0] == "wait":
                count, timeout = int(words[1]), float(words[2])
                with contextlib.suppress(AssertionError):
                    await fake.wait_for(lambda n=count: fake.sent_count() >= n, timeout=timeout, recheck_s=None)
                sent = fake.sent()
                answer = {
                    "sent": len(sent),
                    "first_at": min((m.at for m in sent), default=0.0),
                    "last_at": max((m.at for m in sent), default=0.0),
                    "cpu_s": time.process_time(),
                }
                print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
