"""SEARCH and UID SEARCH (RFC 9051 section 6.4.4), into a tree of search keys.

    search = "SEARCH" [search-return-opts] SP search-program
    search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP ...)] ")"
    search-program = ["CHARSET" SP charset SP] search-key *(SP search-key)

Every RFC 9051 key is known, plus the IMAP4rev1 ones (NEW, OLD, RECENT; RFC 3501
section 6.4.4), MODSEQ (RFC 7162 section 3.1.5), OLDER/YOUNGER (RFC 5032 section 3),
SAVEDBEFORE/SAVEDON/SAVEDSINCE/SAVEDATESUPPORTED (RFC 8514 section 4.3) and ``$``
(RFC 5182 section 2.1). Return options MIN MAX ALL COUNT (RFC 4731 section 3.1) and SAVE
(RFC 5182 section 2.1); ``RETURN ()`` means ``RETURN (ALL)`` (RFC 4731 section 3.1).

The tree is normalised a little: FROM/TO/CC/BCC/SUBJECT are ``SearchHeader`` with the
field name; ANSWERED, UNSEEN, KEYWORD ... are ``SearchFlag``; NEW is RECENT and UNSEEN,
OLD is NOT RECENT. String arguments are decoded with the CHARSET (default UTF-8 - US-ASCII
is a subset; invalid sequences replaced). An unknown charset is ``NO [BADCHARSET (...)]``
(RFC 9051 section 6.4.4). Nesting deeper than ``max_search_depth`` (parentheses, NOT, OR)
and more than ``max_search_keys`` keys are BAD, checked before recursing further.
"""

from __future__ import annotations

import codecs
import datetime
from dataclasses import dataclass
from typing import ClassVar, Literal

from postroom.imap.commands.base import Availability, ImapCommand
from postroom.imap.grammar.reader import MAX_NUMBER64, Reader
from postroom.imap.grammar.sequence import SequenceSet

SUPPORTED_CHARSETS_HINT = ("UTF-8", "US-ASCII")
RETURN_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})


@dataclass(frozen=True, slots=True)
class SearchAll:
    pass


@dataclass(frozen=True, slots=True)
class SearchFlag:
    """A system flag (canonical case, e.g. ``\\Seen``) or keyword is set (``present``)
    or not."""

    flag: str
    present: bool = True


@dataclass(frozen=True, slots=True)
class SearchDate:
    """``field``: internal date (BEFORE ON SINCE), ``sent`` (the Date header:
    SENTBEFORE ...) or ``saved`` (RFC 8514 save date). Dates ignore time and zone."""

    field: Literal["internal", "sent", "saved"]
    op: Literal["before", "on", "since"]
    date: datetime.date


@dataclass(frozen=True, slots=True)
class SearchSize:
    """LARGER (``larger``) or SMALLER than ``size`` octets (RFC822.SIZE)."""

    larger: bool
    size: int


