"""Ctrl-C at `approve? [y/N]` in a real terminal (a pty): the order is rejected with a message and the next line
is answered, not swallowed."""

from __future__ import annotations

import contextlib
import os
import select
import sys
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
