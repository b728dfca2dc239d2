"""The POP3 server engine, sans-IO (RFC 1939, 2449, 2595, 3206, 5034, 6856).

Theory of operation: the shell feeds received bytes to ``receive_data`` and calls
``next_event`` until it returns ``NeedData``; what the engine wants to say collects in a
buffer the shell drains with ``data_to_send``. Commands the engine can answer alone
(STAT, LIST, UIDL, DELE, RSET, NOOP, CAPA, UTF8, every error) never surface as events.
The others need the shell: a login to check (``PasswordLogin``, ``AuthStart`` /
``AuthResponse``), a message to read (``RetrieveMessage``), a TLS handshake
(``StartTls``), deletions to commit (``Commit``). The engine then stays ``Paused`` -
it does not look at the next pipelined command (RFC 2449 section 6.6) - until the shell
answers with the matching decision method (``accept_login``, ``send_message``,
``tls_started``, ``commit_finished`` ...). Answers therefore leave strictly in order.

States (RFC 1939 section 3) are ``State``; which command is valid in which state is the
``_ALLOWED`` table, checked in ``_dispatch`` only. A ``Close`` event means: send what is
buffered, then close the connection.

Client mistakes are answered ``-ERR`` and counted; ``max_errors`` of them (or
``max_auth_failures`` failed logins) end the session. Lines longer than the limit
(RFC 2449 section 4: 255 octets; we allow ``max_line``, and ``max_auth_line`` for SASL
responses) are answered ``-ERR`` and skipped up to the next LF. A bare LF ends a line
too (lenient), and the CR before it is dropped.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain

from postroom.auth.sasl import decode_sasl_base64, encode_sasl_base64
from postroom.pop3.backend import MaildropEntry
from postroom.pop3.message import dot_stuffed, top_end


class State(enum.Enum):
    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"
    CLOSED = "CLOSED"


class ResponseCode(enum.Enum):
    """Extended response codes, sent in brackets after ``-ERR`` (RFC 2449 section 8)."""

    IN_USE = "IN-USE"  # RFC 2449 8.1.2: maildrop locked by another session
    LOGIN_DELAY = "LOGIN-DELAY"  # RFC 2449 8.1.1: logged in too recently
    SYS_TEMP = "SYS/TEMP"  # RFC 3206 4: transient system problem
    SYS_PERM = "SYS/PERM"  # RFC 3206 4: permanent system problem
    AUTH = "AUTH"  # RFC 3206 5: the credentials are wrong
    UTF8 = "UTF8"  # RFC 6856 2: the message needs the UTF8 command first


@dataclass(frozen=True)
class EngineConfig:
    """What the engine needs to know beyond the bytes; fixed for a listener."""

    hostname: str = "localhost"
    mechanisms: tuple[str, ...] = ()  # SASL mechanisms offered (when login is allowed)
    tls_available: bool = False  # STLS offered (when TLS is not active yet)
    login_delay: int | None = None  # seconds, announced as LOGIN-DELAY
    max_line: int = 512  # command line, without CRLF (RFC 2449 says 255: be lenient)
    max_auth_line: int = 12288  # a SASL response line, without CRLF
    max_errors: int = 10
    max_auth_failures: int = 3


# --- events -------------------------------------------------------------------------


@dataclass(frozen=True)
class NeedData:
    """Nothing to do until more bytes arrive (or the data is waiting to be sent)."""


@dataclass(frozen=True)
class Paused:
    """A decision from the shell is pending; call the matching method first."""


@dataclass(frozen=True)
class PasswordLogin:
    """USER + PASS: check it, then ``accept_login`` or ``reject_login``."""

    user: str
    password: str


@dataclass(frozen=True)
class AuthStart:
    """AUTH: run the mechanism (``initial`` is None when the client sent none), using
    ``send_challenge``; end with ``accept_login`` or ``reject_login``."""

    mechanism: str
    initial: bytes | None


@dataclass(frozen=True)
class AuthResponse:
    """The client's decoded answer to the last ``send_challenge``."""

    data: bytes


@dataclass(frozen=True)
class AuthCancelled:
    """The SASL exchange is over: the client sent "*" (``malformed`` False) or a line
    that was not base64 or too long (``malformed`` True). The -ERR is already sent."""

    malformed: bool


