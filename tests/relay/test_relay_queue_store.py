"""SqliteQueueStore: due selection, recording, removal with the message refcount."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from postroom.queue.models import RecipientUpdate
from postroom.queue.sqlite_queue import SqliteQueueStore
from postroom.store.models import QueuedRecipient
from postroom.store.sqlite import SqliteStore

MSG = b"From: a@here.test\r\nSubject: x\r\n\r\nbody\r\n"


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def run(
    tmp_path: Path, fn: Callable[[SqliteStore, SqliteQueueStore, Clock], Awaitable[None]]
) -> None:
    async def main() -> None:
        clock = Clock()
        store = await SqliteStore.open(tmp_path / "data", clock=clock)
        try:
            await fn(store, SqliteQueueStore(store), clock)
            assert await store.check_integrity() == []
        finally:
            await store.close()

    asyncio.run(main())


def test_due_record_and_removal(tmp_path: Path) -> None:
    async def body(store: SqliteStore, q: SqliteQueueStore, clock: Clock) -> None:
        item = await store.enqueue(
            MSG,
            "a@here.test",
            [
                QueuedRecipient("b@x.test", "FAILURE", "rfc822;b@x.test"),
                QueuedRecipient("c@y.test"),
            ],
            envid="e1",
            ret="HDRS",
        )
        due = await q.due(clock.t)
        assert len(due) == 1 and due[0].id == item.id and due[0].size == len(MSG)
        assert (due[0].envid, due[0].ret, due[0].mail_from) == ("e1", "HDRS", "a@here.test")
        b, c = due[0].recipients
        assert (b.address, b.notify, b.orcpt, b.domain) == (
            "b@x.test",
            "FAILURE",
            "rfc822;b@x.test",
            "x.test",
        )
        assert await q.due(clock.t, exclude={b.id}) == [
            due[0].__class__(**{**_fields(due[0]), "recipients": (c,)})
        ]
        removed = await q.record(
            item.id,
            [
                RecipientUpdate(b.id, "delivered", 1, clock.t, "250 ok"),
                RecipientUpdate(c.id, "pending", 1, clock.t + 300, "451 later"),
            ],
        )
        assert not removed
        assert await q.due(clock.t) == []
        assert await q.next_due() == clock.t + 300
        full = await q.get(item.id)
        assert full is not None and [r.state for r in full.recipients] == ["delivered", "pending"]
        assert [r.address for r in (await store.list_queue())[0].recipients] == ["c@y.test"]
        assert await q.retry_now(clock.t) == 1
        assert len(await q.due(clock.t)) == 1
        removed = await q.record(item.id, [RecipientUpdate(c.id, "failed", 2, clock.t, "550 no")])
        assert removed
        assert await q.get(item.id) is None and await q.entries() == []
        assert await q.next_due() is None
        count = await store._read(
            lambda conn: conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        )
        assert count == 0

    run(tmp_path, body)


def _fields(entry: object) -> dict[str, object]:
    return {name: getattr(entry, name) for name in entry.__slots__}  # type: ignore[attr-defined]


def test_limit_and_order(tmp_path: Path) -> None:
    async def body(store: SqliteStore, q: SqliteQueueStore, clock: Clock) -> None:
        for i in range(3):
            await store.enqueue(MSG, "a@here.test", [QueuedRecipient(f"r{i}@x.test")])
            clock.t += 1
        due = await q.due(clock.t, limit=2)
        assert [e.recipients[0].address for e in due] == ["r0@x.test", "r1@x.test"]
        assert len(await q.entries()) == 3
        assert await q.read_message(due[0].message_id, 0, 4) == b"From"

    run(tmp_path, body)
