"""The IMAP command receiver: bytes in, complete commands out (sans-IO).

Theory of operation. The shell feeds what the socket gives (``feed``) and pulls events
(``next_event``) until ``NeedData``:

- ``Command``: a complete command - its tag, name and the text ``segments`` with the
  ``literals`` between them (each segment but the last ends with the literal's
  announcement). ``postroom.imap.commands.parse_command`` turns it into a typed command.
- ``NeedLiteral``: a line ended with ``{n}``, ``{n+}``, ``~{n}`` or ``~{n+}`` (RFC 9051
  section 4.3; literal8 RFC 3516 section 4.4; ``+`` RFC 7888 section 3). The receiver
  stops until the shell answers ``accept_literal()`` - and for a synchronizing literal
  sends ``+ Ready`` (RFC 9051 section 7.6) - or ``reject_literal(...)``.
- ``Rejected``: the command failed before it was complete; the shell sends
  ``tag status [code] text`` (``* BAD`` when ``tag`` is None). A synchronizing literal
  refused is rejected at once and the command is over: the client does not send the
  data (RFC 9051 sections 2.2.1 and 7.6, RFC 7888 section 4). A refused non-synchronizing literal
  is read and thrown away with the rest of the command, and the rejection comes when the
  command ends (RFC 7888 section 4).
- ``Line``: in raw line mode (``expect_line``), one line without its CRLF - the
  AUTHENTICATE responses (RFC 9051 section 6.2.2) and IDLE's ``DONE`` (RFC 2177
  section 3). The mode lasts one line.

Limits (``ReceiverConfig``) are enforced here, with the answers chosen by the RFCs: a
line longer than ``max_line`` is thrown away up to its end and the command is BAD; a
literal over ``max_literal`` (or ``max_append_literal`` in APPEND - big literals are for
messages only) is refused with ``[TOOBIG]`` (RFC 7888 section 4, RFC 7889 section 4);
with ``literal_minus`` (only LITERAL- advertised) a non-synchronizing literal over 4096
octets is ``BAD [TOOBIG]`` (RFC 7888 section 5); a command beyond ``max_command``
(``max_append_command`` for APPEND) is refused the same way. While throwing a command
away, the receiver still follows its literals so it never mistakes message data for
commands.

Line ends: CRLF, and (lenient) a bare LF; a CR before the LF is dropped. Empty lines
between commands are ignored. A ``{n}`` inside an unterminated quoted string is not a
literal announcement.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from postroom.imap.grammar.reader import TAG_RE

LITERAL_MINUS_MAX = 4096  # RFC 7888 section 5

_LITERAL_AT_END = re.compile(rb"(~?)\{([0-9]{1,20})(\+?)\}\Z")
_QUOTED = re.compile(rb'"(?:[^"\\]+|\\.)*("?)')
_WORD = re.compile(rb"[A-Za-z0-9.-]+")


@dataclass(frozen=True, slots=True)
class ReceiverConfig:
    """Limits of one connection's receiver (octets, CRLF excluded)."""

    max_line: int = 64 * 1024  # one line of a command (the text between literals)
    max_literal: int = 64 * 1024  # one literal, except in APPEND
    max_append_literal: int | None = None  # one APPEND literal (None: the shell decides)
    max_command: int = 1024 * 1024  # a whole command, except APPEND
    max_append_command: int = 1024 * 1024 * 1024  # a whole APPEND (MULTIAPPEND)
    max_raw_line: int = 64 * 1024  # a line in raw line mode (AUTHENTICATE, DONE)
    literal_minus: bool = False  # LITERAL- instead of LITERAL+ (RFC 7888 section 5)


class RejectReason(enum.Enum):
    LINE_TOO_LONG = "line too long"
    LITERAL_TOO_BIG = "literal too big"
    COMMAND_TOO_BIG = "command too big"
    LITERAL_MINUS = "non-synchronizing literal over 4096 octets"
    REFUSED = "literal refused by the shell"


@dataclass(frozen=True, slots=True)
class NeedData:
    """Nothing to do until more bytes are fed."""


@dataclass(frozen=True, slots=True)
class NeedLiteral:
    """A literal of ``size`` octets was announced; answer ``accept_literal`` or
    ``reject_literal`` before the next ``next_event``. ``command`` is the upper-cased
    command name (``"APPEND"``, ``"UID SEARCH"``; ``""`` if unreadable)."""

    tag: str | None
    command: str
    size: int
    synchronizing: bool
    binary: bool  # literal8 (~{n})
    line: bytes = field(default=b"", repr=False, compare=False)  # the announcing line


