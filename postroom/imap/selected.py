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

Memory: every session with a big mailbox selected holds this state, so it is kept in
parallel columns (``array.array``, one machine word or less per field) rather than one
``Entry`` tuple per message: about 50 bytes a message instead of about 340. Flags are
an index into a small table of the distinct flag sets seen (a mailbox has few), and
\\Recent is one byte a message. ``Entry`` objects are built on demand (``entry``,
``entry_at``, ``entries_at``; ``entries`` is a read-only mapping view by UID); the bulk
accessors take positions (0-based: sequence number - 1) and run in C (``map``/``zip``
over array slices), which is what keeps SELECT, FETCH FLAGS and flag-only SEARCH fast.
"""

from __future__ import annotations

import bisect
import operator
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from itertools import compress, pairwise, repeat
from typing import Any

from postroom.store.models import (
    FLAG_NAMES,
    SEEN,
    Changes,
    Entry,
    EntryColumns,
    Flags,
    Mailbox,
)

SYSTEM_FLAG_NAMES = tuple(name for _, name in FLAG_NAMES)

Positions = Sequence[int]  # 0-based positions, ascending; a range is cheapest


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


def _take(column: Sequence[Any], positions: Positions) -> Iterable[Any]:
    """The values of ``column`` at ``positions``: a slice for a step-1 range (memcpy),
    else a C-level ``map``."""
    if isinstance(positions, range) and positions.step == 1:
        return column[positions.start:positions.stop]
    return map(column.__getitem__, positions)


def _column(typecode: str, values: Iterable[Any]) -> array[Any]:
    """An array of ``values``, exactly sized; from a list, which is faster than from an
    iterator."""
    return array(typecode, list(values))


def _runs(positions: list[int]) -> list[tuple[int, int]]:
    """Ascending unique positions as [start, stop) runs of consecutive ones."""
    runs: list[tuple[int, int]] = []
    for p in positions:
        if runs and runs[-1][1] == p:
            runs[-1] = (runs[-1][0], p + 1)
        else:
            runs.append((p, p + 1))
    return runs


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Half-open spans sorted and merged (overlapping or touching ones joined)."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if a >= b:
            continue
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


class SelectedMailbox:
    """Per-message state in columns indexed by position; ``uids`` is ascending.

    ``uids`` may be read (bisect, slices, iteration) but not changed from outside; all
    changes go through ``apply_flags``, ``remove_own`` and ``absorb``."""

    def __init__(self, mailbox_id: int, uidvalidity: int,
                 entries: Sequence[Entry] | EntryColumns, highestmodseq: int, uidnext: int,
                 readonly: bool, recent_range: tuple[int, int] = (0, 0)) -> None:
        self.mailbox_id = mailbox_id
        self.uidvalidity = uidvalidity
        self.readonly = readonly
        self.known_modseq = highestmodseq
        self.uidnext = uidnext
        self.pending_expunge: set[int] = set()  # UIDs gone in the store, not yet announced
        self.saved_result: list[int] = []  # SEARCHRES "$" (RFC 5182), as UIDs
        self.mailbox: Mailbox | None = None  # the store's record, for COPY/MOVE
        self.keywords: dict[str, str] = {}  # lower case -> as first seen
        self.new_keywords = False  # keywords were added since the last announcement
        # the distinct flag sets; _flag_ix holds an index into _flag_sets per message
        self._flag_sets: list[Flags] = []
        self._flag_slots: dict[Flags, int] = {}
        cols = entries if isinstance(entries, EntryColumns) else EntryColumns.of(entries)
        self.uids: array[int] = _column("I", cols.uids)
        self._message_ids: array[int] = _column("Q", cols.message_ids)
        slots = _NewSlots(self)  # a slot per distinct flag set, in one pass
        self._flag_ix: array[int] = _column("I", map(slots.__getitem__, cols.flags))
        self._modseqs: array[int] = _column("Q", cols.modseqs)
        self._sizes: array[int] = _column("Q", cols.sizes)
        self._internaldates: array[float] = _column("d", cols.internaldates)
        self._savedates: array[float] = _column("d", cols.savedates)
        self._recent = bytearray(len(self.uids))  # 1: \Recent in this session
        lo, hi = recent_range
        if lo < hi:
            i, j = bisect.bisect_left(self.uids, lo), bisect.bisect_left(self.uids, hi)
            self._recent[i:j] = b"\x01" * (j - i)
        self.new_keywords = False  # the keywords of SELECT are announced by SELECT

    def _flag_slot(self, flags: Flags) -> int:
        slot = self._flag_slots.get(flags)
        if slot is None:
            slot = self._flag_slots[flags] = len(self._flag_sets)
            self._flag_sets.append(flags)
            self._note_keywords(flags)
        return slot

    def _columns(self) -> tuple[Any, ...]:
        return (self.uids, self._message_ids, self._flag_ix, self._modseqs, self._sizes,
                self._internaldates, self._savedates, self._recent)

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

    def index_of(self, uid: int) -> int | None:
        """The position (sequence number - 1) of ``uid``, None if not in the mailbox."""
        i = bisect.bisect_left(self.uids, uid)
        return i if i < len(self.uids) and self.uids[i] == uid else None

    def seq_of(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def uid_of(self, seq: int) -> int:
        return self.uids[seq - 1]

    def max_uid(self) -> int:
        return self.uids[-1] if self.uids else 0

    def positions(self, uids: Sequence[int]) -> Positions:
        """Positions of those of ``uids`` (ascending) that are in the mailbox, in order;
        a range when they are a run of consecutive messages (``1:*``, say)."""
        a = self.uids
        if not uids or not a:
            return range(0)
        i = bisect.bisect_left(a, uids[0])
        j = i + len(uids)
        try:
            if j <= len(a) and a[i:j] == array("I", uids):
                return range(i, j)
        except OverflowError:  # not a UID (over 32 bits): not in the mailbox either
            pass
        if len(uids) * 8 > len(a):  # many: one pass over the mailbox, in C
            wanted = set(uids)
            return list(compress(range(len(a)), map(wanted.__contains__, a)))
        out = []
        for i, uid in zip(map(bisect.bisect_left, repeat(a), uids), uids, strict=True):
            if i < len(a) and a[i] == uid:
                out.append(i)
        return out

    def present(self, uids: Sequence[int]) -> list[int]:
        """Those of ``uids`` (ascending) that are in the mailbox."""
        return list(self.uids_at(self.positions(uids)))

    def resolve_uids(self, uid_ranges: Iterable[tuple[int | None, int | None]]) -> list[int]:
        """UIDs present in the mailbox for ranges (lo, hi); hi None means ``*``. A range
        ``n:*`` always includes the highest UID, even when n is above it (RFC 9051
        section 6.4.9 / 9)."""
        top = self.max_uid()
        spans = []
        for lo, hi in uid_ranges:
            a = top if lo is None else lo
            b = top if hi is None else hi
            if a > b:
                a, b = b, a
            spans.append((bisect.bisect_left(self.uids, a), bisect.bisect_right(self.uids, b)))
        out: list[int] = []
        for i, j in _merge(spans):
            out += self.uids[i:j].tolist()
        return out

    def resolve_seqs(self, seq_ranges: Iterable[tuple[int | None, int | None]]
                     ) -> list[int] | None:
        """Sequence numbers for ranges; ``*`` is the last message. None if a number is
        out of range (the caller answers BAD, RFC 9051 section 9 seq-number)."""
        n = self.exists
        spans = []
        for lo, hi in seq_ranges:
            a = n if lo is None else lo
            b = n if hi is None else hi
            if a > b:
                a, b = b, a
            if a < 1 or b > n:
                return None
            spans.append((a, b + 1))
        out: list[int] = []
        for a, b in _merge(spans):
            out += range(a, b)
        return out

    # ------------------------------------------------------------------ entries

    def entry(self, uid: int) -> Entry | None:
        i = self.index_of(uid)
        return None if i is None else self.entry_at(i)

    def entry_at(self, i: int) -> Entry:
        return Entry(self.uids[i], self._message_ids[i], self._flag_sets[self._flag_ix[i]],
                     self._modseqs[i], self._sizes[i], self._internaldates[i],
                     self._savedates[i])

    def entries_at(self, positions: Positions) -> Iterator[Entry]:
        """Entries at ``positions``, built as they are consumed."""
        return map(Entry._make, zip(
            _take(self.uids, positions), _take(self._message_ids, positions),
            self.flags_at(positions), _take(self._modseqs, positions),
            _take(self._sizes, positions), _take(self._internaldates, positions),
            _take(self._savedates, positions), strict=True))

    def column_at(self, name: str, positions: Positions) -> Iterator[Any]:
        """One column at ``positions``: an Entry field name (``uid``, ``message_id``,
        ``flags``, ``modseq``, ``size``, ``internaldate``, ``savedate``) or ``recent``."""
        if name == "flags":
            return self.flags_at(positions)
        if name == "recent":
            return self.recent_at(positions)
        columns: dict[str, Sequence[Any]] = {
            "uid": self.uids, "message_id": self._message_ids, "modseq": self._modseqs,
            "size": self._sizes, "internaldate": self._internaldates,
            "savedate": self._savedates}
        return iter(_take(columns[name], positions))

    def flag_keys_at(self, positions: Positions) -> Iterator[int]:
        """``2 * flag slot + recent``: equal keys, equal flags and \\Recent (a cache key
        for whatever depends on those alone; ``flag_sets[key >> 1]`` are the flags)."""
        return map(operator.add, map(operator.mul, _take(self._flag_ix, positions), repeat(2)),
                   _take(self._recent, positions))

    def uids_at(self, positions: Positions) -> Iterator[int]:
        return iter(_take(self.uids, positions))

    def flags_at(self, positions: Positions) -> Iterator[Flags]:
        return map(self._flag_sets.__getitem__, _take(self._flag_ix, positions))

    @property
    def flag_sets(self) -> Sequence[Flags]:
        """The distinct flag sets seen, indexed by flag slot (see ``flag_keys_at``)."""
        return self._flag_sets

    def modseqs_at(self, positions: Positions) -> Iterator[int]:
        return iter(_take(self._modseqs, positions))

    def recent_at(self, positions: Positions) -> Iterator[bool]:
        return map(bool, _take(self._recent, positions))

    @property
    def entries(self) -> Mapping[int, Entry]:
        """A read-only view: UID -> Entry, in UID order (each lookup builds the Entry)."""
        return _EntriesView(self)

    # ------------------------------------------------------------------ \Recent

    @property
    def recent(self) -> AbstractSet[int]:
        """A read-only view: the UIDs with \\Recent in this session."""
        return _RecentView(self)

    @property
    def recent_count(self) -> int:
        return self._recent.count(1)

    def is_recent(self, uid: int) -> bool:
        i = self.index_of(uid)
        return i is not None and bool(self._recent[i])

    def mark_recent(self, uids: Iterable[int]) -> None:
        """Give ``uids`` (those present) the \\Recent flag in this session."""
        for uid in uids:
            i = self.index_of(uid)
            if i is not None:
                self._recent[i] = 1

    def first_unseen(self) -> int | None:
        """The sequence number of the first message without \\Seen, if any."""
        unseen = [slot for slot, f in enumerate(self._flag_sets) if not f.bits & SEEN]
        if len(unseen) > 8:  # many distinct sets: one pass
            wanted = frozenset(unseen)
            return next((i + 1 for i, s in enumerate(self._flag_ix) if s in wanted), None)
        best = len(self._flag_ix)
        for slot in unseen:  # array.index scans in C, each bounded by the best so far
            try:
                best = self._flag_ix.index(slot, 0, best)
            except ValueError:
                pass
        return best + 1 if best < len(self._flag_ix) else None

    # ------------------------------------------------------------------ own changes

    def _put(self, i: int, e: Entry) -> None:
        self._message_ids[i] = e.message_id
        self._flag_ix[i] = self._flag_slot(e.flags)
        self._modseqs[i] = e.modseq
        self._sizes[i] = e.size
        self._internaldates[i] = e.internaldate
        self._savedates[i] = e.savedate

    def apply_flags(self, changed: Iterable[Entry]) -> list[tuple[int, Entry]]:
        """Record this session's own flag changes; return (seq, entry) to report."""
        out = []
        for e in changed:
            i = self.index_of(e.uid)
            if i is not None:
                self._put(i, e)
                out.append((i + 1, e))
        return out

    def remove_own(self, uids: Iterable[int]) -> list[int]:
        """This session expunged ``uids``: drop them; return their sequence numbers in
        the order EXPUNGE responses must be sent (each relative to the state after the
        previous one, hence descending order of removal is not needed: ascending seqs
        shifted by the number already removed). One pass over the columns however many
        are removed."""
        gone = sorted({i for i in map(self.index_of, uids) if i is not None})
        if not gone:
            return []
        runs = _runs(gone)
        if len(runs) == 1:
            a, b = runs[0]
            for col in self._columns():
                del col[a:b]
        else:
            for col in self._columns():
                kept = col[:runs[0][0]]
                for (_, b), (a, _) in pairwise(runs):
                    kept += col[b:a]
                kept += col[runs[-1][1]:]
                col[:] = kept
        return [p + 1 - k for k, p in enumerate(gone)]

    # ------------------------------------------------------------------ others' changes

    def absorb(self, changes: Changes, allow_expunge: bool, recent_range: tuple[int, int],
               ) -> Update:
        """Fold a ``changes_since`` answer in; return what may be reported now."""
        up = Update()
        for uid in changes.vanished:
            if self.index_of(uid) is not None:
                self.pending_expunge.add(uid)
        new: list[Entry] = []
        top = self.max_uid()
        for e in changes.changed:
            if e.uid > top:
                new.append(e)
                continue
            i = self.index_of(e.uid)
            if i is None:
                continue
            old_slot = self._flag_ix[i]
            self._put(i, e)
            if self._flag_ix[i] != old_slot and e.uid not in self.pending_expunge:
                up.fetches.append((i + 1, e))
        if allow_expunge and self.pending_expunge:
            up.vanished_uids = sorted(self.pending_expunge)
            up.expunged_seqs = self.remove_own(up.vanished_uids)
            self.pending_expunge = set()
            # sequence numbers moved; flag changes of expunged messages are moot
            up.fetches = [(i + 1, e) for i, e in
                          ((self.index_of(e.uid), e) for _, e in up.fetches)
                          if i is not None]
        if new:
            lo, hi = recent_range
            for e in sorted(new, key=lambda x: x.uid):
                self.uids.append(e.uid)
                self._message_ids.append(0)
                self._flag_ix.append(0)
                self._modseqs.append(0)
                self._sizes.append(0)
                self._internaldates.append(0.0)
                self._savedates.append(0.0)
                self._recent.append(1 if lo <= e.uid < hi else 0)
                self._put(len(self.uids) - 1, e)
            up.exists = self.exists
            up.recent = self.recent_count
        if allow_expunge or not self.pending_expunge:
            self.known_modseq = max(self.known_modseq, changes.highestmodseq)
        self.uidnext = max(self.uidnext, changes.uidnext)
        return up


