"""A cursor over one received command, with the primitives of the IMAP grammar.

Theory of operation: the receiver hands over a command as line ``segments`` and the
``literals`` between them; each segment but the last ends with the literal's announcement
(``{5}``, ``{5+}``, ``~{5}``). ``Reader`` walks the segments; a string token that starts
with ``{`` or ``~{`` must end its segment, and reading it takes the next literal and moves
to the next segment. No other token spans segments.

Every method either consumes its token and returns the value, or raises ``ParseError``
(BAD) with a text saying what was expected - the parser never guesses. The rules are
RFC 9051 section 9 (formal syntax) unless noted; leniencies are listed where they are
taken:

- an astring or list-mailbox atom may contain 8-bit bytes (mailbox names typed by hand);
- a date-day of one digit is accepted in ``date-time`` (``"1-Jan-2024 ..."``);
- in mailbox names outside UTF-8 mode, a name that is not valid modified UTF-7 is kept
  as it is (RFC 3501 section 5.1.3 allows any atom), and 8-bit UTF-8 is accepted.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence

from postroom.imap import mutf7
from postroom.imap.errors import ParseError, Status
from postroom.imap.grammar.options import ParseOptions
from postroom.imap.grammar.sequence import (
    MAX_NZ_NUMBER,
    SequenceSet,
    parse_sequence_set,
    sequence_token,
)

MAX_NUMBER64 = 2**63 - 1  # number64 (RFC 9051 section 9)

# ATOM-CHAR: any CHAR except atom-specials: ( ) { SP CTL % * " \ ]
_ATOM = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\\]]+')
# ASTRING-CHAR adds "]"; we also accept 8-bit (lenient, see module docstring).
_ASTRING_ATOM = re.compile(rb'[^\x00-\x20\x7f(){%*"\\]+')
# list-char: ATOM-CHAR / list-wildcards / resp-specials (+ 8-bit, lenient).
_LIST_ATOM = re.compile(rb'[^\x00-\x20\x7f(){"\\]+')
# tag: 1*<any ASTRING-CHAR except "+">
TAG_RE = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\+]+')
_NUMBER = re.compile(rb"[0-9]+")
_LITERAL = re.compile(rb"(~?)\{([0-9]{1,20})(\+?)\}")
# QUOTED-CHAR: TEXT-CHAR except quoted-specials, "\" quoted-specials, UTF-8 (8-bit taken
# as is: validated where it matters).
_QUOTED_BODY = re.compile(rb'(?:[^"\\\r\n\x00]+|\\["\\])*')
_QUOTED_UNESCAPE = re.compile(rb'\\(["\\])')
_DATE = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})\Z")
_DATE_TIME = re.compile(
    rb"([ 0-9]?[0-9])-([A-Za-z]{3})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})\Z"
)
MONTHS = {
    m: i + 1
    for i, m in enumerate(
        (
            b"JAN",
            b"FEB",
            b"MAR",
            b"APR",
            b"MAY",
            b"JUN",
            b"JUL",
            b"AUG",
            b"SEP",
            b"OCT",
            b"NOV",
            b"DEC",
        )
    )
}

# RFC 9051 section 2.3.2: system flags, matched case-insensitively, returned canonical.
SYSTEM_FLAGS = {
    f.upper(): f for f in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent")
}


class Reader:
    """Cursor over ``segments`` and ``literals`` (``len(segments) == len(literals) + 1``)."""

    __slots__ = ("_buf", "_index", "_literals", "_pos", "_segments", "options", "tag")

    def __init__(
        self,
        segments: Sequence[bytes],
        literals: Sequence[bytes] = (),
        options: ParseOptions | None = None,
        tag: str | None = None,
    ) -> None:
        if len(segments) != len(literals) + 1:
            raise ValueError("need exactly one more segment than literals")
        self._segments = segments
        self._literals = literals
        self._index = 0
        self._buf = segments[0]
        self._pos = 0
        self.options = options if options is not None else ParseOptions()
        self.tag = tag

    # --- position -----------------------------------------------------------------------

    def fail(self, text: str, *, status: Status = "BAD", code: str | None = None) -> ParseError:
        """A ``ParseError`` for the current command (raise it)."""
        return ParseError(text, status=status, code=code, tag=self.tag)

    @property
    def at_end(self) -> bool:
        return self._pos >= len(self._buf) and self._index == len(self._segments) - 1

    def peek(self) -> int:
        """The next byte, or -1 at the end of a segment."""
        return self._buf[self._pos] if self._pos < len(self._buf) else -1

    def peek_is(self, token: bytes) -> bool:
        return self._buf.startswith(token, self._pos)

    def take(self, token: bytes) -> bool:
        """Consume ``token`` (exact bytes) if it comes next."""
        if self._buf.startswith(token, self._pos):
            self._pos += len(token)
            return True
        return False

    def expect(self, token: bytes, what: str | None = None) -> None:
        if not self.take(token):
            raise self.fail(f"Expected {what or token.decode()} {self._found()}")

    def sp(self) -> None:
        """Exactly one SP."""
        if not self.take(b" "):
            raise self.fail(f"Expected a space {self._found()}")

    def end(self) -> None:
        """The command must be complete here (no trailing arguments)."""
        if not self.at_end:
            raise self.fail(f"Unexpected extra arguments {self._found()}")

    def _found(self) -> str:
        if self._pos >= len(self._buf):
            return "at end of line" if self.at_end else "before a literal"
        chunk = self._buf[self._pos : self._pos + 20]
        text = chunk.decode("ascii", "replace")
        text = "".join(c if c.isprintable() else "?" for c in text)
        return f"at '{text}'" + ("..." if len(self._buf) - self._pos > 20 else "")

    # --- atoms and numbers ----------------------------------------------------------------

    def match(self, pattern: re.Pattern[bytes]) -> bytes | None:
        """Consume and return a non-empty match of ``pattern`` here, else ``None``."""
        m = pattern.match(self._buf, self._pos)
        if m is None or m.end() == self._pos:
            return None
        self._pos = m.end()
        return m.group()

    def atom(self, what: str = "an atom") -> bytes:
        token = self.match(_ATOM)
        if token is None:
            raise self.fail(f"Expected {what} {self._found()}")
        return token

    def peek_atom(self) -> str:
        """The upper-cased atom that comes next, without consuming it ("" if none)."""
        m = _ATOM.match(self._buf, self._pos)
        return m.group().decode("ascii").upper() if m else ""

    def keyword(self, what: str = "a keyword") -> str:
        """An atom, upper-cased (command names, search keys, options)."""
        return self.atom(what).decode("ascii").upper()

    def number(self, *, nonzero: bool = False, maximum: int = MAX_NZ_NUMBER) -> int:
        """``number`` / ``nz-number`` (32-bit, RFC 9051 section 9) or, with
        ``maximum=MAX_NUMBER64``, ``number64`` / ``mod-sequence-value``."""
        token = self.match(_NUMBER)
        if token is None:
            raise self.fail(f"Expected a number {self._found()}")
        if len(token) > 20 or int(token) > maximum:
            raise self.fail("Number out of range")
        value = int(token)
        if nonzero and value == 0:
            raise self.fail("Expected a non-zero number")
        return value

    def number64(self, *, nonzero: bool = False) -> int:
        return self.number(nonzero=nonzero, maximum=MAX_NUMBER64)

    # --- strings ----------------------------------------------------------------------

    def quoted(self) -> bytes:
        if not self.take(b'"'):
            raise self.fail(f"Expected a quoted string {self._found()}")
        m = _QUOTED_BODY.match(self._buf, self._pos)
        assert m is not None  # the pattern matches the empty string
        end = m.end()
        if end >= len(self._buf) or self._buf[end] != 0x22:
            raise self.fail("Invalid or unterminated quoted string")
        body = m.group()
        self._pos = end + 1
        return _QUOTED_UNESCAPE.sub(rb"\1", body) if b"\\" in body else body

    def literal(self, *, allow_binary: bool = False) -> tuple[bytes, bool]:
        """A ``literal`` (or, if allowed, a ``literal8``): ``(data, is_literal8)``."""
        m = _LITERAL.match(self._buf, self._pos)
        if m is None:
            raise self.fail(f"Expected a literal {self._found()}")
        binary = bool(m.group(1))
        if binary and not allow_binary:
            raise self.fail("literal8 (~{n}) is only allowed in APPEND")
        if m.end() != len(self._buf) or self._index >= len(self._literals):
            raise self.fail("Literal announcement must end the line")
        data = self._literals[self._index]
        if len(data) != int(m.group(2)):
            raise self.fail("Literal length mismatch")
        self._index += 1
        self._buf = self._segments[self._index]
        self._pos = 0
        return data, binary

    def is_literal_next(self) -> bool:
        return self.peek() in (0x7B, 0x7E)  # "{" or "~"

    def string(self) -> bytes:
        """``string = quoted / literal``."""
        c = self.peek()
        if c == 0x22:
            return self.quoted()
        if c == 0x7B:
            return self.literal()[0]
        raise self.fail(f"Expected a string {self._found()}")

    def astring(self, what: str = "a string") -> bytes:
        """``astring = 1*ASTRING-CHAR / string``."""
        c = self.peek()
        if c == 0x22:
            return self.quoted()
        if c == 0x7B or self._buf.startswith(b"~{", self._pos):
            return self.literal()[0]  # "~{" is a literal8, which fails with a clear text
        token = self.match(_ASTRING_ATOM)
        if token is None:
            raise self.fail(f"Expected {what} {self._found()}")
        return token

    def nstring(self) -> bytes | None:
        """``nstring = string / nil``."""
        if self.peek() in (0x22, 0x7B):
            return self.string()
        if self.peek_atom() == "NIL":
            self.atom()
            return None
        raise self.fail(f"Expected a string or NIL {self._found()}")

    def text_astring(self, what: str = "a string") -> str:
        """An astring taken as UTF-8 text (invalid sequences replaced)."""
        return self.astring(what).decode("utf-8", "replace")

    def ascii_astring(self, what: str) -> str:
        raw = self.astring(what)
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail(f"{what} must be ASCII") from None
        if any(c < " " or c == "\x7f" for c in text):
            raise self.fail(f"{what} must not contain control characters")
        return text

    # --- mailbox names --------------------------------------------------------------------

    def mailbox(self) -> str:
        """``mailbox = "INBOX" / astring``, decoded (see ``decode_mailbox``)."""
        return self.decode_mailbox(self.astring("a mailbox name"))

    def new_mailbox(self) -> str:
        """A name to create (CREATE, RENAME's target): as ``mailbox``, but in a session
        without UTF-8 an invalid modified UTF-7 name is refused with ``NO [CANNOT]``
        (RFC 3501 section 5.1.3), not stored as sent; Dovecot refuses it too."""
        raw = self.astring("a mailbox name")
        name = self.decode_mailbox(raw)
        if not self.options.utf8 and raw.isascii() and not mutf7.is_valid(raw):
            raise self.fail("Mailbox name is not valid modified UTF-7", status="NO",
                            code="CANNOT")
        return name

    def list_mailbox(self) -> str:
        """``list-mailbox = 1*list-char / string`` (a LIST pattern), decoded."""
        c = self.peek()
        if c in (0x22, 0x7B):
            raw = self.string()
        else:
            token = self.match(_LIST_ATOM)
            if token is None:
                raise self.fail(f"Expected a mailbox pattern {self._found()}")
            raw = token
        return self.decode_mailbox(raw)

    def decode_mailbox(self, raw: bytes) -> str:
        """Decode a name per the session: UTF-8 (RFC 9051 section 5.1, RFC 6855 section 3)
        or modified UTF-7 (RFC 3501 section 5.1.3; invalid ones are kept as they are)."""
        if any(b < 0x20 or b == 0x7F for b in raw):
            raise self.fail("Mailbox name contains control characters")
        if self.options.utf8 or not raw.isascii():
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise self.fail("Mailbox name is not valid UTF-8") from None
        return mutf7.decode_lenient(raw)[0]

    # --- flags ----------------------------------------------------------------------------

    def flag(self) -> str:
        """``flag``: a system flag (canonical case), ``\\`` atom, or a keyword atom."""
        if self.take(b"\\"):
            name = self.atom("a flag name").decode("ascii")
            full = "\\" + name
            return SYSTEM_FLAGS.get(full.upper(), full)
        return self.atom("a flag").decode("ascii")

    def flag_list(self) -> tuple[str, ...]:
        """``flag-list = "(" [flag *(SP flag)] ")"``; duplicates dropped, order kept."""
        self.expect(b"(")
        flags: list[str] = []
        if not self.take(b")"):
            flags.append(self.flag())
            while not self.take(b")"):
                self.sp()
                flags.append(self.flag())
                if len(flags) > self.options.limits.max_flags:
                    raise self.fail("Too many flags", code="LIMIT")
        return _dedupe(flags)

    def flags_bare(self) -> tuple[str, ...]:
        """``flag *(SP flag)`` without parentheses (STORE, RFC 9051 section 9)."""
        flags = [self.flag()]
        while self.take(b" "):
            flags.append(self.flag())
            if len(flags) > self.options.limits.max_flags:
                raise self.fail("Too many flags", code="LIMIT")
        return _dedupe(flags)

    # --- sets and dates -------------------------------------------------------------------

    def sequence_set(self, *, allow_star: bool = True, allow_saved: bool = True) -> SequenceSet:
        end = sequence_token(self._buf, self._pos)
        if end == self._pos:
            raise self.fail(f"Expected a sequence set {self._found()}")
        token = self._buf[self._pos : end]
        try:
            result = parse_sequence_set(
                token,
                max_ranges=self.options.limits.max_sequence_ranges,
                allow_star=allow_star,
                allow_saved=allow_saved,
            )
        except ParseError as exc:
            raise exc.with_tag(self.tag) from None
        self._pos = end
        return result

    def is_sequence_set_next(self) -> bool:
        c = self.peek()
        return 0x30 <= c <= 0x39 or c in (0x2A, 0x24)  # digit, "*", "$"

    def date(self) -> datetime.date:
        """``date = date-text / DQUOTE date-text DQUOTE`` (RFC 9051 section 9)."""
        raw = self.quoted() if self.peek() == 0x22 else self.atom("a date")
        m = _DATE.match(raw)
        month = MONTHS.get(m.group(2).upper()) if m else None
        if m is None or month is None:
            raise self.fail("Expected a date like 1-Feb-2024")
        try:
            return datetime.date(int(m.group(3)), month, int(m.group(1)))
        except ValueError:
            raise self.fail("Invalid date") from None

    def date_time(self) -> datetime.datetime:
        """``date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP
        zone DQUOTE``, as an aware datetime."""
        raw = self.quoted()
        m = _DATE_TIME.match(raw)
        month = MONTHS.get(m.group(2).upper()) if m else None
        if m is None or month is None:
            raise self.fail('Expected a date-time like "01-Feb-2024 10:00:00 +0000"')
        day, _, year, hh, mm, ss, sign, zh, zm = (g.strip() for g in m.groups())
        try:
            if int(zm) > 59:
                raise ValueError
            offset = datetime.timedelta(hours=int(zh), minutes=int(zm))
            tz = datetime.timezone(-offset if sign == b"-" else offset)
            return datetime.datetime(
                int(year), month, int(day), int(hh), int(mm), min(int(ss), 59), tzinfo=tz
            )
        except ValueError:
            raise self.fail("Invalid date-time") from None

    # --- generic lists --------------------------------------------------------------------

    def paren_keywords(self, *, allow_empty: bool = True, what: str = "an option") -> list[str]:
        """``"(" [atom *(SP atom)] ")"``, upper-cased."""
        self.expect(b"(")
        items: list[str] = []
        if self.take(b")"):
            if not allow_empty:
                raise self.fail(f"Expected at least one {what}")
            return items
        items.append(self.keyword(what))
        while not self.take(b")"):
            self.sp()
            items.append(self.keyword(what))
            if len(items) > 1000:
                raise self.fail("Too many list items", code="LIMIT")
        return items


def _dedupe(flags: list[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    out = []
    for f in flags:
        key = f.upper() if f.startswith("\\") else f
        if key not in seen:
            seen.add(key)
            out.append(f)
    return tuple(out)


def decode_mailbox_name(raw: bytes, *, utf8: bool) -> str:
    """Decode a wire mailbox name outside a command (same rules as ``Reader.mailbox``)."""
    return Reader([b""], options=ParseOptions(utf8=utf8)).decode_mailbox(raw)


def normalize_inbox(name: str, delimiter: str | None = None) -> str:
    """``INBOX`` in any case is INBOX (RFC 9051 section 5.1); with a ``delimiter``, the
    ``INBOX`` prefix of its children is normalised too (``inbox/x`` -> ``INBOX/x``)."""
    if name.upper() == "INBOX":
        return "INBOX"
    if delimiter and name[:6].upper() == "INBOX" + delimiter.upper() and len(delimiter) == 1:
        return "INBOX" + name[5:]
    return name
