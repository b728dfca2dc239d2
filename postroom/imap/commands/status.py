"""STATUS (RFC 9051 section 6.3.11): ``STATUS SP mailbox SP "(" status-att *(SP
status-att) ")"``.

Known items: MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE (RFC 9051), RECENT
(IMAP4rev1, RFC 3501 section 6.3.10), HIGHESTMODSEQ (RFC 7162 section 3.1.9),
APPENDLIMIT (RFC 7889 section 4). Anything else is BAD.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from postroom.imap.commands.base import Availability, ImapCommand
from postroom.imap.grammar.reader import Reader

STATUS_ITEMS = frozenset(
    {
        "MESSAGES",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "DELETED",
        "DELETED-STORAGE",  # RFC 9208 section 4.1.4
        "SIZE",
        "RECENT",
        "HIGHESTMODSEQ",
        "APPENDLIMIT",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Status(ImapCommand):
    """``items``: upper-cased, in the client's order, duplicates dropped."""

    mailbox: str
    items: tuple[str, ...]

    available: ClassVar[Availability] = Availability.AUTH_OR_SELECTED


def status_items(r: Reader) -> tuple[str, ...]:
    """``"(" status-att *(SP status-att) ")"`` (shared with LIST RETURN (STATUS ...))."""
    items = r.paren_keywords(allow_empty=False, what="a status item")
    for item in items:
        if item not in STATUS_ITEMS:
            raise r.fail(f"Unknown STATUS item {item}")
    return tuple(dict.fromkeys(items))


def parse_status(r: Reader, tag: str, name: str) -> Status:
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    items = status_items(r)
    r.end()
    return Status(tag=tag, mailbox=mailbox, items=items)
