"""Charts travel as bytes: a /chart or a free-text chart request leaves no file, shows no server path, and keeps
the PNG out of the conversation checkpoint."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bastion.app import Services
from bastion.serve import build_core
from bot.core.dispatcher import BotCore
from tests.bot.telegram_harness import ALICE, telegram_services
from tests.bot.test_core import RecordingReplier, said, settings
from tools.charts.store import ChartStore

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def core(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[BotCore, Path]]:
    """A core whose working and temporary folders are private to the test (so any file written shows)."""
    from agents.persistence import sqlite_persistence
    from agents.wiring import build_chat

    work = tmp_path / "work"
    (work / "tmp").mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(work / "tmp"))
    s = settings(sqlite_url, tmp_path, allowed_users=[f"telegram:{ALICE}"])
    services: Services
    async with telegram_services(s) as services, sqlite_persistence(tmp_path / "cp.db") as persistence:
        yield build_core(services, build_chat(services, persistence), persistence.store), tmp_path


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("text", ["/chart sol 1h", "show me a chart of eth 4h"])
async def test_chart_is_sent_as_bytes_and_leaves_no_file(core: tuple[BotCore, Path], text: str) -> None:
    bot, root = core
    before = _files(root)
    replier = RecordingReplier()
    await bot.handle(said(ALICE, text), replier)
    photos = [o.photo for o in replier.sent if o.photo is not None]
    assert len(photos) == 1 and photos[0].startswith(PNG_MAGIC) and len(photos[0]) > 10_000
    captions = [o.text for o in replier.sent] + [e[1].text for e in replier.edits]
    answer = next(t for t in captions if "Chart of" in t)
    assert ".png" not in answer and str(root) not in answer and "chart:" not in answer
    assert "- Resistance:" in answer
    new = {p for p in _files(root) - before if not p.name.startswith("cp.db")}
    assert not [p for p in new if p.suffix == ".png"], new  # nothing in the working, temp or data folders
    assert not any(p.suffix == ".png" for p in _files(root))
    # The checkpoint holds the chart's id, not its megabytes; and the store let go of the bytes once sent.
    checkpoint = b"".join(p.read_bytes() for p in root.glob("cp.db*"))
    assert PNG_MAGIC not in checkpoint
    assert len(bot.chat.charts or ChartStore()) == 0


def test_chart_store_is_bounded() -> None:
    store = ChartStore(max_charts=3, max_bytes=10_000)
    ids = [store.put(bytes([i]) * 1000) for i in range(5)]
    assert len(store) == 3 and store.get(ids[0]) is None and store.get(ids[4]) == bytes([4]) * 1000
    big = store.put(b"x" * 9_500)  # over the byte budget with the others: the oldest go first
    assert store.size_bytes <= 10_000 and store.get(big) is not None and len(store) == 1
    assert store.take(big) == b"x" * 9_500 and store.take(big) is None and store.size_bytes == 0
    assert store.put(b"same") == store.put(b"same") and len(store) == 1
