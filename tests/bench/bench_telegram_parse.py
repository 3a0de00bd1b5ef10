"""Benchmark: reading a webhook update's text message, PTB's parsing against the plain read, side by side.

Per update (CPU, µs): `Update.de_json` + `to_plain` (what every update cost before) against `plain_message` (what a
simple text message costs now), each followed by `inbound_of`, for the shapes the webhook sees most: a private
`/price` command with its entity (the shape bench_webhook posts) and a group message mentioning the bot. The JSON
decoding of the body, the same for both, is left out. Rounds alternate between the two so that a noisy machine
weighs on both alike.

Run: python tests/bench/bench_telegram_parse.py [--updates 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from typing import Any

from telegram import Update

from bot.telegram.convert import inbound_of, plain_message, to_plain

BOT_ID, BOT_NAME = 999, "bastion_bot"


def _shapes() -> dict[str, dict[str, Any]]:
    private = {
        "update_id": 1,
        "message": {
            "message_id": 1,
            "from": {"id": 5, "is_bot": False, "first_name": "U"},
            "chat": {"id": 5, "type": "private", "first_name": "U"},
            "date": 1_764_000_000,
            "text": "/price btc",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }
    group = copy.deepcopy(private)
    group["message"]["chat"] = {"id": -100123, "type": "supergroup", "title": "traders"}
    group["message"]["text"] = f"@{BOT_NAME} levels sol 4h"
    group["message"]["entities"] = [{"type": "mention", "offset": 0, "length": len(BOT_NAME) + 1}]
    return {"private /price": private, "group mention": group}


def _ptb(data: dict[str, Any]) -> object:
    plain = to_plain(Update.de_json(data, None))
    return None if plain is None else inbound_of(plain, BOT_ID, BOT_NAME)


def _plain(data: dict[str, Any]) -> object:
    plain = plain_message(data)
    return None if plain is None else inbound_of(plain, BOT_ID, BOT_NAME)


def _cpu_us(read: Callable[[dict[str, Any]], object], bodies: list[dict[str, Any]]) -> float:
    started = time.process_time()
    for body in bodies:
        read(body)
    return 1e6 * (time.process_time() - started) / len(bodies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for name, shape in _shapes().items():
        assert _ptb(copy.deepcopy(shape)) == _plain(copy.deepcopy(shape)) is not None  # the same message either way
        ptb, plain = [], []
        for _ in range(args.rounds):
            ptb.append(_cpu_us(_ptb, [copy.deepcopy(shape) for _ in range(args.updates)]))
            plain.append(_cpu_us(_plain, [copy.deepcopy(shape) for _ in range(args.updates)]))
        p, q = statistics.median(ptb), statistics.median(plain)
        print(
            f"{name}: PTB's parsing {p:.1f} µs CPU per update (rounds {min(ptb):.1f}-{max(ptb):.1f}), plain read "
            f"{q:.1f} µs ({min(plain):.1f}-{max(plain):.1f}): {p / q:.1f}x less, {p - q:.0f} µs saved per update"
        )


if __name__ == "__main__":
    main()
