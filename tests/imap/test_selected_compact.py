"""The selected mailbox (``postroom.imap.selected``): sequence numbers, own and others'
changes, pending expunges - as transcripts of what the session is told - then the
column store against a reference model (the list-and-dict state it replaced) over random
operation sequences, flag-level SEARCH against a direct evaluation, and its memory."""

from __future__ import annotations

import asyncio
import bisect
import calendar
import datetime
import gc
import random
import tracemalloc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pytest

from postroom.imap import search_eval
from postroom.imap.commands import (
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchKey,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchSet,
    SearchSize,
)
from postroom.imap.grammar import SequenceSet
from postroom.imap.search_eval import search
from postroom.imap.selected import SelectedMailbox, Update
from postroom.store.models import ANSWERED, DELETED, FLAGGED, SEEN, Changes, Entry, Flags

DAY = 86400.0
T0 = float(calendar.timegm(datetime.date(2024, 1, 1).timetuple()))


NONE = Flags()


def entry(uid: int, flags: Flags = NONE, modseq: int = 1, size: int = 100) -> Entry:
    return Entry(uid, 1000 + uid, flags, modseq, size, T0 + uid * DAY, T0 + uid * DAY + 1)


def box(uids: Iterable[int], recent: tuple[int, int] = (0, 0), **flags: Flags
        ) -> SelectedMailbox:
    entries = [entry(u, flags.get(f"u{u}", Flags())) for u in uids]
    return SelectedMailbox(1, 7, entries, 10, max(uids, default=0) + 1, False, recent)


def changes(changed: Sequence[Entry] = (), vanished: Sequence[int] = (), modseq: int = 20,
            uidnext: int = 0) -> Changes:
    return Changes(modseq, uidnext, tuple(changed), tuple(vanished))


# --- sequence numbers ------------------------------------------------------------------


def test_sequence_numbers_are_positions() -> None:
    sel = box([3, 7, 9, 20])
    assert sel.exists == 4 and sel.max_uid() == 20
    assert [sel.seq_of(u) for u in (3, 7, 9, 20, 8, 21)] == [1, 2, 3, 4, None, None]
    assert [sel.uid_of(s) for s in (1, 2, 3, 4)] == [3, 7, 9, 20]
    assert sel.resolve_uids([(8, None)]) == [9, 20]
    assert sel.resolve_uids([(25, None)]) == [20]  # n:* includes the highest UID
    assert sel.resolve_uids([(1, 9), (7, 7), (9, 3)]) == [3, 7, 9]  # overlaps once
    assert sel.resolve_seqs([(2, 3), (None, 3)]) == [2, 3, 4]
    assert sel.resolve_seqs([(1, 5)]) is None  # beyond the mailbox: BAD
    assert box([]).resolve_uids([(1, None)]) == []


def test_positions_of_uids() -> None:
    sel = box(range(1, 101))
    assert sel.positions(list(range(1, 101))) == range(0, 100)  # 1:*: a range
    assert sel.positions([5, 6, 7]) == range(4, 7)
    assert list(sel.positions([5, 50, 500])) == [4, 49]
    assert list(sel.positions(list(range(2, 101, 2)))) == list(range(1, 100, 2))  # many
    assert list(sel.positions([2**40, 2**41])) == []  # not even a UID
    assert sel.present([0, 1, 99, 1000]) == [1, 99]


def test_entries_are_built_from_the_columns() -> None:
    sel = box([3, 7, 9], u7=Flags(SEEN, ("$Work",)))
    assert sel.entries[7] == entry(7, Flags(SEEN, ("$Work",)))
    assert sel.entry(8) is None and 8 not in sel.entries and 7 in sel.entries
    assert dict(sel.entries) == {u: entry(u, sel.entries[u].flags) for u in (3, 7, 9)}
    assert list(sel.entries_at(range(1, 3))) == [sel.entries[7], sel.entries[9]]
    assert list(sel.entries_at([0, 2])) == [sel.entries[3], sel.entries[9]]
    assert list(sel.column_at("size", [0, 2])) == [100, 100]
    assert sel.flag_sets[sel.flag_keys_at([1]).__next__() >> 1] == Flags(SEEN, ("$Work",))


