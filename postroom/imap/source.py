"""What FETCH and SEARCH read about messages, as an interface (no store import here).

The session implements ``MessageSource`` on the store, caching the parse-once analysis
per message; the evaluators (``fetch_items``, ``search``) only see this.
"""

from __future__ import annotations

from typing import Protocol

from postroom.mime import MessageInfo


class MessageSource(Protocol):
    async def info(self, message_id: int) -> MessageInfo:
        """The analysis stored with the message (never re-parses the body)."""
        ...

    async def body(self, message_id: int, start: int = 0, end: int | None = None) -> bytes:
        """The stored CRLF bytes, or the slice [start, end)."""
        ...

    async def imap_summary(self, message_id: int) -> tuple[bytes, bytes] | None:
        """ENVELOPE and BODYSTRUCTURE as rendered when the message was stored, or None
        (then FETCH renders them from ``info``)."""
        ...
