"""In-process change feed: wakes sessions when a mailbox changes.

Theory of operation: the feed carries no data, only "mailbox N changed" after the change
is committed. A subscriber (an IMAP session in IDLE, a selected mailbox) then asks the
store what changed since the modseq it knows. Subscribers live on an event loop; the
writer thread publishes with ``call_soon_threadsafe``. Several nodes on PostgreSQL will
feed the same interface from LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable


class Subscription:
    """A wake-up for one mailbox; ``wait()`` returns when it changed since last wait."""

    def __init__(self, feed: ChangeFeed, mailbox_id: int, loop: asyncio.AbstractEventLoop):
        self.feed = feed
        self.mailbox_id = mailbox_id
        self.loop = loop
        self.event = asyncio.Event()
        self.callbacks: list[Callable[[], None]] = []

    def _fire(self) -> None:
        self.event.set()
        for cb in self.callbacks:
            cb()

    async def wait(self) -> None:
        await self.event.wait()
        self.event.clear()

    def pending(self) -> bool:
        return self.event.is_set()

    def mark_pending(self) -> None:
        """As if a change had come: the owner looks at the store once."""
        self.event.set()

    def clear(self) -> None:
        self.event.clear()

    def close(self) -> None:
        self.feed._remove(self)


class ChangeFeed:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[int, set[Subscription]] = {}
        # Called (from the thread that publishes) with every set of changed mailboxes,
        # so other worker processes can wake their sessions (postroom/workers.py).
        self.remote: Callable[[set[int]], None] | None = None

    def subscribe(self, mailbox_id: int) -> Subscription:
        """Call from the event loop that will wait on the subscription."""
        sub = Subscription(self, mailbox_id, asyncio.get_running_loop())
        with self._lock:
            self._subs.setdefault(mailbox_id, set()).add(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.mailbox_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.mailbox_id]

    def publish(self, mailbox_ids: Iterable[int], local: bool = False) -> None:
        """Thread-safe: wake every subscriber of these mailboxes (``local``: only in
        this process; for news from another worker)."""
        ids = set(mailbox_ids)
        if not local and self.remote is not None and ids:
            self.remote(ids)
        with self._lock:
            targets = [s for m in ids for s in self._subs.get(m, ())]
        for sub in targets:
            try:
                sub.loop.call_soon_threadsafe(sub._fire)
            except RuntimeError:  # loop closed
                pass