def test_select_reports_keywords_recent_and_first_unseen() -> None:
    # C: a SELECT INBOX (IMAP4rev1; this session claimed \Recent for UIDs 9 and up)
    sel = box([3, 7, 9, 20], recent=(9, 30), u3=Flags(SEEN), u7=Flags(SEEN, ("$Junk",)))
    assert sel.flag_names()[-1] == "$Junk" and not sel.new_keywords
    assert sel.recent_count == 2 and set(sel.recent) == {9, 20} and 9 in sel.recent
    assert sel.first_unseen() == 3  # S: * OK [UNSEEN 3]
    assert box([1], u1=Flags(SEEN)).first_unseen() is None
    # many distinct unseen flag sets: the one-pass search
    many = [entry(u, Flags(ANSWERED, (f"k{u}",)) if u > 5 else Flags(SEEN)) for u in range(1, 40)]
    assert SelectedMailbox(1, 1, many, 1, 40, False).first_unseen() == 6


# --- own changes -------------------------------------------------------------------------


def test_own_expunge_reports_each_number_after_the_previous() -> None:
    # C: a EXPUNGE   (UIDs 2, 4 and 5 of 1..6 are \Deleted)
    sel = box(range(1, 7), recent=(5, 7))
    assert sel.remove_own([5, 2, 4, 99]) == [2, 3, 3]  # S: * 2 EXPUNGE, * 3 EXPUNGE, ...
    assert list(sel.uids) == [1, 3, 6]
    assert sel.seq_of(6) == 3 and sel.entries[6] == entry(6)
    assert set(sel.recent) == {6}
    assert sel.remove_own([1, 3]) == [1, 1]  # one run
    assert list(sel.uids) == [6] and sel.entries[6] == entry(6)
    assert sel.remove_own([6, 6]) == [1] and sel.exists == 0 and sel.max_uid() == 0


def test_own_flag_changes_and_new_keywords() -> None:
    sel = box([3, 7, 9])
    # C: a STORE 2 +FLAGS ($Urgent)   (the store answers with the changed entries)
    changed = [entry(7, Flags(0, ("$Urgent",)), modseq=11), entry(8, Flags(SEEN))]
    assert sel.apply_flags(changed) == [(2, changed[0])]  # S: * 2 FETCH (FLAGS ...)
    assert sel.entries[7] == changed[0]
    assert sel.new_keywords and "$Urgent" in sel.flag_names()  # S: * FLAGS (... $Urgent)
    # the feed's echo of the same change is not reported again
    assert sel.absorb(changes([changed[0]]), allow_expunge=True, recent_range=(0, 0)).empty()


# --- others' changes ---------------------------------------------------------------------


def test_others_changes_flags_and_new_messages() -> None:
    sel = box([3, 7, 9])
    new = [entry(12, Flags(0, ("$New",))), entry(10)]
    up = sel.absorb(changes([entry(7, Flags(FLAGGED), 15), *new], uidnext=13),
                    allow_expunge=False, recent_range=(10, 13))
    # S: * 5 EXISTS, * 2 RECENT, * FLAGS (... $New), * 2 FETCH (FLAGS (\Flagged))
    assert up == Update(exists=5, recent=2, fetches=[(2, entry(7, Flags(FLAGGED), 15))])
    assert list(sel.uids) == [3, 7, 9, 10, 12] and sel.entries[12] == new[0]
    assert set(sel.recent) == {10, 12} and sel.new_keywords
    assert sel.known_modseq == 20 and sel.uidnext == 13


def test_expunge_waits_while_fetch_store_or_search_runs() -> None:
    sel = box([3, 7, 9, 20])
    # another session expunges 7 and flags 7 and 9; this session is in a FETCH
    up = sel.absorb(changes([entry(7, Flags(SEEN)), entry(9, Flags(SEEN))], [7], modseq=30),
                    allow_expunge=False, recent_range=(0, 0))
    assert up.expunged_seqs == [] and up.fetches == [(3, entry(9, Flags(SEEN)))]
    assert sel.exists == 4 and sel.seq_of(9) == 3  # numbers the client holds stay valid
    assert sel.pending_expunge == {7}
    assert sel.known_modseq == 10  # not past the unannounced expunge
    # the next command that may: S: * 2 EXPUNGE (or VANISHED 7); flags of 9 at seq 2
    up = sel.absorb(changes([entry(9, Flags(SEEN | DELETED))], modseq=31),
                    allow_expunge=True, recent_range=(0, 0))
    assert up.expunged_seqs == [2] and up.vanished_uids == [7]
    assert up.fetches == [(2, entry(9, Flags(SEEN | DELETED)))]
    assert list(sel.uids) == [3, 9, 20] and not sel.pending_expunge
    assert sel.known_modseq == 31


