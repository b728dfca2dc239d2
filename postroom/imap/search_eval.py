"""SEARCH evaluation: which messages of the selected mailbox match a key tree.

Theory of operation: the criteria (``postroom.imap.commands.search``) are compiled once
into tests, each tagged with the data it needs - the store ``Entry`` (flags, size,
dates, UIDs, modseq), the stored analysis (``MessageSource.info``: decoded Subject and
addresses, Date), the raw top-level header (other HEADER fields), or the message text
(BODY, TEXT). Each message is evaluated in rounds of increasing cost with three-valued
logic (true / false / not known yet): a round that settles the answer stops there, so
``UNSEEN BODY foo`` never reads the body of a seen message, and the analysis is not even
loaded when flags decide. The cheapest round, flags and \\Recent, is answered once per
distinct flag set of the mailbox (``SelectedMailbox.flag_keys_at``), and the entry round
reads only the columns of the selected mailbox that its tests name. The text round
scans the message once for all its BODY/TEXT keys, part by part and in bounded chunks,
and stops as soon as every key is found.

Semantics (RFC 9051 section 6.4.4; RFC 3501 for the IMAP4rev1 keys), where the RFC
leaves room, follow Dovecot 2.3 without full-text search (checked against the real
``imap`` binary, ``tests/imap/fixtures/dovecot_imap_eval.json``; the known differences
are listed in ``tests/imap/test_search_eval.py``):

* Strings match as substrings, case-insensitively, after Unicode normalisation of both
  sides: NFKD then case folding, which approximates RFC 5051 i;unicode-casemap
  (Dovecot: titlecase + decomposition) - so ``cafe`` finds ``café``.
* SUBJECT: the decoded (RFC 2047) subject, white space runs collapsed. FROM, TO, CC,
  BCC: the decoded header and, per address, Dovecot's normalised form (``Name
  <box@host>``, names quoted when needed, ``group: ...;``). Other HEADER fields: every
  occurrence in the top-level header, unfolded and decoded. An empty string matches
  every message that has the field.
* BODY: the decoded (transfer encoding and charset; unknown charsets as UTF-8) bodies
  of text/* and message/* leaf parts, at any depth; not preambles, epilogues, other
  types or parts in an unknown transfer encoding. TEXT: the same plus
  every header block (the message's, each part's MIME header, encapsulated messages'),
  as ``Name: decoded value`` lines; each part is one stream, as in Dovecot. Empty
  BODY/TEXT strings match everything.
* BEFORE/ON/SINCE compare the date of the internal date in UTC (the server's time zone
  for this purpose); SAVED* likewise with the save date (RFC 8514). SENT* use the Date
  header's own calendar date, as written (RFC 9051: "disregarding time and timezone");
  a message without a parseable Date counts as sent on 1 January 1970 (Dovecot).
* OLDER/YOUNGER (RFC 5032): internal date at least / at most n seconds before ``now``.
* MODSEQ (RFC 7162 section 3.1.5): the message's mod-sequence, also when a flag entry
  is named (per-flag mod-sequences are not kept; RFC 7162 allows that).
* Sequence numbers beyond the mailbox, or UIDs not in it, match nothing; ``*`` is the
  last message / highest UID (RFC 9051 section 6.4.4); ``$`` is ``saved`` (RFC 5182).
"""

from __future__ import annotations

import asyncio
import bisect
import calendar
import codecs
import contextlib
import datetime
import operator
import re
import unicodedata
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_tz
from enum import IntEnum
from itertools import compress, repeat

from postroom.imap.commands.search import (
    SearchAge,
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchSaveDateSupported,
    SearchSet,
    SearchSize,
    SearchText,
)
from postroom.imap.grammar.sequence import SequenceSet
from postroom.imap.selected import SelectedMailbox
from postroom.imap.source import MessageSource
from postroom.mime import Address, MessageInfo, Part, PartKind, decode_words, unfold
from postroom.mime.headers import split_fields
from postroom.mime.transfer import decode_base64, decode_qp, decode_text, lookup_charset
from postroom.store.models import SYSTEM_FLAGS, Entry, Flags

