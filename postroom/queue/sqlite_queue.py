"""``QueueStore`` on the embedded SQLite store (tables ``queue``, ``queue_recipients``).

Reads run on the store's reader pool (``SqliteStore._read``), writes as ops of its
group-commit writer (``SqliteStore._write``): an attempt's outcome, the removal of a
finished item and the message refcount change commit together or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from typing import Any

from postroom.queue.models import QueueEntry, QueueRecipient, RecipientUpdate
from postroom.store.sqlite import SqliteStore
from postroom.store.writer import WriteContext

_ENTRY_SQL = (
    "SELECT q.id, q.message_id, q.mail_from, q.envid, q.ret, q.created,"
    " coalesce(m.size, 0) FROM queue q LEFT JOIN messages m ON m.id = q.message_id"
)
_RCPT_SQL = (
    "SELECT id, address, notify, orcpt, state, attempts, next_attempt, last_reply"
    " FROM queue_recipients"
)


def _recipient(row: Sequence[Any]) -> QueueRecipient:
    return QueueRecipient(
        int(row[0]), row[1], row[2], row[3], row[4], int(row[5]), float(row[6]), row[7]
    )


def _entry(row: Sequence[Any], recipients: Sequence[QueueRecipient]) -> QueueEntry:
    return QueueEntry(
        int(row[0]),
        int(row[1]),
        row[2],
        row[3],
        row[4],
        float(row[5]),
        int(row[6]),
        tuple(recipients),
    )


class SqliteQueueStore:
    """The queue's view of a ``SqliteStore``."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    async def due(
        self, now: float, limit: int = 500, exclude: Collection[int] = ()
    ) -> list[QueueEntry]:
        skip = set(exclude)

        def q(conn: sqlite3.Connection) -> list[QueueEntry]:
            rows = conn.execute(
                _RCPT_SQL.replace("SELECT id", "SELECT queue_id, id")
                + " WHERE state='pending' AND next_attempt <= ? ORDER BY next_attempt, id"
                " LIMIT ?",
                (now, limit + len(skip)),
            ).fetchall()
            by_item: dict[int, list[QueueRecipient]] = {}
            taken = 0
            for row in rows:
                if row[1] in skip:
                    continue
                by_item.setdefault(int(row[0]), []).append(_recipient(row[1:]))
                taken += 1
                if taken >= limit:
                    break
            out: list[QueueEntry] = []
            for qid in sorted(by_item):
                item = conn.execute(_ENTRY_SQL + " WHERE q.id=?", (qid,)).fetchone()
                if item is not None:
                    out.append(_entry(item, by_item[qid]))
            return out

        return await self.store._read(q)

    @staticmethod
    def _load(conn: sqlite3.Connection, row: Sequence[Any]) -> QueueEntry:
        rcpts = [
            _recipient(r)
            for r in conn.execute(_RCPT_SQL + " WHERE queue_id=? ORDER BY id", (row[0],))
        ]
        return _entry(row, rcpts)

    async def get(self, queue_id: int) -> QueueEntry | None:
        def q(conn: sqlite3.Connection) -> QueueEntry | None:
            row = conn.execute(_ENTRY_SQL + " WHERE q.id=?", (queue_id,)).fetchone()
            return None if row is None else self._load(conn, row)

        return await self.store._read(q)

    async def entries(self) -> list[QueueEntry]:
        def q(conn: sqlite3.Connection) -> list[QueueEntry]:
            return [
                self._load(conn, row)
                for row in conn.execute(_ENTRY_SQL + " ORDER BY q.id").fetchall()
            ]

        return await self.store._read(q)

    async def record(self, queue_id: int, updates: Sequence[RecipientUpdate]) -> bool:
        store = self.store

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> bool:
            conn.executemany(
                "UPDATE queue_recipients SET state=?, attempts=?, next_attempt=?,"
                " last_reply=? WHERE id=? AND queue_id=?",
                [
                    (
                        u.state,
                        u.attempts,
                        u.next_attempt,
                        u.last_reply[:1000],
                        u.recipient_id,
                        queue_id,
                    )
                    for u in updates
                ],
            )
            left = conn.execute(
                "SELECT count(*) FROM queue_recipients WHERE queue_id=? AND state='pending'",
                (queue_id,),
            ).fetchone()[0]
            if left:
                return False
            row = conn.execute("SELECT message_id FROM queue WHERE id=?", (queue_id,)).fetchone()
            if row is None:
                return True  # removed meanwhile (queue remove)
            conn.execute("DELETE FROM queue_recipients WHERE queue_id=?", (queue_id,))
            conn.execute("DELETE FROM queue WHERE id=?", (queue_id,))
            conn.execute("UPDATE messages SET refs=refs-1 WHERE id=?", (row[0],))
            store._drop_message_if_orphan(conn, ctx, int(row[0]))
            return True

        return await store._write(op)

    async def retry_now(self, now: float, queue_id: int | None = None) -> int:
        def op(conn: sqlite3.Connection, ctx: WriteContext) -> int:
            if queue_id is None:
                cur = conn.execute(
                    "UPDATE queue_recipients SET next_attempt=? WHERE state='pending'", (now,)
                )
            else:
                cur = conn.execute(
                    "UPDATE queue_recipients SET next_attempt=?"
                    " WHERE state='pending' AND queue_id=?",
                    (now, queue_id),
                )
            return int(cur.rowcount)

        return await self.store._write(op)

    async def next_due(self) -> float | None:
        def q(conn: sqlite3.Connection) -> float | None:
            row = conn.execute(
                "SELECT min(next_attempt) FROM queue_recipients WHERE state='pending'"
            ).fetchone()
            return None if row is None or row[0] is None else float(row[0])

        return await self.store._read(q)

    async def read_message(self, message_id: int, start: int = 0, end: int | None = None) -> bytes:
        return await self.store.read_message(message_id, start, end)
