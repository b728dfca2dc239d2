"""The narrow store interface the queue runner needs (shared/STYLE.md habit 7).

``SqliteQueueStore`` (``sqlite_queue.py``) implements it on the embedded store; a
PostgreSQL backend would claim due rows with ``FOR UPDATE SKIP LOCKED`` behind the
same calls.

Crash safety is a property of how the runner uses this: a recipient is written
``delivered`` only after the remote 250 (``record``), so after a crash every recipient
not yet recorded is still ``pending`` with a ``next_attempt`` in the past and is tried
again (at-least-once). ``record`` removes a queue item whose recipients are all done,
and drops the message when nothing else references it, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from postroom.queue.models import QueueEntry, RecipientUpdate


class QueueStore(Protocol):
    async def due(
        self, now: float, limit: int = 500, exclude: Collection[int] = ()
    ) -> list[QueueEntry]:
        """Queue items with pending recipients whose ``next_attempt <= now`` (at most
        ``limit`` recipients, oldest due first), each carrying only those recipients.
        Recipient ids in ``exclude`` (in flight) are left out."""
        ...

    async def get(self, queue_id: int) -> QueueEntry | None:
        """One item with all its recipients (any state), or None."""
        ...

    async def entries(self) -> list[QueueEntry]:
        """Every queued item with all its recipients, oldest first (``queue list``)."""
        ...

    async def record(self, queue_id: int, updates: Sequence[RecipientUpdate]) -> bool:
        """Write the outcome of an attempt. Returns True when the item had no pending
        recipient left and was removed (its message dropped when unreferenced)."""
        ...

    async def retry_now(self, now: float, queue_id: int | None = None) -> int:
        """Make pending recipients (of one item, or all) due at ``now``; returns how many."""
        ...

    async def next_due(self) -> float | None:
        """The earliest ``next_attempt`` of any pending recipient, or None."""
        ...

    async def read_message(self, message_id: int, start: int = 0, end: int | None = None) -> bytes:
        """The message bytes, or a slice of them."""
        ...