# Messages up to this size are read whole for a text scan (one read); larger ones part
# by part, big parts in chunks of about _CHUNK octets.
_READ_WHOLE = 256 * 1024
_CHUNK = 256 * 1024
_YIELD_EVERY = 1024  # messages between event loop yields
_EPOCH_DATE = datetime.date(1970, 1, 1)
_KNOWN_CTE = frozenset({"", "7bit", "8bit", "binary", "base64", "quoted-printable"})


class _Level(IntEnum):
    """What a test needs, cheapest first."""

    FLAGS = 0  # the flags and \Recent alone (or nothing): answered once per flag set
    ENTRY = 1  # the store entry (and the mailbox state)
    INFO = 2  # MessageSource.info
    HEADER = 3  # the raw top-level header
    TEXT = 4  # header blocks and bodies of every part


async def search(
    criteria: SearchKey,
    selected: SelectedMailbox,
    source: MessageSource,
    *,
    candidates: Sequence[int] | None = None,
    now: float,
    saved: Sequence[int] = (),
) -> list[int]:
    """The UIDs of the messages matching ``criteria``, ascending.

    ``candidates``: UIDs to consider (default: every message of ``selected``); UIDs not
    in the mailbox are ignored. ``now``: the time OLDER/YOUNGER count back from.
    ``saved``: the UIDs of the saved result ``$`` (RFC 5182). Sequence numbers refer to
    the mailbox as ``selected`` holds it now. Whatever ``source`` raises passes through.
    """
    root = _compile(criteria, selected, saved)
    plan = _Plan(sorted(_levels(root)), _collect_text(root))
    positions = (range(selected.exists) if candidates is None
                 else selected.positions(sorted(set(candidates))))
    entry_only = plan.levels[-1] <= _Level.ENTRY
    verdicts = _Verdicts(root, selected.flag_sets, int(now)) \
        if plan.levels[0] == _Level.FLAGS else None
    step = _ENTRY_SLICE if entry_only else _YIELD_EVERY
    found: list[int] = []  # positions
    for start in range(0, len(positions), step):
        if start:
            await asyncio.sleep(0)  # let other sessions in between slices
        chunk = positions[start:start + step]
        sure: list[int] = []
        if verdicts is not None:
            # one answer per distinct (flag set, \Recent): most messages end here
            known = list(map(verdicts.__getitem__, selected.flag_keys_at(chunk)))
            sure = list(compress(chunk, known))
            chunk = list(compress(chunk, map(operator.is_, known, repeat(None))))
        if not chunk:
            found += sure
        elif entry_only:
            found += sorted(sure + _entry_matches(root, selected, chunk, int(now)))
        else:
            hits = []
            for seq, entry, recent in zip(map(_plus_one, chunk), selected.entries_at(chunk),
                                          selected.recent_at(chunk), strict=True):
                if await _matches(root, _Message(entry.uid, seq, entry, int(now), recent),
                                  source, plan):
                    hits.append(seq - 1)
            found += sorted(sure + hits)
    return list(selected.uids_at(found))


def _entry_matches(root: _Node, selected: SelectedMailbox, positions: Sequence[int],
                   now: int) -> list[int]:
    """The ``positions`` whose entries match: no awaits, one reused message record whose
    fields are assigned straight from the mailbox's columns (an UNSEEN SINCE over
    100,000 messages builds no Entry)."""
    fields = _Fields()
    m = _Message(0, 0, fields, now, False)
    test, level = root.test, _Level.ENTRY
    reads = _reads(root)
    # the columns no test reads stay at their defaults: no values made for them
    columns = [selected.column_at(name, positions) if name in reads else repeat(default)
               for name, default in _FIELD_DEFAULTS]
    out = []
    for (m.seq, m.uid, fields.flags, fields.modseq, fields.size, fields.internaldate,
         fields.savedate, m.recent) in zip(map(_plus_one, positions),
                                           selected.column_at("uid", positions), *columns,
                                           strict=False):  # the defaults repeat
        if test(m, level):
            out.append(m.seq - 1)
    return out


_FIELD_DEFAULTS: tuple[tuple[str, object], ...] = (
    ("flags", Flags()), ("modseq", 0), ("size", 0), ("internaldate", 0.0),
    ("savedate", 0.0), ("recent", False))


