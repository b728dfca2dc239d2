"""Server responses that serialise themselves (RFC 9051 section 7, syntax in section 9).

Theory of operation: every response is a small frozen object; ``chunks()`` gives its
wire form as a list of byte strings and ``bytes(response)`` joins them. Large literals
(message bodies in FETCH) stay separate chunks - the very object the caller passed in -
so a shell can ``writelines`` them without copying.

Data inside responses is described with plain Python values (``Value``):

- ``None`` is NIL, an ``int`` a number, ``Atom`` is written as is (flags, keywords,
  status item names), ``Raw`` is pre-formatted bytes;
- ``str`` and ``bytes`` are IMAP strings: quoted when possible, a literal otherwise
  (``write_string`` - CR, LF or NUL, 8-bit data in a session without UTF-8, RFC 9051
  section 4.3; very long strings);
- ``Literal`` forces a literal, ``Literal(..., binary=True)`` a literal8 if the data
  holds NUL (BINARY, RFC 3516 section 4.3);
- a ``list`` or ``tuple`` is a parenthesised list.

Mailbox names are quoted UTF-8 in a UTF-8 session (IMAP4rev2 / UTF8=ACCEPT, RFC 9051
section 5.1; RFC 6855 section 3) and modified UTF-7 otherwise (RFC 3501 section 5.1.3):
the responses that carry names take ``utf8``. Free text (``resp-text``) has CR and LF
replaced by spaces, so no text can inject a line, and is never empty: RFC 9051 section
7.1 wants text after every status and response code.
"""

from __future__ import annotations

import base64
import datetime
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, TypeAlias

from postroom.imap import mutf7
from postroom.imap.errors import ParseError
from postroom.imap.grammar.sequence import SequenceSet, compact
from postroom.imap.receiver import Rejected

Chunk = bytes

CRLF = b"\r\n"
_INLINE_LITERAL = 4096  # literals smaller than this are copied into the line buffer
_MAX_QUOTED = 8192  # longer strings go as literals
_NEEDS_LITERAL = re.compile(rb"[\x00\r\n]")
_ATOM_SAFE = re.compile(r'[^\x00-\x20\x7f(){%*"\\\]]+\Z')


@dataclass(frozen=True, slots=True)
class Atom:
    """Written as is: the caller guarantees atom syntax (``\\Seen``, ``NIL``, ``MESSAGES``)."""

    text: str


