"""Benchmark: `/price` updates end to end through 1 and 2 `bastion serve` workers in webhook mode on one PostgreSQL.

Each worker is a real `bastion serve` process (this tree's code: PYTHONPATH is set to it); the fake Bot API runs in
a process of its own (tests/fakes/telegram_process.py), so the workers' CPU is measured alone (from /proc, user +
system). The load generator posts each update once to a worker's `/telegram/webhook` (round robin, at most
`--concurrency` keep-alive connections per worker, like Telegram's max_connections) and waits on the fake's events
for every answer. It writes prebuilt HTTP/1.1 requests on raw sockets (about a tenth of an HTTP client's CPU per
post), so on two cores the rate measured is the workers' rather than the generator's. Prints, per worker count:
updates/s (first post → last answer at the fake), worker CPU per update, and beside it the CPU of everything else
on the machine's cores: the generator, the fake Bot API and PostgreSQL's backends.

Run: BASTION_TEST_POSTGRES_URL=postgresql+asyncpg://… python tests/bench/bench_webhook.py [--updates 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx

from storage import migrate
from storage.db import create_engine
from tests.bot.telegram_harness import free_port
from tests.bot.webhook_answer import answered_call
from tests.conftest import PG_URL_VAR, fresh_postgres_database
from tests.test_scale_out import SECRET, _health, _serve, _update

ROOT = Path(__file__).resolve().parents[2]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def postgres_cpu_s() -> dict[int, float]:
    """CPU seconds of each live PostgreSQL process on this host (the server's backends and its own workers)."""
    found: dict[int, float] = {}
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "postgres":
                pid = int(comm.parent.name)
                found[pid] = cpu_s(pid)
        except (OSError, ValueError):  # gone meanwhile
            continue
    return found


class RawPoster:
    """Telegram's side of the webhook, kept cheap: JSON POSTs with prebuilt HTTP/1.1 heads on at most `connections`
    keep-alive sockets to one local port, each response read just far enough for its status and body."""

    def __init__(self, port: int, connections: int, headers: dict[str, str]) -> None:
        self.port = port
        self._gate = asyncio.Semaphore(connections)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        lines = [f"Host: 127.0.0.1:{port}", "Content-Type: application/json"] + [
            f"{k}: {v}" for k, v in headers.items()
        ]
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode()

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST `body` to `path`; (status, response body). ConnectionError when the socket failed under it.

        A kept-alive socket the server has closed meanwhile (uvicorn closes idle ones after 5 s) is dropped and
        the request goes out once more on a new one."""
        async with self._gate:
            while self._idle:
                try:
                    return await self._exchange(*self._idle.pop(), path, body)
                except ConnectionError:
                    continue
            return await self._exchange(*await asyncio.open_connection("127.0.0.1", self.port), path, body)

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, body: bytes
    ) -> tuple[int, bytes]:
        try:
            writer.write(b"POST %s HTTP/1.1\r\n%s%d\r\n\r\n%s" % (path.encode(), self._head, len(body), body))
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, keep = 0, True
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    keep = False
            answer = await reader.readexactly(length) if length else b""
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as err:
            writer.close()
            raise ConnectionError(f"socket to port {self.port}: {err!r}") from err
        if keep:
            self._idle.append((reader, writer))
        else:
            writer.close()
        return status, answer

    def close(self) -> None:
        """Close the idle sockets."""
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


class FakeProcess:
    """The fake Bot API in a child process, driven over its stdin/stdout."""

    def __init__(self, proc: asyncio.subprocess.Process, hello: dict[str, Any]) -> None:
        self.proc = proc
        self.token, self.base_url = hello["token"], hello["base_url"]

    @classmethod
    async def start(cls) -> FakeProcess:
        """Start it and read its address."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.fakes.telegram_process",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            cwd=str(ROOT),
        )  # fmt: skip
        assert proc.stdout is not None
        return cls(proc, json.loads(await proc.stdout.readline()))

    async def wait(self, count: int, timeout_s: float) -> dict[str, Any]:
        """Block until the bot has sent `count` messages in all (or the timeout); the fake's figures."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"wait {count} {timeout_s}\n".encode())
        await self.proc.stdin.drain()
        return dict(json.loads(await self.proc.stdout.readline()))

    async def stop(self) -> None:
        """Quit it."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"quit\n")
        await self.proc.stdin.drain()
        await asyncio.wait_for(self.proc.wait(), 10)


