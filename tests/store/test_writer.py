"""The group-commit writer (postroom/store/writer.py): batching, per-op rollback, and
which batches wait for an fsync; and the store's recovery after an unclean stop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from postroom.store import sqlite as sqlite_store
from postroom.store.sqlite import SqliteStore
from postroom.store.writer import GroupCommitWriter, WriteContext


@pytest.fixture
def writer(tmp_path: Path) -> Any:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(tmp_path / "w.db", isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
        return conn

    w = GroupCommitWriter(connect)
    yield w
    w.close()


def synchronous(conn: sqlite3.Connection, ctx: WriteContext) -> int:
    conn.execute("INSERT INTO t VALUES (1)")
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


def held(writer: GroupCommitWriter) -> threading.Event:
    """Occupy the writer until the returned event is set, so the ops submitted
    meanwhile form one batch."""
    release, running = threading.Event(), threading.Event()

    def block(conn: sqlite3.Connection, ctx: WriteContext) -> None:
        running.set()
        release.wait(10)

    writer.submit(block)
    assert running.wait(10)
    return release


FULL, NORMAL = 2, 1


def test_only_batches_with_a_durable_op_wait_for_fsync(writer: GroupCommitWriter) -> None:
    assert writer.submit(synchronous, durable=False).result(10) == NORMAL
    assert writer.submit(synchronous).result(10) == FULL
    release = held(writer)
    mixed = [writer.submit(synchronous, durable=False), writer.submit(synchronous),
             writer.submit(synchronous, durable=False)]
    release.set()
    assert [f.result(10) for f in mixed] == [FULL, FULL, FULL]
    release = held(writer)
    relaxed = [writer.submit(synchronous, durable=False) for _ in range(3)]
    release.set()
    assert [f.result(10) for f in relaxed] == [NORMAL] * 3


def test_a_failing_op_rolls_back_alone(writer: GroupCommitWriter) -> None:
    def fail(conn: sqlite3.Connection, ctx: WriteContext) -> None:
        conn.execute("INSERT INTO t VALUES (2)")
        raise ValueError("no")

    def count(conn: sqlite3.Connection, ctx: WriteContext) -> list[int]:
        return [r[0] for r in conn.execute("SELECT v FROM t ORDER BY v")]

    release = held(writer)
    futures = [writer.submit(synchronous), writer.submit(fail), writer.submit(synchronous)]
    release.set()
    assert futures[0].result(10) == FULL and futures[2].result(10) == FULL
    with pytest.raises(ValueError):
        futures[1].result(10)
    assert writer.submit(count).result(10) == [1, 1]


def test_unclean_stop_moves_highestmodseq_ahead(tmp_path: Path) -> None:
    """Flag changes are not fsync'd, so a power cut may undo modseqs clients saw: after
    an unclean stop every HIGHESTMODSEQ jumps ahead; after a clean one nothing moves."""

    async def highest() -> int:
        store = await SqliteStore.open(tmp_path, primary=True)
        try:
            user = await store.get_user("bob@example.com")
            if user is None:
                await store.add_domain("example.com")
                user = await store.add_user("bob@example.com", "h")
            mb = await store.get_mailbox(user.id, "INBOX")
            assert mb is not None
            return mb.highestmodseq
        finally:
            await store.close()

    first = asyncio.run(highest())
    assert asyncio.run(highest()) == first  # clean stop: no jump
    with sqlite3.connect(tmp_path / "postroom.db") as conn:  # as if killed while running
        conn.execute("UPDATE meta SET value='1' WHERE key='running'")
    assert asyncio.run(highest()) == first + sqlite_store.MODSEQ_AFTER_CRASH
    assert asyncio.run(highest()) == first + sqlite_store.MODSEQ_AFTER_CRASH


def test_only_the_server_removes_orphan_bodies_and_only_old_ones(tmp_path: Path) -> None:
    """A body file no row names yet may belong to an append in flight in a running
    server: a CLI command opening the store leaves it, and the server's own start only
    removes orphans older than ORPHAN_AGE."""
    import os
    import time

    async def open_close(primary: bool) -> None:
        store = await SqliteStore.open(tmp_path, primary=primary)
        await store.close()

    asyncio.run(open_close(False))
    shard = tmp_path / "blobs" / "ab"
    shard.mkdir(parents=True, exist_ok=True)
    young, old = shard / "young-orphan", shard / "old-orphan"
    young.write_bytes(b"x")
    old.write_bytes(b"y")
    stale = time.time() - sqlite_store.ORPHAN_AGE - 60
    os.utime(old, (stale, stale))
    asyncio.run(open_close(False))
    assert young.exists() and old.exists()
    asyncio.run(open_close(True))
    assert young.exists() and not old.exists()


def test_after_durable_hooks_run_once_the_commit_is_on_disk(
        writer: GroupCommitWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file removal scheduled by a non-durable op (an expunge dropping a message's last
    reference) waits for an fsync of the WAL: a power cut must not bring back a row
    naming a removed file."""
    synced: list[int] = []
    real_sync = writer._sync_wal
    monkeypatch.setattr(writer, "_sync_wal", lambda conn: (real_sync(conn), synced.append(1)))
    ran: list[int] = []

    def drop(conn: sqlite3.Connection, ctx: WriteContext) -> None:
        conn.execute("INSERT INTO t VALUES (3)")
        ctx.after_durable_commit(lambda: ran.append(len(synced)))

    def drop_then_fail(conn: sqlite3.Connection, ctx: WriteContext) -> None:
        drop(conn, ctx)
        raise ValueError("undone")

    writer.submit(drop, durable=False).result(10)
    assert synced == [1] and ran == [1]  # synced first, then the hook
    writer.submit(drop).result(10)  # a durable batch: synchronous=FULL synced it
    assert synced == [1] and ran == [1, 1]
    with pytest.raises(ValueError):
        writer.submit(drop_then_fail, durable=False).result(10)
    assert synced == [1] and ran == [1, 1]  # a failed op's hooks are dropped with it