@dataclass(frozen=True, slots=True)
class Command:
    """A complete command. ``segments`` has one more element than ``literals``; the
    text is exactly as received, without the final CRLF and with each literal's data
    taken out. ``tag`` is ``None`` when the line does not start with a valid tag."""

    tag: str | None
    name: str
    segments: tuple[bytes, ...]
    literals: tuple[bytes, ...] = field(default=(), repr=False)

    @property
    def size(self) -> int:
        return sum(map(len, self.segments)) + sum(map(len, self.literals))

    def wire(self) -> bytes:
        """The command as sent (CRLF after each announcement), for logs and tests."""
        out = bytearray(self.segments[0])
        for literal, segment in zip(self.literals, self.segments[1:], strict=True):
            out += b"\r\n" + literal + segment
        return bytes(out)


@dataclass(frozen=True, slots=True)
class Rejected:
    """The command ended in an error; answer ``{tag or '*'} {status} [{code}] {text}``."""

    tag: str | None
    reason: RejectReason
    status: str  # "BAD" or "NO"
    code: str | None
    text: str


@dataclass(frozen=True, slots=True)
class Line:
    """One raw line (``expect_line`` mode), without CRLF."""

    data: bytes


Event = NeedData | NeedLiteral | Command | Rejected | Line


class _Mode(enum.Enum):
    LINE = 1  # reading a command line
    DECIDE = 2  # NeedLiteral emitted, waiting for accept/reject
    LITERAL = 3  # reading literal data
    SKIP_LITERAL = 4  # throwing literal data away
    SKIP_LINE = 5  # throwing a line away (too long, or rest of a failed command)
    RAW = 6  # one raw line


