"""What the POP3 shell needs from the store: a maildrop, locked for one session.

Theory of operation (RFC 1939 section 3 and 8): a successful login opens and locks the
user's maildrop and freezes its list of messages; message numbers, sizes and unique ids
do not change for the rest of the session, even when new mail arrives. Messages marked
with DELE are only removed in the UPDATE state, after the client's QUIT. A connection
that drops, times out or fails leaves the maildrop untouched. ``release`` runs in every
case, last, so the lock never outlives the session.

The engine never sees this interface; the asyncio shell (``server.py``) calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class MaildropEntry:
    """One message as POP3 shows it.

    ``size`` is the exact length in octets of the message with CRLF line endings (what
    LIST/STAT report and RETR sends before dot-stuffing). ``uidl`` is its unique id:
    1 to 70 characters in 0x21..0x7E, stable across sessions (RFC 1939 section 7).
    ``utf8`` says the header holds raw UTF-8 (RFC 6532); such a message is refused with
    ``-ERR [UTF8]`` to a client that did not send the UTF8 command (RFC 6856 section 2).
    """

    size: int
    uidl: str
    utf8: bool = False


class Maildrop(Protocol):
    """A locked maildrop for one POP3 session."""

    @property
    def entries(self) -> Sequence[MaildropEntry]:
        """The messages, in order, as frozen at login (message n is ``entries[n-1]``)."""
        ...

    async def retrieve(self, index: int) -> bytes:
        """The whole message ``index`` (0-based) with CRLF line endings.

        Raises any exception on a store failure: the client gets ``-ERR [SYS/TEMP]``
        and the session continues."""
        ...

    async def commit(self, deleted: Sequence[int]) -> None:
        """UPDATE state: expunge these messages (0-based indexes, ascending, not
        empty). Raises on failure: the client gets ``-ERR [SYS/TEMP] some deleted
        messages not removed``."""
        ...

    async def release(self) -> None:
        """Unlock. Always called exactly once at the end of the session: after
        ``commit`` on QUIT, or without it when the connection dropped (then nothing
        is deleted). Should not raise."""
        ...


class Pop3Backend(Protocol):
    """Opens maildrops for authenticated users."""

    async def open_maildrop(self, user: str) -> Maildrop | None:
        """Open and lock ``user``'s maildrop (``user`` is the canonical name the
        authenticator returned). ``None`` when another POP3 session holds the lock:
        the client gets ``-ERR [IN-USE]``. Raises on a store failure: ``-ERR
        [SYS/TEMP]``."""
        ...
