"""Plain data the store hands out. Immutable; no behaviour beyond small conveniences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

# System flags as bits (RFC 9051 section 2.3.2). Keywords are kept as text.
SEEN, ANSWERED, FLAGGED, DELETED, DRAFT = 1, 2, 4, 8, 16
SYSTEM_FLAGS: dict[str, int] = {
    "\\seen": SEEN,
    "\\answered": ANSWERED,
    "\\flagged": FLAGGED,
    "\\deleted": DELETED,
    "\\draft": DRAFT,
}
FLAG_NAMES: tuple[tuple[int, str], ...] = (
    (ANSWERED, "\\Answered"),
    (FLAGGED, "\\Flagged"),
    (DELETED, "\\Deleted"),
    (SEEN, "\\Seen"),
    (DRAFT, "\\Draft"),
)

DEFAULT_MAILBOXES: tuple[tuple[str, str | None], ...] = (
    ("INBOX", None),
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)
SPECIAL_USES = frozenset({"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent",
                          "\\Trash", "\\Important"})


class Flags(NamedTuple):
    """System flag bits plus keywords (original case kept, compared case-insensitively).

    A NamedTuple rather than a frozen dataclass: SELECT of a 100,000-message mailbox
    builds one per message, and tuples are several times cheaper to make and smaller."""

    bits: int = 0
    keywords: tuple[str, ...] = ()

    @classmethod
    def from_names(cls, names: list[str] | tuple[str, ...] | frozenset[str]) -> Flags:
        bits = 0
        kws: dict[str, str] = {}
        for n in names:
            b = SYSTEM_FLAGS.get(n.lower())
            if b is not None:
                bits |= b
            elif not n.startswith("\\"):
                kws.setdefault(n.lower(), n)
        return cls(bits, tuple(sorted(kws.values(), key=str.lower)))

    def names(self) -> list[str]:
        return [name for bit, name in FLAG_NAMES if self.bits & bit] + list(self.keywords)

    def has(self, bit: int) -> bool:
        return bool(self.bits & bit)


@dataclass(frozen=True)
class Domain:
    name: str


@dataclass(frozen=True)
class User:
    id: int
    address: str
    quota: int  # bytes, 0 = unlimited
    used: int
    password_hash: str = field(repr=False, default="")
    scram: str = field(repr=False, default="")


@dataclass(frozen=True)
class Alias:
    address: str  # "@domain" for a catch-all
    targets: tuple[str, ...]


@dataclass(frozen=True)
class Mailbox:
    id: int
    user_id: int
    name: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None
    subscribed: bool


@dataclass(frozen=True)
class MailboxStatus:
    mailbox: Mailbox
    messages: int
    unseen: int
    deleted: int
    size: int
    recent: int
    deleted_size: int = 0  # octets of the \Deleted messages (RFC 9208 DELETED-STORAGE)


class Entry(NamedTuple):
    """One message in one mailbox (a NamedTuple for the same reason as Flags)."""

    uid: int
    message_id: int
    flags: Flags
    modseq: int
    size: int
    internaldate: float
    savedate: float


@dataclass(frozen=True)
class AppendResult:
    mailbox_id: int
    uidvalidity: int
    uid: int
    modseq: int
    message_id: int


@dataclass(frozen=True)
class LocalTarget:
    user_id: int
    address: str  # the account's address


@dataclass(frozen=True)
class RemoteTarget:
    address: str


Target = LocalTarget | RemoteTarget


@dataclass(frozen=True)
class Resolution:
    """Where mail to one address goes. ``local_domain`` False: not ours (relay case)."""

    local_domain: bool
    targets: tuple[Target, ...] = ()
    # With ``resolve(..., size=n)``: (user id, quota) of local targets that cannot take
    # n more bytes.
    full: tuple[tuple[int, int], ...] = ()

    @property
    def known(self) -> bool:
        return bool(self.targets)


@dataclass(frozen=True)
class DeliveryResult:
    """Per-recipient outcome of ``deliver``; ``error`` is None on success."""

    user_id: int
    result: AppendResult | None
    error: StoreError | None = None


class EntryColumns(NamedTuple):
    """A mailbox's entries as columns, in UID order (what SELECT loads): built from
    the rows by C-level transposition, without an ``Entry`` per message. ``flags``
    holds one shared ``Flags`` object per distinct flag set."""

    uids: Sequence[int]
    message_ids: Sequence[int]
    flags: Sequence[Flags]
    modseqs: Sequence[int]
    sizes: Sequence[int]
    internaldates: Sequence[float]
    savedates: Sequence[float]

    @classmethod
    def of(cls, entries: Sequence[Entry]) -> EntryColumns:
        if not entries:
            return cls((), (), (), (), (), (), ())
        return cls(*zip(*entries, strict=True))


@dataclass(frozen=True)
class Changes:
    """What happened in a mailbox after a modseq (CONDSTORE/QRESYNC, IDLE)."""

    highestmodseq: int
    uidnext: int
    changed: tuple[Entry, ...]  # new or flag-changed entries, modseq > since
    vanished: tuple[int, ...]  # expunged UIDs with modseq > since


@dataclass(frozen=True)
class QueuedRecipient:
    address: str
    notify: str = ""  # "" or comma list of SUCCESS,FAILURE,DELAY / NEVER
    orcpt: str = ""


@dataclass(frozen=True)
class QueueItem:
    id: int
    message_id: int
    mail_from: str
    recipients: tuple[QueuedRecipient, ...]
    envid: str
    ret: str
    created: float


class StoreError(Exception):
    """Base of store errors. ``code`` is an RFC 5530-style tag protocols can map."""

    code = "SERVERBUG"
    temporary = False


class NotFound(StoreError):
    code = "NONEXISTENT"


class AlreadyExists(StoreError):
    code = "ALREADYEXISTS"


class OverQuota(StoreError):
    code = "OVERQUOTA"


class TooBig(StoreError):
    code = "TOOBIG"


class Invalid(StoreError):
    code = "CANNOT"


class InUse(StoreError):
    code = "INUSE"
    temporary = True