@dataclass(frozen=True, slots=True)
class Raw:
    """Pre-formatted bytes, written as is."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Literal:
    """Always a literal (``{n}``); with ``binary`` a literal8 (``~{n}``) when the data
    contains NUL (RFC 3516 section 4.3)."""

    data: bytes = field(repr=False)
    binary: bool = False


Value: TypeAlias = (
    int | str | bytes | Atom | Raw | Literal | list["Value"] | tuple["Value", ...] | None
)


# --- writing values ---------------------------------------------------------------------


class Writer:
    """Accumulates a response: small pieces in a buffer, big literals as own chunks."""

    __slots__ = ("_buf", "_chunks", "utf8")

    def __init__(self, utf8: bool = False) -> None:
        self.utf8 = utf8
        self._buf = bytearray()
        self._chunks: list[Chunk] = []

    def write(self, data: bytes) -> None:
        self._buf += data

    def value(self, value: Value) -> None:
        if value is None:
            self._buf += b"NIL"
        elif isinstance(value, int):
            self._buf += str(int(value)).encode("ascii")
        elif isinstance(value, Atom):
            self._buf += value.text.encode("utf-8")
        elif isinstance(value, str | bytes):
            self.string(value)
        elif isinstance(value, Literal):
            self.literal(value.data, binary=value.binary)
        elif isinstance(value, Raw):
            self._buf += value.data
        elif isinstance(value, list | tuple):
            self._buf += b"("
            for i, item in enumerate(value):
                if i:
                    self._buf += b" "
                self.value(item)
            self._buf += b")"
        else:  # pragma: no cover - guarded by the type
            raise TypeError(f"cannot write {type(value).__name__} in an IMAP response")

    def string(self, value: str | bytes) -> None:
        """A quoted string if allowed, else a literal (RFC 9051 section 4.3)."""
        data = value.encode("utf-8") if isinstance(value, str) else value
        if _quotable(data, self.utf8):
            self._buf += _quote(data)
        else:
            self.literal(data)

    def literal(self, data: bytes, *, binary: bool = False) -> None:
        prefix = b"~" if binary and b"\x00" in data else b""
        self._buf += b"%s{%d}\r\n" % (prefix, len(data))
        if len(data) < _INLINE_LITERAL:
            self._buf += data
        else:
            if self._buf:
                self._chunks.append(bytes(self._buf))
                self._buf = bytearray()
            self._chunks.append(data)

    def finish(self) -> list[Chunk]:
        if self._buf:
            self._chunks.append(bytes(self._buf))
            self._buf = bytearray()
        chunks, self._chunks = self._chunks, []
        return chunks


def _quotable(data: bytes, utf8: bool) -> bool:
    if len(data) > _MAX_QUOTED or _NEEDS_LITERAL.search(data):
        return False
    if data.isascii():
        return True
    if not utf8:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _quote(data: bytes) -> bytes:
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def string_bytes(value: str | bytes, *, utf8: bool = False) -> bytes:
    """An IMAP string (quoted or literal) as bytes."""
    w = Writer(utf8)
    w.string(value)
    return b"".join(w.finish())


def astring_bytes(value: str, *, utf8: bool = False) -> bytes:
    """An astring: the atom itself when it is one, else a string."""
    if value and _ATOM_SAFE.match(value) and value.upper() != "NIL":
        return value.encode("ascii")
    return string_bytes(value, utf8=utf8)


def mailbox_value(name: str, *, utf8: bool) -> bytes:
    """A mailbox name as sent in responses: always a string, UTF-8 or modified UTF-7."""
    return string_bytes(name if utf8 else mutf7.encode(name), utf8=utf8)


def format_date_time(moment: datetime.datetime) -> str:
    """``date-time`` text (without quotes): ``"01-Feb-2024 10:00:00 +0100"`` (RFC 9051
    section 9; a naive datetime is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    offset = moment.utcoffset() or datetime.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    month = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")[
        moment.month - 1
    ]
    return (
        f"{moment.day:02d}-{month}-{moment.year:04d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} "
        f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
    )


def sequence_text(numbers: Iterable[int] | SequenceSet | str, *, sort: bool = True) -> str:
    """A sequence set for output: given as text, a ``SequenceSet`` or numbers (compacted)."""
    if isinstance(numbers, str):
        return numbers
    if isinstance(numbers, SequenceSet):
        return str(numbers)
    return compact(numbers, sort=sort)


def _text(text: str, default: str) -> bytes:
    clean = text.replace("\r", " ").replace("\n", " ").strip()
    return (clean or default).encode("utf-8")