class _Verdicts(dict[int, bool | None]):
    """The answer of the flag-level tests per ``SelectedMailbox.flag_keys_at`` key (flag
    set and \\Recent), None where other data decides; computed on first use."""

    def __init__(self, root: _Node, flag_sets: Sequence[Flags], now: int) -> None:
        super().__init__()
        self.root, self.flag_sets, self.now = root, flag_sets, now

    def __missing__(self, key: int) -> bool | None:
        fields = _Fields()
        fields.flags = self.flag_sets[key >> 1]
        answer = self[key] = self.root.test(
            _Message(0, 0, fields, self.now, bool(key & 1)), _Level.FLAGS)
        return answer


_ENTRY_SLICE = 8192  # messages between event loop yields when entries decide
_plus_one = (1).__add__


# --- per message ------------------------------------------------------------------------


class _Fields:
    """The entry fields search tests read, assigned in place message after message."""

    __slots__ = ("flags", "internaldate", "message_id", "modseq", "savedate", "size")

    def __init__(self) -> None:
        self.message_id = self.modseq = self.size = 0
        self.flags = Flags()
        self.internaldate = self.savedate = 0.0


@dataclass(slots=True)
class _Message:
    uid: int
    seq: int
    entry: Entry | _Fields
    now: int
    recent: bool
    info: MessageInfo | None = None
    header: list[tuple[bytes, bytes]] | None = None  # (lower-case name, raw value)
    text_hits: dict[int, bool] = field(default_factory=dict)  # id(test) -> found
    folded: dict[str, list[str]] = field(default_factory=dict)  # field -> folded texts

    @property
    def analysis(self) -> MessageInfo:
        assert self.info is not None
        return self.info


@dataclass(frozen=True, slots=True)
class _Plan:
    levels: list[_Level]  # the levels the tests need, ascending
    text_tests: list[_TextTest]


async def _matches(root: _Node, message: _Message, source: MessageSource, plan: _Plan) -> bool:
    """Evaluate in rounds, loading only the data the undecided tests need."""
    for level in plan.levels:
        if level >= _Level.INFO and message.info is None:
            message.info = await source.info(message.entry.message_id)
        if level == _Level.HEADER:
            raw = await source.body(message.entry.message_id, 0, message.analysis.root.body_start)
            message.header = split_fields(raw)
        elif level == _Level.TEXT:
            message.text_hits = await _scan(message, source, plan.text_tests)
        result = root.test(message, level)
        if result is not None:
            return result
    raise AssertionError("a search test stayed undecided with all data")  # pragma: no cover


# --- compiled tests -------------------------------------------------------------------


class _Node:
    """A compiled key. ``test`` answers True/False, or None when it needs data beyond
    ``level``."""

    __slots__ = ("level",)

    def __init__(self, level: _Level) -> None:
        self.level = level

    def test(self, m: _Message, level: _Level) -> bool | None:
        if self.level > level:
            return None
        return self.check(m)

    def check(self, m: _Message) -> bool:
        raise NotImplementedError


class _Check(_Node):
    """A leaf: ``predicate`` on the message, given the data of ``level``. At the FLAGS
    and ENTRY levels ``reads`` names the entry fields (``_Fields``) and ``recent`` the
    predicate reads besides ``uid``, ``seq`` and ``now``: the others are not loaded."""

    __slots__ = ("predicate", "reads")

    def __init__(self, level: _Level, predicate: Callable[[_Message], bool],
                 reads: tuple[str, ...] = ()) -> None:
        super().__init__(level)
        self.predicate = predicate
        self.reads = reads

    def check(self, m: _Message) -> bool:
        return self.predicate(m)


class _And(_Node):
    __slots__ = ("children",)

    def __init__(self, children: list[_Node]) -> None:
        children.sort(key=lambda c: c.level)  # cheap tests first
        super().__init__(max(c.level for c in children))
        self.children = children

    def test(self, m: _Message, level: _Level) -> bool | None:
        result: bool | None = True
        for child in self.children:
            r = child.test(m, level)
            if r is False:
                return False
            if r is None:
                result = None
        return result