class CommandReceiver:
    """Incremental command framing for one connection. Not thread-safe."""

    def __init__(self, config: ReceiverConfig | None = None) -> None:
        self.config = config or ReceiverConfig()
        self._buf = bytearray()
        self._mode = _Mode.LINE
        self._scan = 0  # bytes of _buf already searched for LF
        self._reset_command()
        self._pending: NeedLiteral | None = None
        self._remaining = 0  # literal octets still to read or skip
        self._literal = bytearray()
        self._failure: Rejected | None = None  # set while throwing a command away
        self._raw_limit = 0
        self._raw_too_long = False
        self._skip_tail = b""  # last bytes of a line being skipped (literal detection)
        self._queued: Rejected | None = None  # an event to hand out before reading on

    # --- shell interface ------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Add received bytes (any split)."""
        self._buf += data

    @property
    def idle(self) -> bool:
        """No partial command is held (nothing but whole unread lines may be buffered)."""
        return self._mode in (_Mode.LINE, _Mode.RAW) and not self._segments

    @property
    def buffered(self) -> int:
        """Bytes received but not consumed yet."""
        return len(self._buf)

    def discard_buffered(self) -> int:
        """Throw away every byte received but not consumed; return how many.

        Call it after answering STARTTLS, before the handshake: plaintext pipelined
        behind STARTTLS must never run as if it came over TLS (the STARTTLS command
        injection attack, CVE-2011-0411). Only between commands.
        """
        if self._mode is not _Mode.LINE or self._segments:
            raise RuntimeError("discard_buffered() only between commands")
        dropped = len(self._buf)
        self._buf.clear()
        self._scan = 0
        return dropped

    def expect_line(self, max_length: int | None = None) -> None:
        """Read the next line raw (``Line`` event): AUTHENTICATE responses, IDLE's DONE.

        Only between commands. Over ``max_length`` (default ``max_raw_line``) the line
        is thrown away and ``Rejected(LINE_TOO_LONG)`` comes instead.
        """
        if self._mode is not _Mode.LINE or self._segments:
            raise RuntimeError("expect_line() only between commands")
        self._mode = _Mode.RAW
        self._raw_limit = self.config.max_raw_line if max_length is None else max_length
        self._raw_too_long = False

    def accept_literal(self) -> None:
        """Read the announced literal (send ``+ Ready`` first if it is synchronizing)."""
        pending = self._take_pending()
        self._literal = bytearray()
        self._remaining = pending.size
        self._mode = _Mode.LITERAL

    def reject_literal(
        self, *, status: str = "NO", code: str | None = "TOOBIG", text: str = "Literal too big"
    ) -> None:
        """Refuse the announced literal; a ``Rejected`` event with this answer follows
        (at once if synchronizing, after the rest of the command otherwise)."""
        pending = self._take_pending()
        failure = Rejected(pending.tag, RejectReason.REFUSED, status, code, text)
        if pending.synchronizing:
            self._queued = self._finish_failure(failure)
        else:
            self._skip_literal(pending.size, failure)

    def next_event(self) -> Event:
        """The next event; ``NeedData`` when more bytes are needed."""
        if self._queued is not None:
            queued, self._queued = self._queued, None
            return queued
        while True:
            mode = self._mode
            event: Event | None
            if mode is _Mode.DECIDE:
                raise RuntimeError("accept_literal() or reject_literal() first")
            if mode is _Mode.LINE:
                event = self._read_line()
            elif mode is _Mode.LITERAL:
                event = self._read_literal()
            elif mode is _Mode.SKIP_LITERAL:
                event = self._skip_literal_data()
            elif mode is _Mode.SKIP_LINE:
                event = self._skip_line()
            else:
                event = self._read_raw()
            if event is not None:
                return event

    # --- command lines ----------------------------------------------------------------------

    def _reset_command(self) -> None:
        self._segments: list[bytes] = []
        self._literals: list[bytes] = []
        self._size = 0
        self._tag: str | None = None
        self._name = ""

    def _find_line(self, limit: int) -> tuple[bytes, bool] | None:
        """The next line (without CR LF) and whether it fits ``limit``; ``None`` if no
        complete line is buffered."""
        lf = self._buf.find(b"\n", self._scan)
        if lf < 0:
            self._scan = len(self._buf)
            return None
        end = lf - 1 if lf > 0 and self._buf[lf - 1] == 0x0D else lf
        line = bytes(self._buf[:end])
        del self._buf[: lf + 1]
        self._scan = 0
        return line, len(line) <= limit

    def _read_line(self) -> Event | None:
        limit = self.config.max_line
        found = self._find_line(limit)
        if found is None:
            if len(self._buf) > limit + 1:  # +1: a CR may still be followed by LF
                self._start_skip_line(bytes(self._buf[:limit]), self._line_too_long)
                return None  # go on in SKIP_LINE mode
            return NeedData()
        line, fits = found
        if not fits:
            # Whole line at once: treat it as the skipped line, including its ending.
            self._start_skip_line(line[:limit], self._line_too_long)
            self._skip_tail = line[-32:]
            return self._end_skipped_line()
        if not self._segments and not line:
            return None  # empty line between commands
        if not self._segments:
            self._tag, self._name = _head(line)
        self._size += len(line) + 2
        if self._size > self._command_limit():
            self._segments.append(line)
            return self._fail_command(RejectReason.COMMAND_TOO_BIG, line)
        self._segments.append(line)
        announced = _literal_announcement(line)
        if announced is None:
            command = Command(self._tag, self._name, tuple(self._segments), tuple(self._literals))
            self._reset_command()
            return command
        return self._announce(*announced)

    def _announce(self, size: int, sync: bool, binary: bool) -> Event | None:
        cfg = self.config
        append = self._name == "APPEND"
        pending = NeedLiteral(self._tag, self._name, size, sync, binary, self._segments[-1])
        failure: Rejected | None = None
        max_literal = cfg.max_append_literal if append else cfg.max_literal
        if max_literal is not None and size > max_literal:
            failure = Rejected(
                self._tag,
                RejectReason.LITERAL_TOO_BIG,
                "NO" if append else "BAD",
                "TOOBIG",
                "Message too big" if append else "Literal too big",
            )
        elif self._size + size > self._command_limit():
            failure = Rejected(
                self._tag, RejectReason.COMMAND_TOO_BIG, "BAD", "TOOBIG", "Command too big"
            )
        elif cfg.literal_minus and not sync and size > LITERAL_MINUS_MAX:
            failure = Rejected(
                self._tag,
                RejectReason.LITERAL_MINUS,
                "BAD",
                "TOOBIG",
                "Non-synchronizing literal over 4096 octets (LITERAL-)",
            )
        if failure is None:
            self._pending = pending
            self._mode = _Mode.DECIDE
            return pending
        if sync:
            return self._finish_failure(failure)
        self._skip_literal(size, failure)
        return None

    def _command_limit(self) -> int:
        cfg = self.config
        return cfg.max_append_command if self._name == "APPEND" else cfg.max_command

    def _take_pending(self) -> NeedLiteral:
        if self._mode is not _Mode.DECIDE or self._pending is None:
            raise RuntimeError("no literal is waiting for a decision")
        pending = self._pending
        self._pending = None
        return pending

    def _read_literal(self) -> Event | None:
        take = min(self._remaining, len(self._buf))
        if take:
            self._literal += self._buf[:take]
            del self._buf[:take]
            self._remaining -= take
        if self._remaining:
            return NeedData()
        self._literals.append(bytes(self._literal))
        self._size += len(self._literal)
        self._literal = bytearray()
        self._mode = _Mode.LINE
        self._scan = 0
        return None

    # --- throwing away ------------------------------------------------------------------------

    @property
    def _line_too_long(self) -> Rejected:
        return Rejected(self._tag, RejectReason.LINE_TOO_LONG, "BAD", None, "Command line too long")

    def _fail_command(self, reason: RejectReason, line: bytes) -> Event | None:
        """The command is over its size budget at ``line`` (already read)."""
        failure = Rejected(self._tag, reason, "BAD", "TOOBIG", "Command too big")
        announced = _literal_announcement(line)
        if announced is None:
            return self._finish_failure(failure)
        size, sync, _ = announced
        if sync:
            return self._finish_failure(failure)
        self._skip_literal(size, failure)
        return None

    def _start_skip_line(self, head: bytes, failure: Rejected) -> None:
        if not self._segments and self._tag is None:
            tag = _head(head)[0] if b" " in head else None  # a cut tag is no tag
            failure = Rejected(tag, failure.reason, failure.status, failure.code, failure.text)
        self._failure = self._failure or failure
        self._mode = _Mode.SKIP_LINE
        self._skip_tail = b""
        self._segments.append(b"")  # marks "inside a command"

    def _skip_line(self) -> Event | None:
        lf = self._buf.find(b"\n")
        if lf < 0:
            if self._buf:
                self._skip_tail = (self._skip_tail + bytes(self._buf[-32:]))[-32:]
                self._buf.clear()
            return NeedData()
        chunk = bytes(self._buf[:lf])
        del self._buf[: lf + 1]
        self._skip_tail = (self._skip_tail + chunk)[-32:]
        return self._end_skipped_line()

    def _end_skipped_line(self) -> Event | None:
        tail = self._skip_tail.rstrip(b"\r")
        self._skip_tail = b""
        announced = _LITERAL_AT_END.search(tail)
        assert self._failure is not None
        if announced is None or announced.group(3) != b"+":
            # End of the command, or a synchronizing literal the client now waits for:
            # answering ends the command (RFC 9051 section 7.6).
            return self._finish_failure(self._failure)
        self._skip_literal(int(announced.group(2)), self._failure)
        return None

    def _skip_literal(self, size: int, failure: Rejected) -> None:
        self._failure = self._failure or failure
        self._remaining = size
        self._mode = _Mode.SKIP_LITERAL
        if not self._segments:
            self._segments.append(b"")

    def _skip_literal_data(self) -> Event | None:
        take = min(self._remaining, len(self._buf))
        del self._buf[:take]
        self._remaining -= take
        if self._remaining:
            return NeedData()
        self._mode = _Mode.SKIP_LINE
        self._skip_tail = b""
        return None

    def _finish_failure(self, failure: Rejected) -> Rejected:
        result = self._failure or failure
        self._failure = None
        self._reset_command()
        self._mode = _Mode.LINE
        self._scan = 0
        return result

    # --- raw lines ---------------------------------------------------------------------------

    def _read_raw(self) -> Event | None:
        limit = self._raw_limit
        if self._raw_too_long:
            lf = self._buf.find(b"\n")
            if lf < 0:
                self._buf.clear()
                return NeedData()
            del self._buf[: lf + 1]
            return self._raw_done(
                Rejected(None, RejectReason.LINE_TOO_LONG, "BAD", None, "Line too long")
            )
        found = self._find_line(limit)
        if found is None:
            if len(self._buf) > limit + 1:
                self._raw_too_long = True
                self._buf.clear()
                self._scan = 0
            return NeedData()
        line, fits = found
        if not fits:
            return self._raw_done(
                Rejected(None, RejectReason.LINE_TOO_LONG, "BAD", None, "Line too long")
            )
        return self._raw_done(Line(line))

    def _raw_done(self, event: Event) -> Event:
        self._mode = _Mode.LINE
        self._raw_too_long = False
        self._scan = 0
        return event