# --- response codes ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResponseCode:
    """A response code (RFC 9051 section 7.1; RFC 5530 and extensions), without the
    brackets: ``name`` and an optional pre-formatted argument."""

    name: str
    argument: str | None = None

    def __str__(self) -> str:
        return self.name if self.argument is None else f"{self.name} {self.argument}"

    # Simple codes (RFC 9051 section 7.1 unless noted).
    ALERT: ClassVar[ResponseCode]
    PARSE: ClassVar[ResponseCode]
    READ_ONLY: ClassVar[ResponseCode]
    READ_WRITE: ClassVar[ResponseCode]
    TRYCREATE: ClassVar[ResponseCode]
    UIDNOTSTICKY: ClassVar[ResponseCode]
    UNAVAILABLE: ClassVar[ResponseCode]
    AUTHENTICATIONFAILED: ClassVar[ResponseCode]
    AUTHORIZATIONFAILED: ClassVar[ResponseCode]
    EXPIRED: ClassVar[ResponseCode]
    PRIVACYREQUIRED: ClassVar[ResponseCode]
    CONTACTADMIN: ClassVar[ResponseCode]
    NOPERM: ClassVar[ResponseCode]
    INUSE: ClassVar[ResponseCode]
    EXPUNGEISSUED: ClassVar[ResponseCode]
    CORRUPTION: ClassVar[ResponseCode]
    SERVERBUG: ClassVar[ResponseCode]
    CLIENTBUG: ClassVar[ResponseCode]
    CANNOT: ClassVar[ResponseCode]
    LIMIT: ClassVar[ResponseCode]
    OVERQUOTA: ClassVar[ResponseCode]
    ALREADYEXISTS: ClassVar[ResponseCode]
    NONEXISTENT: ClassVar[ResponseCode]
    NOTSAVED: ClassVar[ResponseCode]
    HASCHILDREN: ClassVar[ResponseCode]
    CLOSED: ClassVar[ResponseCode]
    UNKNOWN_CTE: ClassVar[ResponseCode]
    NOMODSEQ: ClassVar[ResponseCode]  # RFC 7162 section 3.1.2.2
    TOOBIG: ClassVar[ResponseCode]  # RFC 7889 section 4, RFC 4469 section 5.3
    USEATTR: ClassVar[ResponseCode]  # RFC 6154 section 3
    BADCHARSET: ClassVar[ResponseCode]  # without the optional list

    @classmethod
    def capability(cls, capabilities: Iterable[str]) -> ResponseCode:
        return cls("CAPABILITY", " ".join(capabilities))

    @classmethod
    def permanent_flags(cls, flags: Iterable[str]) -> ResponseCode:
        """``PERMANENTFLAGS (...)``; include ``\\*`` if new keywords may be created."""
        return cls("PERMANENTFLAGS", "(" + " ".join(flags) + ")")

    @classmethod
    def badcharset(cls, charsets: Iterable[str]) -> ResponseCode:
        return cls("BADCHARSET", "(" + " ".join(astring_bytes(c).decode() for c in charsets) + ")")

    @classmethod
    def uidnext(cls, uid: int) -> ResponseCode:
        return cls("UIDNEXT", str(uid))

    @classmethod
    def uidvalidity(cls, value: int) -> ResponseCode:
        return cls("UIDVALIDITY", str(value))

    @classmethod
    def unseen(cls, seq: int) -> ResponseCode:
        """IMAP4rev1 only (RFC 3501 section 7.1)."""
        return cls("UNSEEN", str(seq))

    @classmethod
    def highest_modseq(cls, modseq: int) -> ResponseCode:
        """RFC 7162 section 3.1.2.1."""
        return cls("HIGHESTMODSEQ", str(modseq))

    @classmethod
    def modified(cls, numbers: Iterable[int] | SequenceSet | str) -> ResponseCode:
        """RFC 7162 section 3.1.3: messages that failed UNCHANGEDSINCE."""
        return cls("MODIFIED", sequence_text(numbers))

    @classmethod
    def append_uid(cls, uidvalidity: int, uids: Iterable[int] | str) -> ResponseCode:
        """RFC 4315 section 3 (a set for MULTIAPPEND, RFC 3502)."""
        return cls("APPENDUID", f"{uidvalidity} {sequence_text(uids, sort=False)}")

    @classmethod
    def copy_uid(
        cls, uidvalidity: int, source: Iterable[int] | str, destination: Iterable[int] | str
    ) -> ResponseCode:
        """RFC 4315 section 3: the two sets correspond element by element, so their
        order is kept (only ascending runs are merged)."""
        src = sequence_text(source, sort=False)
        dst = sequence_text(destination, sort=False)
        return cls("COPYUID", f"{uidvalidity} {src} {dst}")

    @classmethod
    def mailbox_id(cls, object_id: str) -> ResponseCode:
        """RFC 8474 section 4.1."""
        return cls("MAILBOXID", f"({object_id})")


_SIMPLE_CODES = """ALERT PARSE READ-ONLY READ-WRITE TRYCREATE UIDNOTSTICKY UNAVAILABLE
AUTHENTICATIONFAILED AUTHORIZATIONFAILED EXPIRED PRIVACYREQUIRED CONTACTADMIN NOPERM INUSE
EXPUNGEISSUED CORRUPTION SERVERBUG CLIENTBUG CANNOT LIMIT OVERQUOTA ALREADYEXISTS NONEXISTENT
NOTSAVED HASCHILDREN CLOSED UNKNOWN-CTE NOMODSEQ TOOBIG USEATTR BADCHARSET"""
for _name in _SIMPLE_CODES.split():
    setattr(ResponseCode, _name.replace("-", "_"), ResponseCode(_name))


# --- responses --------------------------------------------------------------------------


class Response:
    """Base: ``chunks()`` is the wire form; ``bytes(response)`` joins it."""

    __slots__ = ()

    def chunks(self) -> list[Chunk]:
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        return b"".join(self.chunks())


def _status_line(head: bytes, status: str, code: ResponseCode | str | None, text: str) -> bytes:
    out = head + b" " + status.encode("ascii")
    if code is not None:
        out += b" [" + str(code).encode("utf-8") + b"]"
    return out + b" " + _text(text, "completed" if status == "OK" else status.lower()) + CRLF