class _Or(_Node):
    __slots__ = ("children",)

    def __init__(self, children: list[_Node]) -> None:
        children.sort(key=lambda c: c.level)
        super().__init__(max(c.level for c in children))
        self.children = children

    def test(self, m: _Message, level: _Level) -> bool | None:
        result: bool | None = False
        for child in self.children:
            r = child.test(m, level)
            if r is True:
                return True
            if r is None:
                result = None
        return result


class _Not(_Node):
    __slots__ = ("child",)

    def __init__(self, child: _Node) -> None:
        super().__init__(child.level)
        self.child = child

    def test(self, m: _Message, level: _Level) -> bool | None:
        r = self.child.test(m, level)
        return None if r is None else not r


class _TextTest(_Node):
    """BODY (``body_only``) or TEXT: answered from the text scan."""

    __slots__ = ("body_only", "needle")

    def __init__(self, needle: str, body_only: bool) -> None:
        super().__init__(_Level.TEXT)
        self.needle = needle
        self.body_only = body_only

    def check(self, m: _Message) -> bool:
        return m.text_hits[id(self)]


def _levels(node: _Node) -> set[_Level]:
    if isinstance(node, _And | _Or):
        return {level for child in node.children for level in _levels(child)}
    if isinstance(node, _Not):
        return _levels(node.child)
    return {node.level}


def _reads(node: _Node) -> set[str]:
    if isinstance(node, _Check):
        return set(node.reads)
    if isinstance(node, _And | _Or):
        return {name for child in node.children for name in _reads(child)}
    if isinstance(node, _Not):
        return _reads(node.child)
    return set()


def _collect_text(node: _Node) -> list[_TextTest]:
    if isinstance(node, _TextTest):
        return [node]
    if isinstance(node, _And | _Or):
        return [t for child in node.children for t in _collect_text(child)]
    if isinstance(node, _Not):
        return _collect_text(node.child)
    return []


def _compile(key: SearchKey, selected: SelectedMailbox, saved: Sequence[int]) -> _Node:
    if isinstance(key, SearchAnd):
        return _And([_compile(k, selected, saved) for k in key.keys])
    if isinstance(key, SearchOr):
        return _Or([_compile(key.left, selected, saved), _compile(key.right, selected, saved)])
    if isinstance(key, SearchNot):
        return _Not(_compile(key.key, selected, saved))
    if isinstance(key, SearchAll | SearchSaveDateSupported):
        return _Check(_Level.FLAGS, lambda m: True)
    if isinstance(key, SearchFlag):
        return _flag_check(key)
    if isinstance(key, SearchSet):
        return _set_check(key.sequence_set, key.uid, selected, saved)
    if isinstance(key, SearchSize):
        size = key.size
        if key.larger:
            return _Check(_Level.ENTRY, lambda m: m.entry.size > size, ("size",))
        return _Check(_Level.ENTRY, lambda m: m.entry.size < size, ("size",))
    if isinstance(key, SearchModSeq):
        modseq = key.modseq
        return _Check(_Level.ENTRY, lambda m: m.entry.modseq >= modseq, ("modseq",))
    if isinstance(key, SearchAge):
        seconds = key.seconds
        if key.older:  # RFC 5032 section 3: "older than" includes the boundary second
            return _Check(_Level.ENTRY, lambda m: int(m.entry.internaldate) <= m.now - seconds,
                          ("internaldate",))
        return _Check(_Level.ENTRY, lambda m: int(m.entry.internaldate) >= m.now - seconds,
                      ("internaldate",))
    if isinstance(key, SearchDate):
        return _date_check(key)
    if isinstance(key, SearchHeader):
        return _header_check(key.field, _fold(key.value))
    if isinstance(key, SearchText):
        if not key.value:
            return _Check(_Level.FLAGS, lambda m: True)
        return _TextTest(_fold(key.value), key.body_only)
    raise TypeError(f"unknown search key {key!r}")  # pragma: no cover