@dataclass(frozen=True, slots=True)
class SearchHeader:
    """The header field contains ``value`` (substring, case-insensitive); an empty
    ``value`` matches every message having the field (RFC 9051 section 6.4.4)."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchText:
    """BODY (``body_only``) or TEXT (header and body) contains ``value``."""

    value: str
    body_only: bool


@dataclass(frozen=True, slots=True)
class SearchSet:
    """Message sequence numbers, or UIDs (``uid``); may be ``$``."""

    sequence_set: SequenceSet
    uid: bool = False


@dataclass(frozen=True, slots=True)
class SearchModSeq:
    """MODSEQ (RFC 7162 section 3.1.5): mod-sequence >= ``modseq``; optionally for one
    flag (``entry`` like ``/flags/\\Seen``; ``entry_type`` PRIV, SHARED or ALL)."""

    modseq: int
    entry: str | None = None
    entry_type: str | None = None


@dataclass(frozen=True, slots=True)
class SearchAge:
    """OLDER / YOUNGER (RFC 5032): internal date at least / at most ``seconds`` ago."""

    older: bool
    seconds: int


@dataclass(frozen=True, slots=True)
class SearchSaveDateSupported:
    """SAVEDATESUPPORTED (RFC 8514 section 4.3): the mailbox keeps save dates."""


@dataclass(frozen=True, slots=True)
class SearchNot:
    key: SearchKey


@dataclass(frozen=True, slots=True)
class SearchOr:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class SearchAnd:
    keys: tuple[SearchKey, ...]


SearchKey = (
    SearchAll
    | SearchFlag
    | SearchDate
    | SearchSize
    | SearchHeader
    | SearchText
    | SearchSet
    | SearchModSeq
    | SearchAge
    | SearchSaveDateSupported
    | SearchNot
    | SearchOr
    | SearchAnd
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Search(ImapCommand):
    """``return_options`` is ``None`` for a plain SEARCH (answered ``* SEARCH``),
    otherwise the upper-cased options (``RETURN ()`` gives ``("ALL",)``) answered with
    ``* ESEARCH``. ``charset`` is what the client named, if anything."""

    criteria: SearchKey
    uid: bool = False
    charset: str | None = None
    return_options: tuple[str, ...] | None = None

    available: ClassVar[Availability] = Availability.SELECTED

    @property
    def name(self) -> str:
        return "UID SEARCH" if self.uid else "SEARCH"

    @property
    def wants_esearch(self) -> bool:
        """An ESEARCH response is due: RETURN with anything but SAVE alone (RFC 5182
        section 2.1)."""
        return self.return_options is not None and set(self.return_options) != {"SAVE"}

    @property
    def uses_saved(self) -> bool:
        """The criteria refer to ``$`` (RFC 5182 section 2.1)."""
        return _uses_saved(self.criteria)


def _uses_saved(key: SearchKey) -> bool:
    stack: list[SearchKey] = [key]
    while stack:
        k = stack.pop()
        if isinstance(k, SearchSet) and k.sequence_set.saved:
            return True
        if isinstance(k, SearchNot):
            stack.append(k.key)
        elif isinstance(k, SearchOr):
            stack.extend((k.left, k.right))
        elif isinstance(k, SearchAnd):
            stack.extend(k.keys)
    return False


_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "RECENT": ("\\Recent", True),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_HEADER_KEYS = {"FROM": "From", "TO": "To", "CC": "Cc", "BCC": "Bcc", "SUBJECT": "Subject"}
_DATE_KEYS: dict[
    str, tuple[Literal["internal", "sent", "saved"], Literal["before", "on", "since"]]
] = {
    "BEFORE": ("internal", "before"),
    "ON": ("internal", "on"),
    "SINCE": ("internal", "since"),
    "SENTBEFORE": ("sent", "before"),
    "SENTON": ("sent", "on"),
    "SENTSINCE": ("sent", "since"),
    "SAVEDBEFORE": ("saved", "before"),
    "SAVEDON": ("saved", "on"),
    "SAVEDSINCE": ("saved", "since"),
}
_ENTRY_TYPES = frozenset({"PRIV", "SHARED", "ALL"})
_KEYS_WITH_ARGUMENTS = frozenset(
    {*_HEADER_KEYS, *_DATE_KEYS, "KEYWORD", "UNKEYWORD", "BODY", "TEXT", "HEADER", "LARGER"}
    | {"SMALLER", "UID", "NOT", "OR", "OLDER", "YOUNGER", "MODSEQ"}
)


def parse_search(r: Reader, tag: str, name: str) -> Search:
    uid = name == "UID SEARCH"
    r.sp()
    return_options: tuple[str, ...] | None = None
    if r.peek_atom() == "RETURN":
        r.atom()
        r.sp()
        opts = r.paren_keywords(what="a SEARCH return option")
        for opt in opts:
            if opt not in RETURN_OPTIONS:
                raise r.fail(f"Unknown SEARCH return option {opt}")
        return_options = tuple(dict.fromkeys(opts)) or ("ALL",)
        r.sp()
    charset: str | None = None
    if r.peek_atom() == "CHARSET":
        r.atom()
        r.sp()
        charset = r.astring("a charset").decode("ascii", "replace")
        r.sp()
    parser = _KeyParser(r, _decoder(r, charset))
    keys = [parser.key(1)]
    while not r.at_end:
        r.sp()
        keys.append(parser.key(1))
    criteria = keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))
    return Search(
        tag=tag, uid=uid, criteria=criteria, charset=charset, return_options=return_options
    )


def _decoder(r: Reader, charset: str | None) -> str:
    """The Python codec for ``charset``; ``NO [BADCHARSET]`` if we have none."""
    if charset is None:
        return "utf-8"
    name = charset.strip()
    try:
        codecs.lookup(name)
        "a".encode(name)  # LookupError for codecs that are not text encodings (rot13)
    except (LookupError, ValueError, UnicodeError):
        raise r.fail(
            f"Unsupported charset {charset}",
            status="NO",
            code=f"BADCHARSET ({' '.join(SUPPORTED_CHARSETS_HINT)})",
        ) from None
    if codecs.lookup(name).name == "ascii":
        return "utf-8"  # lenient: 8-bit in a US-ASCII search is probably UTF-8
    return name


class _KeyParser:
    __slots__ = ("count", "encoding", "r")

    def __init__(self, r: Reader, encoding: str) -> None:
        self.r = r
        self.encoding = encoding
        self.count = 0

    def text(self) -> str:
        return self.r.astring("a search string").decode(self.encoding, "replace")

    def key(self, depth: int) -> SearchKey:
        r = self.r
        limits = r.options.limits
        self.count += 1
        if self.count > limits.max_search_keys:
            raise r.fail("Too many search keys", code="LIMIT")
        if depth > limits.max_search_depth:
            raise r.fail("Search keys nested too deeply", code="LIMIT")
        if r.take(b"("):
            keys = [self.key(depth + 1)]
            while not r.take(b")"):
                r.sp()
                keys.append(self.key(depth + 1))
            return keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))
        if r.is_sequence_set_next():
            return SearchSet(r.sequence_set())
        word = r.keyword("a search key")
        if word == "ALL":
            return SearchAll()
        if word in _FLAG_KEYS:
            flag, present = _FLAG_KEYS[word]
            return SearchFlag(flag, present)
        if word == "NEW":
            return SearchAnd((SearchFlag("\\Recent"), SearchFlag("\\Seen", False)))
        if word == "OLD":
            return SearchNot(SearchFlag("\\Recent"))
        if word == "SAVEDATESUPPORTED":
            return SearchSaveDateSupported()
        if word not in _KEYS_WITH_ARGUMENTS:
            raise r.fail(f"Unknown search key {word}")
        r.sp()
        if word in _HEADER_KEYS:
            return SearchHeader(_HEADER_KEYS[word], self.text())
        if word in _DATE_KEYS:
            which, op = _DATE_KEYS[word]
            return SearchDate(which, op, r.date())
        if word in ("KEYWORD", "UNKEYWORD"):
            return SearchFlag(r.flag(), word == "KEYWORD")
        if word in ("BODY", "TEXT"):
            return SearchText(self.text(), body_only=word == "BODY")
        if word == "HEADER":
            name = r.ascii_astring("a header field name")
            r.sp()
            return SearchHeader(name, self.text())
        if word in ("LARGER", "SMALLER"):
            return SearchSize(word == "LARGER", r.number64())
        if word == "UID":
            return SearchSet(r.sequence_set(), uid=True)
        if word == "NOT":
            return SearchNot(self.key(depth + 1))
        if word == "OR":
            left = self.key(depth + 1)
            r.sp()
            return SearchOr(left, self.key(depth + 1))
        if word in ("OLDER", "YOUNGER"):
            return SearchAge(word == "OLDER", r.number(nonzero=True))
        assert word == "MODSEQ"
        return self.modseq()

    def modseq(self) -> SearchModSeq:
        r = self.r
        entry: str | None = None
        entry_type: str | None = None
        if r.peek() == 0x22:  # entry-name is a quoted "/flags/..." (RFC 7162 section 7)
            entry = r.quoted().decode("ascii", "replace")
            if not entry.lower().startswith("/flags/"):
                raise r.fail("MODSEQ entry name must start with /flags/")
            r.sp()
            entry_type = r.keyword("PRIV, SHARED or ALL")
            if entry_type not in _ENTRY_TYPES:
                raise r.fail("MODSEQ entry type must be PRIV, SHARED or ALL")
            r.sp()
        return SearchModSeq(r.number(maximum=MAX_NUMBER64), entry, entry_type)