@dataclass(frozen=True, slots=True)
class Tagged(Response):
    """``tag OK/NO/BAD [code] text`` (RFC 9051 section 7.1)."""

    tag: str
    status: str
    text: str = ""
    code: ResponseCode | str | None = None

    def chunks(self) -> list[Chunk]:
        return [_status_line(self.tag.encode("ascii"), self.status, self.code, self.text)]

    @classmethod
    def ok(
        cls, tag: str, text: str = "completed", code: ResponseCode | str | None = None
    ) -> Tagged:
        return cls(tag, "OK", text, code)

    @classmethod
    def no(cls, tag: str, text: str, code: ResponseCode | str | None = None) -> Tagged:
        return cls(tag, "NO", text, code)

    @classmethod
    def bad(cls, tag: str, text: str, code: ResponseCode | str | None = None) -> Tagged:
        return cls(tag, "BAD", text, code)


@dataclass(frozen=True, slots=True)
class Untagged(Response):
    """``* OK/NO/BAD/PREAUTH/BYE [code] text`` (RFC 9051 sections 7.1.1-7.1.5)."""

    status: str
    text: str = ""
    code: ResponseCode | str | None = None

    def chunks(self) -> list[Chunk]:
        return [_status_line(b"*", self.status, self.code, self.text)]


def error_response(error: ParseError | Rejected) -> Tagged | Untagged:
    """The answer to a ``ParseError`` or a receiver ``Rejected``: tagged when the tag is
    known, ``* BAD`` otherwise."""
    code = error.code
    if error.tag is None:
        return Untagged(error.status, error.text, code)
    return Tagged(error.tag, error.status, error.text, code)


@dataclass(frozen=True, slots=True)
class Continuation(Response):
    """``+ text`` (RFC 9051 section 7.6); ``Continuation.sasl(challenge)`` for
    AUTHENTICATE (base64, possibly empty: ``+ ``)."""

    text: str = "Ready"

    def chunks(self) -> list[Chunk]:
        return [b"+ " + self.text.replace("\r", " ").replace("\n", " ").encode() + CRLF]

    @classmethod
    def sasl(cls, challenge: bytes) -> Continuation:
        return cls(base64.b64encode(challenge).decode("ascii"))


@dataclass(frozen=True, slots=True)
class Data(Response):
    """Any untagged data: ``* `` then the values separated by spaces. The escape hatch
    for responses without their own class (``* QUOTA ...``)."""

    values: tuple[Value, ...]
    utf8: bool = False

    def chunks(self) -> list[Chunk]:
        w = Writer(self.utf8)
        w.write(b"*")
        for v in self.values:
            w.write(b" ")
            w.value(v)
        w.write(CRLF)
        return w.finish()


def _words(*words: str) -> list[Chunk]:
    return [("* " + " ".join(words)).encode("utf-8") + CRLF]


@dataclass(frozen=True, slots=True)
class CapabilityResponse(Response):
    """``* CAPABILITY ...`` (RFC 9051 section 7.2.2)."""

    capabilities: tuple[str, ...]

    def chunks(self) -> list[Chunk]:
        return _words("CAPABILITY", *self.capabilities)


@dataclass(frozen=True, slots=True)
class EnabledResponse(Response):
    """``* ENABLED ...`` (RFC 9051 section 7.2.1; sent even when empty)."""

    capabilities: tuple[str, ...] = ()

    def chunks(self) -> list[Chunk]:
        return _words("ENABLED", *self.capabilities)


@dataclass(frozen=True, slots=True)
class ExistsResponse(Response):
    """``* n EXISTS`` (RFC 9051 section 7.4.1)."""

    count: int

    def chunks(self) -> list[Chunk]:
        return _words(str(self.count), "EXISTS")


@dataclass(frozen=True, slots=True)
class RecentResponse(Response):
    """``* n RECENT`` (IMAP4rev1 only, RFC 3501 section 7.3.2)."""

    count: int

    def chunks(self) -> list[Chunk]:
        return _words(str(self.count), "RECENT")


@dataclass(frozen=True, slots=True)
class ExpungeResponse(Response):
    """``* n EXPUNGE`` (RFC 9051 section 7.5.1)."""

    seq: int

    def chunks(self) -> list[Chunk]:
        return _words(str(self.seq), "EXPUNGE")