@dataclass(frozen=True)
class RetrieveMessage:
    """RETR (``body_lines`` None) or TOP: read message ``index`` (0-based), then
    ``send_message`` or ``retrieve_failed``."""

    index: int
    body_lines: int | None


@dataclass(frozen=True)
class StartTls:
    """STLS: "+OK" is buffered; send it, drop anything the client sent after STLS,
    do the handshake, then ``tls_started`` (or close on failure)."""


@dataclass(frozen=True)
class Commit:
    """QUIT with messages marked deleted: expunge these (0-based, ascending), then
    ``commit_finished``."""

    deleted: tuple[int, ...]


@dataclass(frozen=True)
class Close:
    """Send what is buffered and close the connection."""

    reason: str


Event = (
    NeedData
    | Paused
    | PasswordLogin
    | AuthStart
    | AuthResponse
    | AuthCancelled
    | RetrieveMessage
    | StartTls
    | Commit
    | Close
)


class LocalProtocolError(Exception):
    """The shell called a decision method that does not fit the engine's state."""


class _Pending(enum.Enum):
    LOGIN = enum.auto()
    RETRIEVE = enum.auto()
    TLS = enum.auto()
    COMMIT = enum.auto()


_AUTHZ = frozenset({State.AUTHORIZATION})
_TRANS = frozenset({State.TRANSACTION})
_BOTH = _AUTHZ | _TRANS

# The one table of which command is valid where (RFC 1939 section 9, RFC 2449
# section 5, RFC 2595 section 4, RFC 5034 section 4, RFC 6856 section 2).
_ALLOWED: dict[str, frozenset[State]] = {
    "USER": _AUTHZ,
    "PASS": _AUTHZ,
    "AUTH": _AUTHZ,
    "STLS": _AUTHZ,
    "UTF8": _AUTHZ,
    "CAPA": _BOTH,
    "QUIT": _BOTH,
    "STAT": _TRANS,
    "LIST": _TRANS,
    "RETR": _TRANS,
    "DELE": _TRANS,
    "NOOP": _TRANS,
    "RSET": _TRANS,
    "TOP": _TRANS,
    "UIDL": _TRANS,
}


class _Marker(enum.Enum):
    TOO_LONG = enum.auto()


_TOO_LONG = _Marker.TOO_LONG


def _parse_number(arg: str) -> int | None:
    """A non-negative decimal number (RFC 1939: "msg" and "n" are digits only)."""
    if not arg or len(arg) > 40 or not arg.isascii() or not arg.isdigit():
        return None
    return int(arg)