def _flag_check(key: SearchFlag) -> _Node:
    name = key.flag.lower()
    present = key.present
    if name == "\\recent":
        return _Check(_Level.FLAGS, lambda m: m.recent == present, ("recent",))
    bit = SYSTEM_FLAGS.get(name)
    if bit is not None:
        return _Check(_Level.FLAGS, lambda m: m.entry.flags.has(bit) == present, ("flags",))
    if name.startswith("\\"):  # a system flag we do not keep is never set
        return _Check(_Level.FLAGS, lambda m: not present)
    # Keywords compare case-insensitively (RFC 9051 section 2.3.2).
    return _Check(
        _Level.FLAGS,
        lambda m: any(k.lower() == name for k in m.entry.flags.keywords) == present,
        ("flags",),
    )


def _set_check(
    numbers: SequenceSet, uid: bool, selected: SelectedMailbox, saved: Sequence[int]
) -> _Node:
    if numbers.saved:
        wanted = frozenset(saved)
        return _Check(_Level.ENTRY, lambda m: m.uid in wanted)
    spans = numbers.resolve(selected.max_uid() if uid else selected.exists)
    starts = [lo for lo, _ in spans]

    def inside(n: int) -> bool:
        i = bisect.bisect_right(starts, n) - 1
        return i >= 0 and n <= spans[i][1]

    if uid:
        return _Check(_Level.ENTRY, lambda m: inside(m.uid))
    return _Check(_Level.ENTRY, lambda m: inside(m.seq))


def _date_check(key: SearchDate) -> _Node:
    op = key.op
    if key.field == "sent":
        day = key.date

        def sent(m: _Message) -> bool:
            d = _sent_date(m.analysis)
            return d < day if op == "before" else d == day if op == "on" else d >= day

        return _Check(_Level.INFO, sent)
    start = calendar.timegm(key.date.timetuple())  # 00:00 UTC of the day
    end = start + 86400
    saved = key.field == "saved"
    reads = ("savedate",) if saved else ("internaldate",)

    def moment(m: _Message) -> float:
        return m.entry.savedate if saved else m.entry.internaldate

    if op == "before":
        return _Check(_Level.ENTRY, lambda m: moment(m) < start, reads)
    if op == "on":
        return _Check(_Level.ENTRY, lambda m: start <= moment(m) < end, reads)
    return _Check(_Level.ENTRY, lambda m: moment(m) >= start, reads)


def _sent_date(info: MessageInfo) -> datetime.date:
    """The Date header's calendar date as written (its own zone), 1970-01-01 if none."""
    raw = info.envelope.date
    if not raw:
        return _EPOCH_DATE
    parsed = parsedate_tz(unfold(raw))
    if parsed is None:
        return _EPOCH_DATE
    try:
        return datetime.date(parsed[0], parsed[1], parsed[2])
    except (ValueError, OverflowError):
        return _EPOCH_DATE


# --- header keys ------------------------------------------------------------------------

_ADDRESS_FIELDS = {"from": "from_", "to": "to", "cc": "cc", "bcc": "bcc"}


def _header_check(name: str, needle: str) -> _Node:
    lower = name.lower()
    known = lower == "subject" or lower in _ADDRESS_FIELDS

    def check(m: _Message) -> bool:
        values = _known_field(m, lower) if known else _header_field(m, lower)
        # None: no such field; "" is in any string, so an empty needle means "exists"
        return values is not None and any(needle in v for v in values)

    return _Check(_Level.INFO if known else _Level.HEADER, check)


def _known_field(m: _Message, name: str) -> list[str] | None:
    """Folded texts of Subject/From/To/Cc/Bcc from the analysis; None if absent."""
    if name not in m.folded:
        fields = m.analysis.search
        if name == "subject":
            m.folded[name] = [] if fields.subject is None else [_fold(fields.subject)]
        else:
            decoded: str | None = getattr(fields, _ADDRESS_FIELDS[name])
            addresses: tuple[Address, ...] = getattr(m.analysis.envelope, _ADDRESS_FIELDS[name])
            found = [] if decoded is None else [_fold(decoded)]
            if addresses:
                found.append(_fold(decode_words(_address_text(addresses))))
            m.folded[name] = found
    return m.folded[name] or None


def _header_field(m: _Message, name: str) -> list[str] | None:
    """Folded, decoded values of every ``name`` field of the top-level header."""
    key = "\0" + name
    if key not in m.folded:
        assert m.header is not None
        wanted = name.encode("ascii", "replace")
        m.folded[key] = [_fold(_decode_value(v)) for n, v in m.header if n == wanted]
    return m.folded[key] or None