@dataclass(frozen=True, slots=True)
class VanishedResponse(Response):
    """``* VANISHED [(EARLIER)] uid-set`` (RFC 7162 section 3.2.10)."""

    uids: Iterable[int] | SequenceSet | str
    earlier: bool = False

    def chunks(self) -> list[Chunk]:
        words = ["VANISHED"] + (["(EARLIER)"] if self.earlier else [])
        return _words(*words, sequence_text(self.uids))


@dataclass(frozen=True, slots=True)
class FlagsResponse(Response):
    """``* FLAGS (...)`` (RFC 9051 section 7.3.5)."""

    flags: tuple[str, ...]

    def chunks(self) -> list[Chunk]:
        return _words("FLAGS", "(" + " ".join(self.flags) + ")")


@dataclass(frozen=True, slots=True)
class FetchResponse(Response):
    """``* seq FETCH (name value ...)`` (RFC 9051 section 7.5.2).

    ``items`` pairs a response name (``"FLAGS"``, ``item.response_name()``) with its
    ``Value``: ``[Atom("\\Seen")]`` for FLAGS, ``format_date_time(...)`` (a string) for
    INTERNALDATE, ``Literal(body)`` for sections, nested lists for ENVELOPE and
    BODYSTRUCTURE. Big literals stay separate chunks.
    """

    seq: int
    items: Sequence[tuple[str, Value]]
    utf8: bool = False

    def chunks(self) -> list[Chunk]:
        w = Writer(self.utf8)
        w.write(b"* %d FETCH (" % self.seq)
        for i, (name, value) in enumerate(self.items):
            if i:
                w.write(b" ")
            w.write(name.encode("ascii") + b" ")
            w.value(value)
        w.write(b")" + CRLF)
        return w.finish()


@dataclass(frozen=True, slots=True)
class ListResponse(Response):
    """``* LIST (attrs) delimiter name [extended]`` (RFC 9051 section 7.3.1) or
    ``* LSUB ...`` (``lsub``). ``child_info`` gives ``("CHILDINFO" (...))`` (RFC 5258
    section 3.5), ``old_name`` ``("OLDNAME" (name))`` (RFC 9051 section 9, ``mbox-list-extended``)."""

    name: str
    delimiter: str | None = "/"
    attributes: tuple[str, ...] = ()
    utf8: bool = False
    lsub: bool = False
    child_info: tuple[str, ...] = ()
    old_name: str | None = None

    def chunks(self) -> list[Chunk]:
        w = Writer(self.utf8)
        w.write(b"* LSUB (" if self.lsub else b"* LIST (")
        w.write(" ".join(self.attributes).encode("ascii") + b") ")
        if self.delimiter is None:
            w.write(b"NIL")
        else:
            w.write(_quote(self.delimiter.encode("utf-8")))
        w.write(b" " + mailbox_value(self.name, utf8=self.utf8))
        extended: list[Value] = []
        if self.child_info:
            extended += [Atom("CHILDINFO"), list(self.child_info)]  # an atom, as Dovecot
        if self.old_name is not None:
            extended += [Atom("OLDNAME"), [Raw(mailbox_value(self.old_name, utf8=self.utf8))]]
        if extended:
            w.write(b" ")
            w.value(extended)
        w.write(CRLF)
        return w.finish()


@dataclass(frozen=True, slots=True)
class StatusResponse(Response):
    """``* STATUS mailbox (ITEM n ...)`` (RFC 9051 section 7.3.3)."""

    mailbox: str
    items: Sequence[tuple[str, int]]
    utf8: bool = False

    def chunks(self) -> list[Chunk]:
        pairs = " ".join(f"{k} {v}" for k, v in self.items)
        return [
            b"* STATUS "
            + mailbox_value(self.mailbox, utf8=self.utf8)
            + b" ("
            + pairs.encode("ascii")
            + b")"
            + CRLF
        ]


@dataclass(frozen=True, slots=True)
class QuotaResponse(Response):
    """``* QUOTA root (RESOURCE usage limit ...)`` (RFC 9208 section 4.2.1). The list
    holds at least one resource (``quota-list``, section 7)."""

    root: str
    resources: Sequence[tuple[str, int, int]]
    utf8: bool = False

    def chunks(self) -> list[Chunk]:
        if not self.resources:
            raise ValueError("a QUOTA response names at least one resource")
        usage = " ".join(f"{name} {used} {limit}" for name, used, limit in self.resources)
        return [b"* QUOTA " + astring_bytes(self.root, utf8=self.utf8) + b" ("
                + usage.encode("ascii") + b")" + CRLF]


