"""Group commit: one writer thread runs every write of the store.

Theory of operation: callers hand a function ``op(conn) -> T`` to ``submit`` and get a
``concurrent.futures.Future``. The writer thread takes everything that is waiting, runs
each op inside its own SAVEPOINT of one transaction, COMMITs once (one WAL fsync with
``synchronous=FULL``) and only then resolves the futures. So N concurrent appenders cost
one fsync, not N, and nobody is told "done" before their data is durable. An op that
raises rolls back to its savepoint alone; the rest of the batch commits. After the commit,
ops' ``after_commit`` callbacks run (change feed notifications, file removals).

An op submitted with ``durable=False`` (flag changes, \\Recent claims, expunges: what
Dovecot's ``mail_fsync = optimized`` does not fsync either) does not need its own fsync:
a batch of only such ops commits with ``synchronous=NORMAL`` (the WAL is written, not
synced). A process crash loses nothing (the OS has the pages); a power cut may undo the
last of them, never anything committed durably, because every fsync of the WAL covers
all the frames before it. Any durable op in a batch makes the whole batch durable.

Several processes (worker processes, a CLI command) write to one database: with
``lock_path`` each batch first takes an exclusive ``flock`` on that file. SQLite would
serialise the writers anyway, but a writer that finds the database locked polls with
sleeps of 1, 2, 5, 10 ... ms; waiting in ``flock`` the kernel wakes it the moment the
other batch commits.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("postroom.store")

T = TypeVar("T")

MAX_BATCH = 512


class WriteContext:
    """Handed to each op alongside the connection: lets it schedule post-commit work."""

    def __init__(self) -> None:
        self.after: list[Callable[[], None]] = []
        self.after_durable: list[Callable[[], None]] = []

    def after_commit(self, fn: Callable[[], None]) -> None:
        self.after.append(fn)

    def after_durable_commit(self, fn: Callable[[], None]) -> None:
        """``fn`` once the commit is on disk, even in a batch of non-durable ops (the
        writer then fsyncs the WAL itself): for what cannot be undone, such as removing
        the file of a deleted message."""
        self.after_durable.append(fn)


Op = Callable[[sqlite3.Connection, WriteContext], Any]
_STOP = object()


class GroupCommitWriter:
    def __init__(self, connect: Callable[[], sqlite3.Connection], name: str = "store-writer",
                 lock_path: Path | None = None):
        self._connect = connect
        self._lock_fd = (os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                         if lock_path is not None else None)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.batches = 0
        self.ops = 0
        self._synchronous = "FULL"  # as _connect sets it
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error

    def submit(self, op: Op, durable: bool = True) -> Future[Any]:
        fut: Future[Any] = Future()
        self._queue.put((op, fut, durable))
        return fut

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as e:  # reported to the constructor
            self._error = e
            self._started.set()
            return
        self._started.set()
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                break
            if self._lock_fd is not None:  # what arrives while we wait joins the batch
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                batch = [item]
                while len(batch) < MAX_BATCH:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stopping = True
                        break
                    batch.append(nxt)
                self._run_batch(conn, batch)
            finally:
                if self._lock_fd is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        conn.close()

    @staticmethod
    def _sync_wal(conn: sqlite3.Connection) -> None:
        """fsync the WAL: what ``synchronous=FULL`` would have done at this COMMIT."""
        path = conn.execute("PRAGMA database_list").fetchone()[2]
        fd = os.open(f"{path}-wal", os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _run_batch(self, conn: sqlite3.Connection,
                   batch: list[tuple[Op, Future[Any], bool]]) -> None:
        outcomes: list[tuple[Future[Any], Any, BaseException | None]] = []
        ctx = WriteContext()
        mode = "FULL" if any(durable for _, _, durable in batch) else "NORMAL"
        try:
            if mode != self._synchronous:
                conn.execute(f"PRAGMA synchronous={mode}")
                self._synchronous = mode
            conn.execute("BEGIN IMMEDIATE")
            # A lone op needs no savepoint: if it fails, the whole (empty) transaction is
            # rolled back instead.
            alone = len(batch) == 1
            for op, fut, _ in batch:
                if not fut.set_running_or_notify_cancel():
                    continue
                if not alone:
                    conn.execute("SAVEPOINT op")
                mark, mark_durable = len(ctx.after), len(ctx.after_durable)
                try:
                    result = op(conn, ctx)
                except BaseException as e:  # the op's own failure: undo it alone
                    conn.execute("ROLLBACK" if alone else "ROLLBACK TO op")
                    if alone:
                        conn.execute("BEGIN IMMEDIATE")
                    else:
                        conn.execute("RELEASE op")
                    del ctx.after[mark:]
                    del ctx.after_durable[mark_durable:]
                    outcomes.append((fut, None, e))
                else:
                    if not alone:
                        conn.execute("RELEASE op")
                    outcomes.append((fut, result, None))
            conn.execute("COMMIT")
        except BaseException as e:  # the commit itself failed: nothing of the batch holds
            log.error("store commit failed: %s", e)
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            for _op, fut, _ in batch:
                if fut.running():
                    fut.set_exception(e)
            return
        self.batches += 1
        self.ops += len(outcomes)
        if ctx.after_durable:
            try:
                if mode == "NORMAL":
                    self._sync_wal(conn)
                ctx.after += ctx.after_durable
            except OSError as e:  # the files stay: orphans, swept at the next start
                log.error("store: fsync of the WAL failed: %s", e)
        for fn in ctx.after:
            try:
                fn()
            except Exception:
                log.exception("after-commit hook failed")
        for fut, result, err in outcomes:
            if err is not None:
                fut.set_exception(err)
            else:
                fut.set_result(result)