_ATEXT = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)


def _maybe_quote(text: str, dot_ok: bool) -> str:
    """Dovecot's address writer: quote a phrase or local part unless it is atext."""
    if all(c in _ATEXT or c >= "\x80" or (dot_ok and c == ".") for c in text):
        return text
    return '"' + re.sub(r"([\"\\'])", r"\\\1", text) + '"'


def _address_text(addresses: Sequence[Address]) -> str:
    """Addresses as Dovecot writes them for FROM/TO/CC/BCC searches:
    ``name <box@host>``, ``<box@host>``, ``group: a, b;``."""
    out: list[str] = []
    in_group = False
    for a in addresses:
        if a.host is None:
            if not in_group:  # group start: the mailbox holds the group name
                if out:
                    out.append(", ")
                group = a.mailbox or ""
                head = group if "=?" in group else _maybe_quote(group, False) if group else '""'
                out.append(head + ": ")
            else:  # group end: "g: a, b;" or "g:;"
                if out and out[-1].endswith(": "):
                    out[-1] = out[-1][:-1]
                out.append(";")
            in_group = not in_group
            continue
        if out and not out[-1].endswith(": "):
            out.append(", ")
        text = ""
        if a.name is not None:
            text = a.name if "=?" in a.name else _maybe_quote(a.name, False)
        if a.adl or a.mailbox or a.host:
            route = f"{a.adl}:" if a.adl else ""
            box = _maybe_quote(a.mailbox, True) if a.mailbox else '""'
            at = f"@{a.host}" if a.host else ""
            text += (" " if a.name else "") + f"<{route}{box}{at}>"
        out.append(text)
    return "".join(out)


_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[QqBb]\?[^?]*\?=")
_FOLD = re.compile(rb"\r\n[ \t]?")


def _decode_value(raw: bytes) -> str:
    """A header value as Dovecot searches it: unfolded (the CRLF and the first white
    space of the next line become one space), RFC 2047 words decoded (the white space
    between two of them dropped), other white space kept; 8-bit as UTF-8, else cp1252."""
    text = _FOLD.sub(b" ", raw).decode("utf-8", "surrogateescape")
    if "=?" not in text:
        return _plain(text)
    out: list[str] = []
    pos = 0
    for m in _ENCODED_WORD.finditer(text):
        between = text[pos : m.start()]
        if pos == 0 or between.strip(" \t"):  # RFC 2047 section 6.2
            out.append(_plain(between))
        out.append(decode_words(m.group()))
        pos = m.end()
    out.append(_plain(text[pos:]))
    return "".join(out)


def _plain(text: str) -> str:
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:  # raw 8-bit that is not UTF-8
        return decode_text(text.encode("utf-8", "surrogateescape"), None)


def _fold(text: str) -> str:
    """The comparison form of a string: NFKD, then Unicode case folding."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKD", text).casefold()


# --- the text scan ----------------------------------------------------------------------


class _Finder:
    """Substring search over a stream of folded text pieces."""

    __slots__ = ("found", "needle", "tail")

    def __init__(self, needle: str) -> None:
        self.needle = needle
        self.tail = ""
        self.found = False

    def feed(self, text: str) -> None:
        if self.found:
            return
        joined = self.tail + text
        if self.needle in joined:
            self.found = True
            self.tail = ""
            return
        keep = len(self.needle) - 1
        self.tail = joined[-keep:] if keep else ""


async def _scan(m: _Message, source: MessageSource, tests: list[_TextTest]) -> dict[int, bool]:
    """Look for every BODY/TEXT needle in one pass over the message's parts."""
    info = m.analysis
    finders = [(_Finder(t.needle), t.body_only) for t in tests]
    whole = await source.body(m.entry.message_id) if info.size <= _READ_WHOLE else None

    async def read(start: int, end: int) -> bytes:
        if whole is not None:
            return whole[start:end]
        return await source.body(m.entry.message_id, start, end) if start < end else b""

    for part in info.root.walk():
        if all(f.found for f, _ in finders):
            break
        for f, _ in finders:
            f.tail = ""  # each part is its own stream
        headed = [f for f, body_only in finders if not body_only and not f.found]
        if headed:
            text = _fold(_header_text(await read(part.header_start, part.body_start)))
            for f in headed:
                f.feed(text)
        if not _is_text(part):
            continue
        async with contextlib.aclosing(_decoded_text(part, read)) as pieces:
            async for piece in pieces:
                folded = _fold(piece)
                for f, _ in finders:
                    f.feed(folded)
                if all(f.found for f, _ in finders):
                    break
    return {id(t): f.found for t, (f, _) in zip(tests, finders, strict=True)}