@dataclass(frozen=True, slots=True)
class QuotaRootResponse(Response):
    """``* QUOTAROOT mailbox *(SP root)`` (RFC 9208 section 4.2.2): no roots at all is
    allowed, for a mailbox without quota."""

    mailbox: str
    roots: Sequence[str] = ()
    utf8: bool = False

    def chunks(self) -> list[Chunk]:
        out = b"* QUOTAROOT " + mailbox_value(self.mailbox, utf8=self.utf8)
        for root in self.roots:
            out += b" " + astring_bytes(root, utf8=self.utf8)
        return [out + CRLF]


@dataclass(frozen=True, slots=True)
class SearchResponse(Response):
    """``* SEARCH n ...`` (RFC 3501 section 7.2.5, IMAP4rev1 clients) with the optional
    ``(MODSEQ n)`` of RFC 7162 section 3.1.5 (only when something matched)."""

    numbers: Sequence[int]
    modseq: int | None = None

    def chunks(self) -> list[Chunk]:
        words = ["SEARCH", *map(str, self.numbers)]
        if self.modseq is not None and self.numbers:
            words.append(f"(MODSEQ {self.modseq})")
        return _words(*words)


@dataclass(frozen=True, slots=True)
class EsearchResponse(Response):
    """``* ESEARCH [(TAG "t")] [UID] [MIN n] [MAX n] [ALL set] [COUNT n] [MODSEQ n]``
    (RFC 9051 section 7.3.4; RFC 4731 section 3.1; MODSEQ RFC 7162 section 3.1.5)."""

    tag: str | None = None
    uid: bool = False
    min: int | None = None
    max: int | None = None
    all: Iterable[int] | SequenceSet | str | None = None
    count: int | None = None
    modseq: int | None = None

    def chunks(self) -> list[Chunk]:
        out = b"* ESEARCH"
        if self.tag is not None:
            out += b" (TAG " + _quote(self.tag.encode("ascii")) + b")"
        words: list[str] = ["UID"] if self.uid else []
        if self.min is not None:
            words += ["MIN", str(self.min)]
        if self.max is not None:
            words += ["MAX", str(self.max)]
        if self.all is not None:
            text = sequence_text(self.all)
            if text:  # ALL never carries an empty set (RFC 4731 section 3.1)
                words += ["ALL", text]
        if self.count is not None:
            words += ["COUNT", str(self.count)]
        if self.modseq is not None:
            words += ["MODSEQ", str(self.modseq)]
        if words:
            out += b" " + " ".join(words).encode("ascii")
        return [out + CRLF]


@dataclass(frozen=True, slots=True)
class IdResponse(Response):
    """``* ID (...)`` or ``* ID NIL`` (RFC 2971 section 3.2)."""

    params: Sequence[tuple[str, str | None]] | None

    def chunks(self) -> list[Chunk]:
        if self.params is None:
            return [b"* ID NIL" + CRLF]
        values: list[Value] = []
        for key, value in self.params:
            values += [key, value]
        return Data((Atom("ID"), values), utf8=True).chunks()


Namespaces = Sequence[tuple[str, str | None]] | None


@dataclass(frozen=True, slots=True)
class NamespaceResponse(Response):
    """``* NAMESPACE personal other shared``, each ``None`` (NIL) or a list of
    ``(prefix, delimiter)`` (RFC 9051 section 7.3.2; RFC 2342)."""

    personal: Namespaces = (("", "/"),)
    other: Namespaces = None
    shared: Namespaces = None
    utf8: bool = False

    def chunks(self) -> list[Chunk]:
        out = b"* NAMESPACE"
        for group in (self.personal, self.other, self.shared):
            if not group:
                out += b" NIL"
                continue
            out += b" ("
            for prefix, delimiter in group:
                delim = b"NIL" if delimiter is None else _quote(delimiter.encode("utf-8"))
                out += b"(" + mailbox_value(prefix, utf8=self.utf8) + b" " + delim + b")"
            out += b")"
        return [out + CRLF]


def bye(text: str, code: ResponseCode | str | None = None) -> Untagged:
    """``* BYE text`` (RFC 9051 section 7.1.5)."""
    return Untagged("BYE", text, code)