class ServerConnection:
    """One POP3 session as seen by the server. Not thread-safe; one per connection.

    ``tls_active``: the connection is already encrypted (POP3S, or after STLS).
    ``plaintext_allowed``: USER/PASS and AUTH may be used right now; the shell decides
    (TLS active, or a trusted client network) and ``tls_started`` sets it.
    """

    def __init__(
        self, config: EngineConfig, *, tls_active: bool = False, plaintext_allowed: bool = False
    ) -> None:
        self.config = config
        self.state = State.AUTHORIZATION
        self.tls_active = tls_active
        self.plaintext_allowed = plaintext_allowed or tls_active
        self.utf8 = False  # RFC 6856: the client sent UTF8
        self.user: str | None = None  # the logged-in user, once in TRANSACTION
        self.entries: Sequence[MaildropEntry] = ()
        self.deleted: set[int] = set()
        self.errors = 0
        self.auth_failures = 0
        self.close_reason: str | None = None
        self._in = bytearray()
        self._out = bytearray()
        self._skipping = False  # dropping the rest of an overlong line
        self._pending: _Pending | None = None
        self._pending_user: str | None = None  # after USER, until PASS
        self._in_sasl = False  # an AUTH exchange is running
        self._sasl_waiting = False  # a challenge went out; the next line answers it
        self._retrieve: RetrieveMessage | None = None
        self._reply(True, f"{config.hostname} Postroom POP3 server ready")

    # --- bytes in, bytes out --------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the client. Ignored once the session is closing."""
        if self.state is not State.CLOSED:
            self._in += data

    def data_to_send(self) -> bytes:
        """Everything buffered for the client, in order; clears the buffer."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Event:
        """Process buffered input until something needs the shell."""
        while True:
            if self.state is State.CLOSED:
                return Close(self.close_reason or "closed")
            if self._pending is not None:
                return Paused()
            line = self._next_line()
            if line is None:
                return NeedData()
            event = self._line_too_long() if line is _TOO_LONG else self._handle_line(line)
            if event is not None:
                return event

    def _next_line(self) -> bytes | _Marker | None:
        """The next complete line without its line ending, ``_TOO_LONG`` for a line
        over the limit (dropped up to its LF), None when more data is needed."""
        while True:
            # SASL lines may be long, and so may AUTH with an initial response (RFC
            # 5034 says a client must not send one over 255 octets: be lenient). The
            # prefix is always known when it matters: only lines longer than
            # ``max_line`` are judged.
            long_ok = self._sasl_waiting or self._in[:5].upper() == b"AUTH "
            limit = self.config.max_auth_line if long_ok else self.config.max_line
            newline = self._in.find(b"\n")
            if self._skipping:
                if newline < 0:
                    self._in.clear()
                    return None
                del self._in[: newline + 1]
                self._skipping = False
                continue
            if newline < 0:
                # +1: a CR may still be followed by the LF that makes the line fit.
                if len(self._in) > limit + 1:
                    self._in.clear()
                    self._skipping = True
                    return _TOO_LONG
                return None
            end = newline - 1 if newline > 0 and self._in[newline - 1] == 0x0D else newline
            if end > limit:
                del self._in[: newline + 1]
                return _TOO_LONG
            line = bytes(self._in[:end])
            del self._in[: newline + 1]
            return line

    def _line_too_long(self) -> Event | None:
        self._pending_user = None
        if self._sasl_waiting:
            self._sasl_waiting = False
            self._in_sasl = False
            self._protocol_error("line too long, authentication aborted")
            return AuthCancelled(malformed=True)
        self._protocol_error("line too long")
        return None

    # --- replies --------------------------------------------------------------------

    def _reply(self, ok: bool, text: str, code: ResponseCode | None = None) -> None:
        status = "+OK" if ok else "-ERR"
        prefix = f"{status} [{code.value}]" if code is not None else status
        self._out += (f"{prefix} {text}" if text else prefix).encode() + b"\r\n"

    def _multiline(self, first: str, lines: Sequence[str]) -> None:
        self._reply(True, first)
        for line in lines:
            self._out += line.encode() + b"\r\n"
        self._out += b".\r\n"

    def _protocol_error(self, text: str, code: ResponseCode | None = None) -> None:
        """The client broke the protocol: -ERR, and count it (too many ends it)."""
        self.errors += 1
        if self.errors >= self.config.max_errors:
            self._close("too many errors, closing connection", ok=False)
        else:
            self._reply(False, text, code)

    def _close(self, text: str, *, ok: bool, code: ResponseCode | None = None) -> None:
        self._reply(ok, text, code)
        self.state = State.CLOSED
        self.close_reason = text
        self._in.clear()
        self._pending = None

    # --- command dispatch -----------------------------------------------------------

    def _handle_line(self, line: bytes) -> Event | None:
        if self._sasl_waiting:
            return self._sasl_line(line)
        keyword, _, rest = line.partition(b" ")
        name = keyword.decode("ascii", "replace").upper()
        return self._dispatch(name, rest)

    def _dispatch(self, name: str, rest: bytes) -> Event | None:
        allowed = _ALLOWED.get(name)
        if allowed is None:
            self._pending_user = None
            self._protocol_error("unknown command")
            return None
        if self.state not in allowed:
            self._pending_user = None
            self._protocol_error(f"{name} not valid in the {self.state.value} state")
            return None
        if name != "PASS":
            self._pending_user = None  # PASS must follow USER directly (RFC 1939 7)
        handler: Callable[[ServerConnection, bytes], Event | None] = _HANDLERS[name]
        return handler(self, rest)

    def _args(self, rest: bytes) -> list[str] | None:
        """Space-separated ASCII arguments; None (after -ERR) when not ASCII."""
        try:
            return rest.decode("ascii").split()
        except UnicodeDecodeError:
            self._protocol_error("arguments must be ASCII")
            return None

    # --- AUTHORIZATION --------------------------------------------------------------

    def _cmd_user(self, rest: bytes) -> Event | None:
        if not self.plaintext_allowed:
            self._reply(False, "log in over TLS: use STLS first")
            return None
        name = self._utf8_argument(rest.strip(b" "))
        if name is None:
            return None
        self._pending_user = name
        self._reply(True, "send PASS")
        return None

    def _cmd_pass(self, rest: bytes) -> Event | None:
        user = self._pending_user
        self._pending_user = None
        if user is None:
            self._protocol_error("USER first")
            return None
        if not self.plaintext_allowed:  # USER was refused already; defensive
            self._reply(False, "log in over TLS: use STLS first")
            return None
        # RFC 1939 7: the password is the rest of the line and may contain spaces.
        password = self._utf8_argument(rest)
        if password is None:
            return None
        self._pending = _Pending.LOGIN
        return PasswordLogin(user, password)

    def _utf8_argument(self, raw: bytes) -> str | None:
        """USER/PASS argument: UTF-8 (RFC 6856 "UTF8 USER"), no control characters."""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self._protocol_error("invalid UTF-8")
            return None
        if not text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            self._protocol_error("missing or invalid argument")
            return None
        return text

    def _cmd_auth(self, rest: bytes) -> Event | None:
        args = self._args(rest)
        if args is None:
            return None
        if not self.plaintext_allowed:
            self._reply(False, "log in over TLS: use STLS first")
            return None
        if not args:
            # Not in RFC 5034 but widely used: AUTH alone lists the mechanisms.
            self._multiline("SASL mechanisms follow", self.config.mechanisms)
            return None
        if len(args) > 2:
            self._protocol_error("syntax: AUTH mechanism [initial-response]")
            return None
        mechanism = args[0].upper()
        if mechanism not in self.config.mechanisms:
            self._reply(False, "unsupported SASL mechanism")
            return None
        initial: bytes | None = None
        if len(args) == 2:
            initial = decode_sasl_base64(args[1].encode())
            if initial is None:
                self._protocol_error("invalid base64 in initial response")
                return None
        self._pending = _Pending.LOGIN
        self._in_sasl = True
        return AuthStart(mechanism, initial)

    def _sasl_line(self, line: bytes) -> Event:
        self._sasl_waiting = False
        if line == b"*":  # RFC 5034 section 4: the client cancels
            self._in_sasl = False
            self._reply(False, "authentication cancelled")
            return AuthCancelled(malformed=False)
        data = decode_sasl_base64(line)
        if data is None:
            self._in_sasl = False
            self._protocol_error("invalid base64, authentication aborted")
            return AuthCancelled(malformed=True)
        self._pending = _Pending.LOGIN
        return AuthResponse(data)

    def _cmd_stls(self, rest: bytes) -> Event | None:
        if rest.strip():
            self._protocol_error("STLS takes no argument")
            return None
        if self.tls_active:
            self._reply(False, "TLS already active")
            return None
        if not self.config.tls_available:
            self._reply(False, "TLS not available")
            return None
        self._reply(True, "begin TLS negotiation")
        # RFC 2595 section 4 / RFC 3207 4.2 (injection): nothing the client sent
        # before the handshake may be read as a command after it.
        self._in.clear()
        self._skipping = False
        self._pending = _Pending.TLS
        return StartTls()

    def _cmd_utf8(self, rest: bytes) -> Event | None:
        if rest.strip():
            self._protocol_error("UTF8 takes no argument")
            return None
        self.utf8 = True  # RFC 6856 section 2
        self._reply(True, "UTF8 enabled")
        return None

    def _cmd_capa(self, rest: bytes) -> Event | None:
        lines = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self.state is State.AUTHORIZATION:
            if self.plaintext_allowed:
                lines.append("USER")
                if self.config.mechanisms:
                    lines.append("SASL " + " ".join(self.config.mechanisms))
            if self.config.tls_available and not self.tls_active:
                lines.append("STLS")
        lines.append("EXPIRE NEVER")
        if self.config.login_delay is not None:
            lines.append(f"LOGIN-DELAY {self.config.login_delay}")
        lines += ["UTF8 USER", "IMPLEMENTATION Postroom"]
        self._multiline("capability list follows", lines)
        return None

    def _cmd_quit(self, rest: bytes) -> Event | None:
        if self.state is State.AUTHORIZATION:
            self._close(f"{self.config.hostname} Postroom POP3 server signing off", ok=True)
            return Close("quit")
        # RFC 1939 section 6: QUIT from TRANSACTION enters UPDATE.
        self.state = State.UPDATE
        if not self.deleted:
            self._close(self._signoff(), ok=True)
            return Close("quit")
        self._pending = _Pending.COMMIT
        return Commit(tuple(sorted(self.deleted)))

    def _signoff(self) -> str:
        left = len(self.entries) - len(self.deleted)
        return f"{self.config.hostname} Postroom POP3 server signing off ({left} messages left)"

    # --- TRANSACTION ----------------------------------------------------------------

    def _message(self, arg: str) -> int | None:
        """Message number -> 0-based index; None (after -ERR) when it does not exist
        or is marked deleted (RFC 1939 section 5)."""
        number = _parse_number(arg)
        if number is None:
            self._protocol_error("invalid message number")
            return None
        if not 1 <= number <= len(self.entries):
            self._reply(False, "no such message")
            return None
        if number - 1 in self.deleted:
            self._reply(False, f"message {number} already deleted")
            return None
        return number - 1

    def _live(self) -> list[int]:
        return [i for i in range(len(self.entries)) if i not in self.deleted]

    def _summary(self) -> str:
        live = self._live()
        octets = sum(self.entries[i].size for i in live)
        return f"maildrop has {len(live)} messages ({octets} octets)"

    def _one_optional_arg(self, rest: bytes, name: str) -> tuple[bool, int | None]:
        """(ok, index) for LIST/UIDL: index None means all messages."""
        args = self._args(rest)
        if args is None:
            return False, None
        if not args:
            return True, None
        if len(args) > 1:
            self._protocol_error(f"syntax: {name} [msg]")
            return False, None
        index = self._message(args[0])
        return index is not None, index

    def _cmd_stat(self, rest: bytes) -> Event | None:
        live = self._live()
        self._reply(True, f"{len(live)} {sum(self.entries[i].size for i in live)}")
        return None

    def _cmd_list(self, rest: bytes) -> Event | None:
        ok, index = self._one_optional_arg(rest, "LIST")
        if ok and index is None:
            lines = [f"{i + 1} {self.entries[i].size}" for i in self._live()]
            self._multiline(self._summary(), lines)
        elif ok and index is not None:
            self._reply(True, f"{index + 1} {self.entries[index].size}")
        return None

    def _cmd_uidl(self, rest: bytes) -> Event | None:
        ok, index = self._one_optional_arg(rest, "UIDL")
        if ok and index is None:
            lines = [f"{i + 1} {self.entries[i].uidl}" for i in self._live()]
            self._multiline("unique-id listing follows", lines)
        elif ok and index is not None:
            self._reply(True, f"{index + 1} {self.entries[index].uidl}")
        return None

    def _cmd_dele(self, rest: bytes) -> Event | None:
        args = self._args(rest)
        if args is None:
            return None
        if len(args) != 1:
            self._protocol_error("syntax: DELE msg")
            return None
        index = self._message(args[0])
        if index is not None:
            self.deleted.add(index)
            self._reply(True, f"message {index + 1} deleted")
        return None

    def _cmd_rset(self, rest: bytes) -> Event | None:
        self.deleted.clear()
        self._reply(True, self._summary())
        return None

    def _cmd_noop(self, rest: bytes) -> Event | None:
        self._reply(True, "")
        return None

    def _cmd_retr(self, rest: bytes) -> Event | None:
        args = self._args(rest)
        if args is None:
            return None
        if len(args) != 1:
            self._protocol_error("syntax: RETR msg")
            return None
        return self._start_retrieve(args[0], None)

    def _cmd_top(self, rest: bytes) -> Event | None:
        args = self._args(rest)
        if args is None:
            return None
        if len(args) != 2:
            self._protocol_error("syntax: TOP msg n")
            return None
        lines = _parse_number(args[1])
        if lines is None:
            self._protocol_error("invalid number of lines")
            return None
        return self._start_retrieve(args[0], lines)

    def _start_retrieve(self, arg: str, body_lines: int | None) -> Event | None:
        index = self._message(arg)
        if index is None:
            return None
        if self.entries[index].utf8 and not self.utf8:
            self._reply(False, "message needs UTF-8 support: send UTF8", ResponseCode.UTF8)
            return None
        self._pending = _Pending.RETRIEVE
        self._retrieve = RetrieveMessage(index, body_lines)
        return self._retrieve

    # --- decisions from the shell ---------------------------------------------------

    def _expect(self, pending: _Pending) -> None:
        if self._pending is not pending:
            raise LocalProtocolError(f"no {pending.name} decision pending ({self._pending})")

    def accept_login(self, user: str, entries: Sequence[MaildropEntry]) -> None:
        """The login succeeded and the maildrop is locked: enter TRANSACTION."""
        self._expect(_Pending.LOGIN)
        self._pending = None
        self._in_sasl = False
        self.state = State.TRANSACTION
        self.user = user
        self.entries = entries
        self._reply(True, self._summary())

    def reject_login(self, text: str, code: ResponseCode | None = ResponseCode.AUTH) -> None:
        """The login failed (``code`` AUTH: wrong credentials, counted; IN-USE,
        SYS/TEMP, LOGIN-DELAY ...: not the client's fault)."""
        self._expect(_Pending.LOGIN)
        self._pending = None
        self._in_sasl = False
        if code is ResponseCode.AUTH:
            self.auth_failures += 1
            if self.auth_failures >= self.config.max_auth_failures:
                self._close(f"{text}; too many failures, closing connection", ok=False, code=code)
                return
        self._reply(False, text, code)

    def send_challenge(self, data: bytes) -> None:
        """Send a SASL challenge ("+ base64", RFC 5034 section 4); the next event is
        the client's ``AuthResponse`` (or ``AuthCancelled``)."""
        self._expect(_Pending.LOGIN)
        if not self._in_sasl:
            raise LocalProtocolError("no SASL exchange running")
        self._pending = None
        self._sasl_waiting = True
        self._out += b"+ " + encode_sasl_base64(data) + b"\r\n"

    def send_message(self, message: bytes) -> Iterator[bytes | memoryview]:
        """Answer the pending RETR/TOP with ``message`` (CRLF endings). Returns the
        output in order - what was buffered, the +OK line, the dot-stuffed message
        and the terminator - as chunks that share memory with ``message``."""
        self._expect(_Pending.RETRIEVE)
        request = self._retrieve
        assert request is not None
        self._pending = None
        self._retrieve = None
        if request.body_lines is None:
            self._reply(True, f"{self.entries[request.index].size} octets")
            end = None
        else:
            self._reply(True, "top of message follows")
            end = top_end(message, request.body_lines)
        head = self.data_to_send()
        return chain((head,), dot_stuffed(message, end))

    def retrieve_failed(self, text: str = "message unavailable, try again later") -> None:
        self._expect(_Pending.RETRIEVE)
        self._pending = None
        self._retrieve = None
        self._reply(False, text, ResponseCode.SYS_TEMP)

    def tls_started(self) -> None:
        """The handshake after STLS succeeded. RFC 2595 section 4: forget what the
        client said before it."""
        self._expect(_Pending.TLS)
        self._pending = None
        self.tls_active = True
        self.plaintext_allowed = True
        self._pending_user = None
        self.utf8 = False

    def commit_finished(self, ok: bool) -> None:
        """The UPDATE state's expunge is done (RFC 1939 section 6)."""
        self._expect(_Pending.COMMIT)
        if ok:
            self._close(self._signoff(), ok=True)
        else:
            self._close("some deleted messages not removed", ok=False, code=ResponseCode.SYS_TEMP)


_HANDLERS: dict[str, Callable[[ServerConnection, bytes], Event | None]] = {
    "USER": ServerConnection._cmd_user,
    "PASS": ServerConnection._cmd_pass,
    "AUTH": ServerConnection._cmd_auth,
    "STLS": ServerConnection._cmd_stls,
    "UTF8": ServerConnection._cmd_utf8,
    "CAPA": ServerConnection._cmd_capa,
    "QUIT": ServerConnection._cmd_quit,
    "STAT": ServerConnection._cmd_stat,
    "LIST": ServerConnection._cmd_list,
    "RETR": ServerConnection._cmd_retr,
    "DELE": ServerConnection._cmd_dele,
    "NOOP": ServerConnection._cmd_noop,
    "RSET": ServerConnection._cmd_rset,
    "TOP": ServerConnection._cmd_top,
    "UIDL": ServerConnection._cmd_uidl,
}
assert _HANDLERS.keys() == _ALLOWED.keys()