def _is_text(part: Part) -> bool:
    """A body searched as text: text/* or message/* leaves (Dovecot's rule) whose
    transfer encoding we can decode (Dovecot skips the others too)."""
    if part.kind != PartKind.LEAF or part.type.lower() not in ("text", "message"):
        return False
    return (part.encoding or "").strip().lower() in _KNOWN_CTE


_FIELD_START = re.compile(rb"([^:\r\n]*?)([ \t]*:[ \t]*)")


def _header_text(block: bytes) -> str:
    """A header block as Dovecot's TEXT search sees it: ``Name: value`` lines, the name
    and separator as written, the value unfolded and decoded, each ended by CRLF, then
    the empty line if the block has one."""
    lines: list[str] = []
    fields: list[list[bytes]] = []
    for line in block.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        elif b":" in line:
            fields.append([line])
    for parts in fields:
        first = parts[0]
        head = _FIELD_START.match(first)
        assert head is not None  # the line has a colon
        value = b"\r\n".join([first[head.end() :], *parts[1:]])
        name = (first[: head.end()]).decode("utf-8", "replace")
        lines.append(name + _decode_value(value) + "\r\n")
    if block == b"\r\n" or block.endswith(b"\r\n\r\n"):
        lines.append("\r\n")
    return "".join(lines)


async def _decoded_text(
    part: Part, read: Callable[[int, int], Awaitable[bytes]]
) -> AsyncGenerator[str, None]:
    """The part's body, transfer- and charset-decoded, in pieces of about _CHUNK octets,
    each cut after a line end so that quoted-printable and base64 decode piecewise (a
    line longer than 4 chunks is cut anyway, never inside a ``=XX`` escape)."""
    decoder = _TransferDecoder(part.encoding)
    codec = lookup_charset(part.charset) or "utf-8"  # unknown charsets: UTF-8, as Dovecot
    text = codecs.getincrementaldecoder(codec)(errors="replace")
    pos = part.body_start
    carry = b""
    while pos < part.body_end:
        end = min(pos + _CHUNK, part.body_end)
        data = carry + await read(pos, end)
        pos = end
        carry = b""
        if pos < part.body_end:
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                if len(data) < 4 * _CHUNK:
                    carry = data  # read on to the end of the line
                    continue
                escape = data.find(b"=", len(data) - 2)
                cut = len(data) if escape < 0 else escape
            data, carry = data[:cut], data[cut:]
        yield text.decode(decoder.feed(data))
    yield text.decode(decoder.flush(), final=True)


class _TransferDecoder:
    """Incremental Content-Transfer-Encoding decoding (RFC 2045 section 6), fed whole
    lines."""

    __slots__ = ("encoding", "pending", "stopped")

    def __init__(self, encoding: str | None) -> None:
        self.encoding = (encoding or "").strip().lower()  # one of _KNOWN_CTE
        self.pending = b""  # base64: alphabet characters not yet a full quantum
        self.stopped = False  # base64: padding seen, the rest is ignored

    def feed(self, data: bytes) -> bytes:
        if self.encoding == "quoted-printable":
            return decode_qp(data)
        if self.encoding != "base64":
            return data
        if self.stopped:
            return b""
        pad = data.find(b"=")
        if pad >= 0:
            data = data[:pad]
            self.stopped = True
        clean = self.pending + re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        whole = len(clean) // 4 * 4
        self.pending = clean[whole:]
        return decode_base64(clean[:whole])

    def flush(self) -> bytes:
        rest, self.pending = self.pending, b""
        return decode_base64(rest) if rest else b""