async def run(
    workers: int, updates: int, concurrency: int, warmup: int, reply_budget_s: float | None, returning: bool
) -> None:
    """One measurement with `workers` processes on a fresh database. Each update comes from a user the bot has not
    seen (the costlier case: the user is stored), or with `returning` from one who wrote once before (the warm-up
    is then one message from each of them)."""
    if returning:
        warmup = updates
    async with fresh_postgres_database() as url:
        engine = create_engine(url)
        await migrate.upgrade(engine)
        await engine.dispose()
        fake = await FakeProcess.start()
        ports = [free_port() for _ in range(workers)]
        procs: list[asyncio.subprocess.Process] = []
        tmp = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
        # Sockets open on first use: nothing to close until then.
        posters = [RawPoster(port, concurrency, {"X-Telegram-Bot-Api-Secret-Token": SECRET}) for port in ports]
        fake_url = urlsplit(fake.base_url)
        telegram = RawPoster(fake_url.port or 80, concurrency * workers, {})  # makes the body replies' calls
        async with httpx.AsyncClient() as client:  # the health checks
            try:
                for i, port in enumerate(ports):
                    budget = (
                        {} if reply_budget_s is None else {"BASTION_API__WEBHOOK_REPLY_BUDGET_S": str(reply_budget_s)}
                    )
                    stand_in: Any = SimpleNamespace(token=fake.token, base_url=fake.base_url)  # _serve reads these two
                    procs.append(await _serve(stand_in, url, port, tmp / f"w{i}", **budget))
                    deadline = time.monotonic() + 90
                    while await _health(client, port) is None:
                        if time.monotonic() > deadline:
                            raise SystemExit(f"worker {i} did not start; see {tmp}/w{i}/out.log")
                        await asyncio.sleep(0.2)
                users = [600_000 + (n - warmup if returning and n >= warmup else n) for n in range(warmup + updates)]
                bodies = [json.dumps(_update(n + 1, user)).encode() for n, user in enumerate(users)]

                async def post(n: int) -> None:
                    poster = posters[n % workers]
                    for attempt in range(3):  # Telegram retries too; the inbox drops the repeat
                        try:
                            status, answer = await poster.post("/telegram/webhook", bodies[n])
                            break
                        except ConnectionError:  # a keep-alive connection closed under us
                            if attempt == 2:
                                raise
                    assert status == 200, answer
                    call = answered_call(answer)
                    if call is not None:  # Telegram makes the call the answer carries (the reply in the body)
                        method, params = call
                        status, answer = await telegram.post(
                            f"{fake_url.path}{fake.token}/{method}", json.dumps(params).encode()
                        )
                        assert status == 200, answer

                await asyncio.gather(*(post(n) for n in range(warmup)))
                await fake.wait(warmup, 120)
                before = [cpu_s(p.pid) for p in procs]
                generator_before, fake_before = time.process_time(), cpu_s(fake.proc.pid)
                postgres_before = postgres_cpu_s()
                started = time.monotonic()
                await asyncio.gather(*(post(n) for n in range(warmup, warmup + updates)))
                seen = await fake.wait(warmup + updates, 300)
                done_at = seen["last_at"]
                used = sum(cpu_s(p.pid) - b for p, b in zip(procs, before, strict=True))
                # The other side of the machine: this load generator (Telegram's part, the body replies' calls
                # included) and the fake Bot API share the two cores with the workers.
                generator = time.process_time() - generator_before
                fake_used = cpu_s(fake.proc.pid) - fake_before
                postgres_used = sum(c - postgres_before.get(pid, 0.0) for pid, c in postgres_cpu_s().items())
            finally:
                for poster in [*posters, telegram]:
                    poster.close()
                for p in procs:
                    if p.returncode is None:
                        p.send_signal(signal.SIGTERM)
                for p in procs:
                    try:
                        await asyncio.wait_for(p.wait(), 30)
                    except TimeoutError:
                        p.kill()
                await fake.stop()
        answered = seen["sent"] - warmup
        wall = max(1e-9, done_at - started)
        # Answers are counted at the fake: more answers than updates means some were answered twice.
        print(f"{workers} worker(s): {updates} /price updates from {'returning' if returning else 'new'} users, "
              f"{answered} answers at the fake "
              f"(missing {max(0, updates - answered)}, extra {max(0, answered - updates)})")  # fmt: skip
        print(f"  {answered / wall:.0f} updates/s (first post → last answer {wall:.1f} s); "
              f"worker CPU {1000 * used / max(1, answered):.2f} ms per update ({used:.1f} s in all); "
              f"load generator {1000 * generator / max(1, answered):.2f} ms, fake Bot API "
              f"{1000 * fake_used / max(1, answered):.2f} ms, PostgreSQL {1000 * postgres_used / max(1, answered):.2f}"
              f" ms per update")  # fmt: skip


async def main(
    updates: int, concurrency: int, warmup: int, counts: list[int], reply_budget_s: float | None, returning: bool
) -> None:
    """Both worker counts, one after the other."""
    if not os.environ.get(PG_URL_VAR):
        raise SystemExit(f"{PG_URL_VAR} must name a PostgreSQL server (several workers share one database)")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    # The workers run this tree's code, wherever the bench is started from.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    for workers in counts:
        await run(workers, updates, concurrency, warmup, reply_budget_s, returning)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reply-budget", type=float, default=None, help="BASTION_API__WEBHOOK_REPLY_BUDGET_S")
    parser.add_argument("--returning-users", action="store_true", help="every update from a user seen before")
    args = parser.parse_args()
    asyncio.run(
        main(args.updates, args.concurrency, args.warmup, args.workers, args.reply_budget, args.returning_users)
    )