def test_vanished_of_unknown_uids_are_ignored() -> None:
    sel = box([3, 7])
    up = sel.absorb(changes(vanished=[4, 5, 99]), allow_expunge=True, recent_range=(0, 0))
    assert up.empty() and list(sel.uids) == [3, 7] and sel.known_modseq == 20


# --- against the reference model ---------------------------------------------------------


@dataclass
class Reference:
    """The list-and-dict state SelectedMailbox had before its columns (same rules)."""

    uids: list[int]
    entries: dict[int, Entry]
    recent: set[int]
    known_modseq: int
    uidnext: int
    pending: list[int] = field(default_factory=list)
    keywords: dict[str, str] = field(default_factory=dict)
    new_keywords: bool = False

    @classmethod
    def of(cls, entries: list[Entry], modseq: int, uidnext: int, recent: tuple[int, int]
           ) -> Reference:
        ref = cls([e.uid for e in entries], {e.uid: e for e in entries},
                  {e.uid for e in entries if recent[0] <= e.uid < recent[1]}, modseq, uidnext)
        for e in entries:
            ref.note(e.flags)
        ref.new_keywords = False
        return ref

    def note(self, flags: Flags) -> None:
        for k in flags.keywords:
            if k.lower() not in self.keywords:
                self.keywords[k.lower()] = k
                self.new_keywords = True

    def seq_of(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def apply_flags(self, changed: Iterable[Entry]) -> list[tuple[int, Entry]]:
        out = []
        for e in changed:
            if e.uid in self.entries:
                self.entries[e.uid] = e
                self.note(e.flags)
                out.append((self.seq_of(e.uid) or 0, e))
        return out

    def remove_own(self, uids: Iterable[int]) -> list[int]:
        seqs = []
        for uid in sorted(uids):
            seq = self.seq_of(uid)
            if seq is not None:
                del self.uids[seq - 1]
                del self.entries[uid]
                self.recent.discard(uid)
                seqs.append(seq)
        return seqs

    def absorb(self, ch: Changes, allow_expunge: bool, recent: tuple[int, int]) -> Update:
        up = Update()
        for uid in ch.vanished:
            if uid in self.entries and uid not in self.pending:
                self.pending.append(uid)
        top = self.uids[-1] if self.uids else 0
        new = []
        for e in ch.changed:
            if e.uid > top:
                new.append(e)
            elif e.uid in self.entries:
                old, self.entries[e.uid] = self.entries[e.uid], e
                self.note(e.flags)
                if old.flags != e.flags and e.uid not in self.pending:
                    up.fetches.append((self.seq_of(e.uid) or 0, e))
        if allow_expunge and self.pending:
            up.expunged_seqs = self.remove_own(self.pending)
            up.vanished_uids = sorted(self.pending)
            self.pending = []
            up.fetches = [(self.seq_of(e.uid) or 0, e) for _, e in up.fetches
                          if e.uid in self.entries]
        if new:
            for e in sorted(new, key=lambda x: x.uid):
                self.uids.append(e.uid)
                self.entries[e.uid] = e
                self.note(e.flags)
                if recent[0] <= e.uid < recent[1]:
                    self.recent.add(e.uid)
            up.exists, up.recent = len(self.uids), len(self.recent)
        if allow_expunge or not self.pending:
            self.known_modseq = max(self.known_modseq, ch.highestmodseq)
        self.uidnext = max(self.uidnext, ch.uidnext)
        return up


FLAG_CHOICES = [Flags(), Flags(SEEN), Flags(SEEN | ANSWERED), Flags(FLAGGED, ("$Work",)),
                Flags(SEEN, ("$Junk", "later")), Flags(DELETED)]


def random_entry(rng: random.Random, uid: int, modseq: int) -> Entry:
    flags = rng.choice(FLAG_CHOICES)
    if rng.random() < 0.05:
        flags = Flags(flags.bits, (f"kw{rng.randrange(30)}",))  # a new keyword now and then
    return Entry(uid, rng.randrange(1, 2**40), flags, modseq, rng.randrange(1, 2**33),
                 rng.uniform(0, 2e9), rng.uniform(0, 2e9))


def assert_same(sel: SelectedMailbox, ref: Reference) -> None:
    assert list(sel.uids) == ref.uids
    assert dict(sel.entries) == ref.entries
    assert list(sel.entries_at(range(sel.exists))) == [ref.entries[u] for u in ref.uids]
    assert set(sel.recent) == ref.recent and sel.recent_count == len(ref.recent)
    assert sel.pending_expunge == set(ref.pending)
    assert (sel.known_modseq, sel.uidnext) == (ref.known_modseq, ref.uidnext)
    assert sel.keywords == ref.keywords and sel.new_keywords == ref.new_keywords
    sel.new_keywords = ref.new_keywords = False  # the session announced them
    unseen = [i + 1 for i, u in enumerate(ref.uids) if not ref.entries[u].flags.bits & SEEN]
    assert sel.first_unseen() == (unseen[0] if unseen else None)


@pytest.mark.parametrize("seed", range(12))
def test_same_answers_as_the_reference_model(seed: int) -> None:
    rng = random.Random(seed)
    uid, modseq = 0, 1
    entries = []
    for _ in range(rng.randrange(0, 60)):
        uid += rng.choice((1, 1, 1, 2, 5))
        modseq += 1
        entries.append(random_entry(rng, uid, modseq))
    recent = (rng.randrange(0, uid + 2), uid + 1)
    sel = SelectedMailbox(1, 1, entries, modseq, uid + 1, False, recent)
    ref = Reference.of(entries, modseq, uid + 1, recent)
    assert_same(sel, ref)
    for _ in range(40):
        op = rng.random()
        known = list(ref.uids)
        if op < 0.25:
            picked = [*rng.sample(known, min(len(known), rng.randrange(0, 6))), uid + 7]
            changed = [random_entry(rng, u, modseq + 1) for u in sorted(picked)]
            assert sel.apply_flags(changed) == ref.apply_flags(changed)
        elif op < 0.45:
            gone = [*rng.sample(known, min(len(known), rng.randrange(0, 8))), 0]
            assert sel.remove_own(gone) == ref.remove_own(gone)
        else:
            modseq += 1
            changed = [ref.entries[u] if rng.random() < 0.3 else random_entry(rng, u, modseq)
                       for u in sorted(rng.sample(known, min(len(known), rng.randrange(0, 6))))]
            for _ in range(rng.randrange(0, 4)):
                uid += rng.choice((1, 2))
                changed.append(random_entry(rng, uid, modseq))
            vanished = rng.sample(known, min(len(known), rng.randrange(0, 4)))
            vanished += [uid + 50] if rng.random() < 0.2 else []
            ch = Changes(modseq, uid + 1, tuple(changed), tuple(sorted(vanished)))
            allow, claim = rng.random() < 0.5, (rng.randrange(0, uid + 1), uid + 1)
            assert sel.absorb(ch, allow, claim) == ref.absorb(ch, allow, claim)
        assert_same(sel, ref)


# --- SEARCH over the columns -------------------------------------------------------------


def random_key(rng: random.Random, depth: int = 0) -> SearchKey:
    pick = rng.randrange(10 if depth < 3 else 7)
    if pick == 0:
        flag = rng.choice(("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Recent",
                           "$work", "later", "\\Unknown"))
        return SearchFlag(flag, rng.random() < 0.5)
    if pick == 1:
        return SearchSize(rng.random() < 0.5, rng.randrange(1, 2**33))
    if pick == 2:
        return SearchModSeq(rng.randrange(1, 80))
    if pick == 3:
        day = datetime.date(1970, 1, 1) + datetime.timedelta(days=rng.randrange(0, 23000))
        return SearchDate(rng.choice(("internal", "saved")),
                          rng.choice(("before", "on", "since")), day)
    if pick == 4:
        a, b = rng.randrange(1, 40), rng.randrange(1, 40)
        return SearchSet(SequenceSet(((a, b), (rng.randrange(1, 40), None))), rng.random() < 0.5)
    if pick == 5:
        return SearchAll()
    if pick == 6:
        return SearchFlag("\\Seen", False)
    if pick == 7:
        return SearchNot(random_key(rng, depth + 1))
    if pick == 8:
        return SearchOr(random_key(rng, depth + 1), random_key(rng, depth + 1))
    return SearchAnd(tuple(random_key(rng, depth + 1) for _ in range(rng.randrange(1, 4))))


def matches(key: SearchKey, e: Entry, seq: int, recent: bool, sel: SelectedMailbox) -> bool:
    """A direct evaluation of the entry-level keys (RFC 9051 section 6.4.4)."""
    if isinstance(key, SearchAll):
        return True
    if isinstance(key, SearchFlag):
        name = key.flag.lower()
        bits = {"\\seen": SEEN, "\\answered": ANSWERED, "\\flagged": FLAGGED,
                "\\deleted": DELETED}
        has = (recent if name == "\\recent" else bool(e.flags.bits & bits[name])
               if name in bits else False if name.startswith("\\")
               else name in {k.lower() for k in e.flags.keywords})
        return has == key.present
    if isinstance(key, SearchSize):
        return e.size > key.size if key.larger else e.size < key.size
    if isinstance(key, SearchModSeq):
        return e.modseq >= key.modseq
    if isinstance(key, SearchDate):
        when = e.internaldate if key.field == "internal" else e.savedate
        day = datetime.datetime.fromtimestamp(when, datetime.UTC).date()
        return (day < key.date if key.op == "before" else day == key.date if key.op == "on"
                else day >= key.date)
    if isinstance(key, SearchSet):
        top = sel.max_uid() if key.uid else sel.exists
        return any(a <= (e.uid if key.uid else seq) <= b
                   for a, b in key.sequence_set.resolve(top))
    if isinstance(key, SearchNot):
        return not matches(key.key, e, seq, recent, sel)
    if isinstance(key, SearchOr):
        return (matches(key.left, e, seq, recent, sel)
                or matches(key.right, e, seq, recent, sel))
    assert isinstance(key, SearchAnd)
    return all(matches(k, e, seq, recent, sel) for k in key.keys)


@pytest.mark.parametrize("seed", range(6))
def test_entry_level_search_matches_a_direct_evaluation(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_eval, "_ENTRY_SLICE", 7)  # many slices
    rng = random.Random(seed)
    entries = []
    uid = 0
    for i in range(35):
        uid += rng.choice((1, 2))
        e = random_entry(rng, uid, rng.randrange(1, 80))
        entries.append(e._replace(internaldate=T0 + rng.randrange(-3, 3) * DAY + i,
                                  savedate=rng.uniform(0, 2e9)))
    sel = SelectedMailbox(1, 1, entries, 80, uid + 1, False, (uid - 10, uid + 1))
    recent = set(sel.recent)
    for _ in range(60):
        key = random_key(rng)
        expected = [e.uid for seq, e in enumerate(entries, start=1)
                    if matches(key, e, seq, e.uid in recent, sel)]
        got = asyncio.run(search(key, sel, None, now=T0))  # type: ignore[arg-type]
        assert got == expected, key
        few = sorted([*rng.sample([e.uid for e in entries], 9), uid + 3])
        got = asyncio.run(search(key, sel, None, now=T0, candidates=few))  # type: ignore[arg-type]
        assert got == [u for u in expected if u in few], key


# --- memory ------------------------------------------------------------------------------


def test_a_100k_message_mailbox_stays_small() -> None:
    """Per session with a mailbox selected: the store's entries (one Flags object per
    distinct set, as ``SqliteStore._entries`` shares them) are dropped after SELECT, and
    what the session keeps of 100,000 messages stays under 8 MB (about 5 MB measured;
    one Entry tuple a message with its numbers took about 34 MB)."""
    rng = random.Random(1)
    sets = [Flags(0), Flags(SEEN), Flags(SEEN | ANSWERED), Flags(SEEN, ("$Forwarded",)),
            Flags(FLAGGED), Flags(SEEN, ("$Junk", "work"))]
    gc.collect()
    tracemalloc.start()
    try:
        entries = [Entry(100_000 + 2 * i, 500_000 + i, sets[rng.randrange(len(sets))],
                         1000 + i, rng.randrange(500, 90_000), 1.6e9 + 300.0 * i,
                         1.6e9 + 300.0 * i + 1) for i in range(100_000)]
        sel = SelectedMailbox(1, 1, entries, 200_000, 400_000, False, (299_000, 400_000))
        del entries
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sel.exists == 100_000 and sel.recent_count == 500
    assert held < 8_000_000, f"{held / 1e6:.1f} MB"
