"""A second process for the approval tests: opens the same databases and presses approve on a token."""

from __future__ import annotations

import asyncio
import sys

from agents.state import TurnContext
from agents.wiring import open_chat
from bastion.app import build_services
from bastion.settings import load_settings


async def main(token: str, user_id: int) -> None:
    """Approve `token` as `user_id` and print the reply."""
    async with build_services(load_settings()) as services, open_chat(services) as chat:
        reply = await chat.decide(TurnContext(user_id=user_id, may_trade=True), token, approve=True)
    print(reply.text)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