def _head(line: bytes) -> tuple[str | None, str]:
    """Tag and upper-cased command name (``"UID FETCH"``) of a first line."""
    sp = line.find(b" ")
    first = line if sp < 0 else line[:sp]
    tag = first.decode("ascii") if TAG_RE.fullmatch(first) else None
    if sp < 0:
        return tag, ""
    m = _WORD.match(line, sp + 1)
    if m is None:
        return tag, ""
    name = m.group().decode("ascii").upper()
    if name == "UID" and line[m.end() : m.end() + 1] == b" ":
        sub = _WORD.match(line, m.end() + 1)
        if sub is not None:
            name += " " + sub.group().decode("ascii").upper()
    return tag, name


def _literal_announcement(line: bytes) -> tuple[int, bool, bool] | None:
    """``(size, synchronizing, literal8)`` if the line ends with a literal announcement
    that is not inside a quoted string."""
    if not line.endswith(b"}"):
        return None
    m = _LITERAL_AT_END.search(line)
    if m is None:
        return None
    start = m.start()
    pos = 0
    while True:  # is the announcement inside an unterminated quoted string?
        q = line.find(b'"', pos, start)
        if q < 0:
            break
        quoted = _QUOTED.match(line, q)
        assert quoted is not None
        if not quoted.group(1) or quoted.end() > start:
            return None
        pos = quoted.end()
    return int(m.group(2)), m.group(3) != b"+", m.group(1) == b"~"