class _EntriesView(Mapping[int, Entry]):
    """``SelectedMailbox.entries``: a Mapping by UID over the columns."""

    __slots__ = ("_sel",)

    def __init__(self, sel: SelectedMailbox) -> None:
        self._sel = sel

    def __getitem__(self, uid: int) -> Entry:
        i = self._sel.index_of(uid)
        if i is None:
            raise KeyError(uid)
        return self._sel.entry_at(i)

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, int) and self._sel.index_of(uid) is not None

    def __iter__(self) -> Iterator[int]:
        return iter(self._sel.uids)

    def __len__(self) -> int:
        return len(self._sel.uids)


class _RecentView(AbstractSet[int]):
    """``SelectedMailbox.recent``: the UIDs flagged \\Recent, over the column."""

    __slots__ = ("_sel",)

    def __init__(self, sel: SelectedMailbox) -> None:
        self._sel = sel

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, int) and self._sel.is_recent(uid)

    def __iter__(self) -> Iterator[int]:
        sel = self._sel
        return (uid for uid, r in zip(sel.uids, sel._recent, strict=True) if r)

    def __len__(self) -> int:
        return self._sel.recent_count


class _NewSlots(dict[Flags, int]):
    """Flag set -> slot while SELECT loads the columns: a C dict lookup per message,
    ``SelectedMailbox._flag_slot`` only for a set not met before."""

    def __init__(self, sel: SelectedMailbox) -> None:
        super().__init__()
        self.sel = sel

    def __missing__(self, flags: Flags) -> int:
        slot = self[flags] = self.sel._flag_slot(flags)
        return slot
