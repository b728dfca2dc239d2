"""The selected mailbox of one IMAP session: sequence numbers, flags, pending updates.

Theory of operation: on SELECT the session loads every entry's UID, flags and modseq
once. Message sequence numbers are positions in ``uids`` (RFC 9051 section 2.3.1.2).
Other sessions' changes arrive through the store's change feed as a wake-up; the
session then asks the store for ``changes_since(known_modseq)`` and turns the answer
into untagged responses, but only at moments the RFC allows:

- EXISTS and FETCH (FLAGS) after any command (RFC 9051 section 7.3.1, 7.5.2);
- EXPUNGE/VANISHED never while a FETCH, STORE or SEARCH runs (section 7.5.1), so that
  sequence numbers the client holds stay valid; the UID forms may see them.

This session's own STORE/EXPUNGE/COPY results are applied directly, and the feed's echo
of them is recognised (same flags, already-gone UIDs) and not reported twice.

Keywords: the FLAGS response of SELECT lists the keywords in use; a keyword first seen
later (this session's STORE, another session's change, a new message) is collected in
``new_keywords`` so the session can announce the longer list (FLAGS and PERMANENTFLAGS,
RFC 9051 section 7.3.5) before the FETCH that shows it, as Dovecot does.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from postroom.store.models import FLAG_NAMES, Changes, Entry, Flags, Mailbox

SYSTEM_FLAG_NAMES = tuple(name for _, name in FLAG_NAMES)


@dataclass
class Update:
    """Untagged data to send: expunged sequence numbers (in sending order), or UIDs for
    VANISHED when QRESYNC is on, the new EXISTS count, and flag changes (seq, entry)."""

    expunged_seqs: list[int] = field(default_factory=list)
    vanished_uids: list[int] = field(default_factory=list)
    exists: int | None = None
    recent: int | None = None
    fetches: list[tuple[int, Entry]] = field(default_factory=list)

    def empty(self) -> bool:
        return (not self.expunged_seqs and not self.vanished_uids and self.exists is None
                and not self.fetches)


class SelectedMailbox:
    def __init__(self, mailbox_id: int, uidvalidity: int, entries: Sequence[Entry],
                 highestmodseq: int, uidnext: int, readonly: bool,
                 recent_range: tuple[int, int] = (0, 0)) -> None:
        self.mailbox_id = mailbox_id
        self.uidvalidity = uidvalidity
        self.readonly = readonly
        self.uids: list[int] = [e.uid for e in entries]
        self.entries: dict[int, Entry] = {e.uid: e for e in entries}
        self.known_modseq = highestmodseq
        self.uidnext = uidnext
        self.recent: set[int] = {u for u in self.uids if recent_range[0] <= u < recent_range[1]}
        self.pending_expunge: list[int] = []  # UIDs gone in the store, not yet announced
        self.saved_result: list[int] = []  # SEARCHRES "$" (RFC 5182), as UIDs
        self.mailbox: Mailbox | None = None  # the store's record, for COPY/MOVE
        self.keywords: dict[str, str] = {}  # lower case -> as first seen
        for e in entries:
            for k in e.flags.keywords:
                self.keywords.setdefault(k.lower(), k)
        self.new_keywords = False  # keywords were added since the last announcement

    def flag_names(self) -> list[str]:
        """The FLAGS list: system flags, then the keywords known in this mailbox."""
        return [*SYSTEM_FLAG_NAMES, *sorted(self.keywords.values(), key=str.lower)]

    def _note_keywords(self, flags: Flags) -> None:
        for k in flags.keywords:
            if k.lower() not in self.keywords:
                self.keywords[k.lower()] = k
                self.new_keywords = True

    # ------------------------------------------------------------------ lookups

    @property
    def exists(self) -> int:
        return len(self.uids)

    def seq_of(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def uid_of(self, seq: int) -> int:
        return self.uids[seq - 1]

    def max_uid(self) -> int:
        return self.uids[-1] if self.uids else 0

    def resolve_uids(self, uid_ranges: Iterable[tuple[int | None, int | None]]) -> list[int]:
        """UIDs present in the mailbox for ranges (lo, hi); hi None means ``*``. A range
        ``n:*`` always includes the highest UID, even when n is above it (RFC 9051
        section 6.4.9 / 9)."""
        top = self.max_uid()
        out: set[int] = set()
        for lo, hi in uid_ranges:
            a = top if lo is None else lo
            b = top if hi is None else hi
            if a > b:
                a, b = b, a
            i = bisect.bisect_left(self.uids, a)
            j = bisect.bisect_right(self.uids, b)
            out.update(self.uids[i:j])
        return sorted(out)

    def resolve_seqs(self, seq_ranges: Iterable[tuple[int | None, int | None]]
                     ) -> list[int] | None:
        """Sequence numbers for ranges; ``*`` is the last message. None if a number is
        out of range (the caller answers BAD, RFC 9051 section 9 seq-number)."""
        n = self.exists
        out: set[int] = set()
        for lo, hi in seq_ranges:
            a = n if lo is None else lo
            b = n if hi is None else hi
            if a > b:
                a, b = b, a
            if a < 1 or b > n:
                return None
            out.update(range(a, b + 1))
        return sorted(out)

    # ------------------------------------------------------------------ own changes

    def apply_flags(self, changed: Iterable[Entry]) -> list[tuple[int, Entry]]:
        """Record this session's own flag changes; return (seq, entry) to report."""
        out = []
        for e in changed:
            if e.uid in self.entries:
                self.entries[e.uid] = e
                self._note_keywords(e.flags)
                seq = self.seq_of(e.uid)
                if seq is not None:
                    out.append((seq, e))
        return out

    def remove_own(self, uids: Iterable[int]) -> list[int]:
        """This session expunged ``uids``: drop them; return their sequence numbers in
        the order EXPUNGE responses must be sent (each relative to the state after the
        previous one, hence descending order of removal is not needed: ascending seqs
        shifted by the number already removed)."""
        seqs = []
        for uid in sorted(uids):
            seq = self.seq_of(uid)
            if seq is None:
                continue
            del self.uids[seq - 1]
            self.entries.pop(uid, None)
            self.recent.discard(uid)
            seqs.append(seq)
        return seqs

    # ------------------------------------------------------------------ others' changes

    def absorb(self, changes: Changes, allow_expunge: bool, recent_range: tuple[int, int],
               ) -> Update:
        """Fold a ``changes_since`` answer in; return what may be reported now."""
        up = Update()
        for uid in changes.vanished:
            if uid in self.entries and uid not in self.pending_expunge:
                self.pending_expunge.append(uid)
        new: list[Entry] = []
        top = self.max_uid()
        for e in changes.changed:
            if e.uid > top and e.uid not in self.entries:
                new.append(e)
            elif e.uid in self.entries:
                old = self.entries[e.uid]
                self.entries[e.uid] = e
                self._note_keywords(e.flags)
                if old.flags != e.flags and e.uid not in self.pending_expunge:
                    seq = self.seq_of(e.uid)
                    if seq is not None:
                        up.fetches.append((seq, e))
        if allow_expunge and self.pending_expunge:
            for seq in self.remove_own(self.pending_expunge):
                up.expunged_seqs.append(seq)
            up.vanished_uids = sorted(self.pending_expunge)
            self.pending_expunge = []
            # flag changes of expunged messages are moot
            up.fetches = [(self.seq_of(e.uid) or 0, e) for _, e in up.fetches
                          if e.uid in self.entries]
        if new:
            for e in sorted(new, key=lambda x: x.uid):
                self.uids.append(e.uid)
                self.entries[e.uid] = e
                self._note_keywords(e.flags)
                if recent_range[0] <= e.uid < recent_range[1]:
                    self.recent.add(e.uid)
            up.exists = self.exists
            up.recent = len(self.recent)
        if allow_expunge or not self.pending_expunge:
            self.known_modseq = max(self.known_modseq, changes.highestmodseq)
        self.uidnext = max(self.uidnext, changes.uidnext)
        return up
