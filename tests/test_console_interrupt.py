"""Ctrl-C in a real terminal (a pty): at `approve? [y/N]` the order is rejected with a message and the next line
is answered, not swallowed; during a turn that turn is cancelled and the chat goes on."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

pty = pytest.importorskip("pty")
BASTION = Path(sys.executable).with_name("bastion")


class Terminal:
    """`bastion chat` on a pseudo-terminal: what is typed and what it prints."""

    def __init__(self, env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: nothing but exec
            os.execve(str(BASTION), ["bastion", "chat"], env)
        self.out = b""

    def wait_for(self, token: bytes, timeout: float = 90) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    self.out += os.read(self.fd, 4096)
                except OSError:
                    return token in self.out
                if token in self.out:
                    return True
        return False

    def type(self, data: bytes) -> None:
        os.write(self.fd, data)

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.mark.skipif(not BASTION.exists(), reason="the bastion console script is not installed")
def test_ctrl_c_at_the_approval_prompt_rejects_and_keeps_the_next_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env["BASTION_DATABASE__URL"] = f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
    term = Terminal(env)
    try:
        assert term.wait_for(b"Ctrl-D or 'exit' to leave"), term.out
        term.type(b"long 0.1 sol stop 100\n")
        assert term.wait_for(b"approve? [y/N]"), term.out
        time.sleep(0.5)  # as a person would: the prompt is on screen and the read has begun
        term.type(b"\x03")  # the terminal turns it into SIGINT for the foreground process
        assert term.wait_for(b"Rejected: no order was placed."), term.out
        assert b"Interrupted: rejected." in term.out
        term.type(b"positions\n")
        assert term.wait_for(b"no open positions"), term.out  # answered: the line after Ctrl-C is not lost
        term.type(b"exit\n")
        assert term.wait_for(b"Bye."), term.out
        assert b"Traceback" not in term.out
    finally:
        term.close()


@pytest.mark.skipif(not BASTION.exists(), reason="the bastion console script is not installed")
def test_ctrl_c_during_a_turn_cancels_that_turn_and_returns_to_the_prompt(tmp_path: Path) -> None:
    # A model endpoint that accepts the request and never answers: the turn waits until Ctrl-C.
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.extend(iter(lambda: server.accept()[0], None)), daemon=True).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env["BASTION_DATABASE__URL"] = f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
    env["BASTION_MODEL__BASE_URL"] = f"http://127.0.0.1:{server.getsockname()[1]}/v1"
    term = Terminal(env)
    try:
        assert term.wait_for(b"Ctrl-D or 'exit' to leave"), term.out
        term.type(b"how is btc doing?\n")
        deadline = time.monotonic() + 60
        while not held and time.monotonic() < deadline:  # the turn is waiting on the model
            time.sleep(0.1)
        assert held, term.out
        term.type(b"\x03")
        assert term.wait_for(b"Interrupted: that turn was cancelled"), term.out
        term.type(b"/help\n")
        assert term.wait_for(b"CLI commands:"), term.out  # the chat is still there and answers
        term.type(b"exit\n")
        assert term.wait_for(b"Bye."), term.out
        assert b"Traceback" not in term.out
    finally:
        term.close()
        for conn in held:
            conn.close()
        server.close()
