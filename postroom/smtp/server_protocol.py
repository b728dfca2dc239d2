"""The SMTP server engine, sans-IO (RFC 5321 and the extensions listed below).

Theory of operation: the shell feeds received bytes with ``receive_data`` (``b""``
means the peer closed), pulls events with ``next_event`` and sends what
``data_to_send`` returns. The engine never reads a socket, sleeps or touches a
store. Where policy is needed it emits a decision event and waits; the shell answers
with ``accept``/``reject`` (or the ``auth_*`` calls) and pulls again. Because the
engine handles the next buffered command only after the pending one is answered,
replies leave strictly in command order however much the client pipelines
(RFC 2920 section 3.1).

States (``State``), one guard (``_check_sequence``) says which command may run in
which state and what to answer otherwise:

    INITIAL --HELO/EHLO--> READY --MAIL--> TRANSACTION --DATA--> DATA --.--> READY
                             ^  |              |   \\--BDAT--> BDAT <--> CHUNKING
                             |  +--AUTH--> AUTH |
                             |  +--STARTTLS--> STARTTLS --tls_started--> INITIAL
                             +-------- RSET / EHLO / end of a message -------+

Input framing: commands are lines ending in LF (a CR before it is dropped, so bare
LF command lines are tolerated; CR elsewhere is refused). DATA content is decoded by
``data.DotDecoder``, which only ends at CR LF "." CR LF (see ``data`` for the bare
CR/LF policy); BDAT chunks are counted octets (RFC 3030) and are binary-transparent.

Limits: command lines up to ``max_command_line`` octets (RFC 5321 4.5.3.1.4 says 512;
we allow more for long ESMTP parameters), longer ones are dropped up to the next LF and
answered ``500 5.5.2``. AUTH exchange lines may be 12288 octets (RFC 4954 section 4).
Message content over ``max_message_size`` is read to its end but not passed on, then
answered ``552 5.3.4`` (RFC 1870 section 6); DATA text lines over ``max_data_line``
likewise give ``500 5.5.2``. More than ``max_recipients`` RCPTs get ``452 4.5.3``
(RFC 5321 4.5.3.1.10). After ``max_errors`` protocol errors: ``421 4.7.0`` and close.

Extensions: PIPELINING (2920), SIZE (1870), 8BITMIME (6152), SMTPUTF8 (6531),
ENHANCEDSTATUSCODES (2034; every reply but the greeting, EHLO/HELO and 3xx carries
one, in HELO sessions too), CHUNKING and BINARYMIME (3030), DSN (3461), STARTTLS
(3207), AUTH (4954), REQUIRETLS (8689, offered under TLS only), LIMITS (9422).
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections import deque
from dataclasses import dataclass, replace
from typing import Literal

from postroom.smtp import codes
from postroom.smtp.address import AddressError, parse_path
from postroom.smtp.codes import Reply, SmtpError, error
from postroom.smtp.data import BareNewlinePolicy, DotDecoder, LineLengthMeter
from postroom.smtp.params import MailParams, parse_mail_params, parse_rcpt_params
from postroom.smtp.server_events import (
    NEED_DATA,
    PAUSED,
    AuthAborted,
    AuthRequested,
    AuthResponse,
    ConnectionClosed,
    DataChunk,
    DataComplete,
    Event,
    MailFromRequested,
    MessageStarted,
    NeedData,
    Paused,
    RcptToRequested,
    StartTlsRequested,
    TransactionReset,
)

# Largest DataChunk the engine emits at once, so a shell that feeds a lot still sees
# bounded events.
MAX_EVENT_BYTES = 256 * 1024
# RFC 5321 section 2.3.8; see data.py for why we refuse.
_BARE_NEWLINE = Reply(550, "5.6.0", "Bare CR or LF in message content not allowed")
HTTP_VERBS = frozenset({"GET", "POST", "HEAD", "PUT", "CONNECT", "OPTIONS", "DELETE"})


class State(enum.Enum):
    INITIAL = "initial"  # connected, no HELO/EHLO yet
    READY = "ready"  # greeted, no transaction
    TRANSACTION = "transaction"  # MAIL accepted, RCPT/DATA/BDAT possible
    CHUNKING = "chunking"  # at least one non-LAST BDAT chunk received
    DATA = "data"  # reading DATA content
    BDAT = "bdat"  # reading the octets of one BDAT chunk
    AUTH = "auth"  # SASL exchange in progress
    STARTTLS = "starttls"  # 220 sent, waiting for the TLS handshake
    CLOSED = "closed"


class _Decision(enum.Enum):
    MAIL = "mail"
    RCPT = "rcpt"
    MESSAGE = "message"
    AUTH = "auth"


_PRE_DATA = frozenset({State.INITIAL, State.READY, State.TRANSACTION, State.CHUNKING})

# Which command may run in which state (RFC 5321 section 4.1.4, RFC 3030 section 2,
# RFC 3207 section 4, RFC 4954 section 4).
_ALLOWED: dict[str, frozenset[State]] = {
    "HELO": _PRE_DATA,
    "EHLO": _PRE_DATA,
    "RSET": _PRE_DATA,
    "NOOP": _PRE_DATA,
    "QUIT": _PRE_DATA,
    "VRFY": _PRE_DATA,
    "EXPN": _PRE_DATA,
    "HELP": _PRE_DATA,
    "MAIL": frozenset({State.READY}),
    "RCPT": frozenset({State.TRANSACTION}),
    "DATA": frozenset({State.TRANSACTION}),
    "BDAT": frozenset({State.TRANSACTION, State.CHUNKING}),
    "AUTH": frozenset({State.READY}),
    "STARTTLS": frozenset({State.READY}),
}

_TOO_LONG = object()  # marker from _take_line


@dataclass(frozen=True)
class ServerConfig:
    """What one session's engine needs to know; the shell builds it per connection.

    ``max_message_size`` 0 means no limit; ``max_data_line`` None means no limit.
    ``auth_mechanisms`` are the names offered when AUTH is available: under TLS, or
    without it when ``auth_without_tls``. ``require_auth``: MAIL needs AUTH first
    (submission, RFC 6409 section 4.3).
    """

    hostname: str
    greeting: str = "ESMTP Postroom"
    max_message_size: int = 52_428_800
    max_recipients: int = 1000
    max_transactions: int | None = None
    max_command_line: int = 4096
    max_auth_line: int = 12288
    max_data_line: int | None = 65536
    max_errors: int = 20
    bare_newline: BareNewlinePolicy = "reject"
    tls_active: bool = False
    starttls: bool = False
    auth_mechanisms: tuple[str, ...] = ()
    auth_without_tls: bool = False
    require_auth: bool = False
    pipelining: bool = True
    eightbitmime: bool = True
    smtputf8: bool = True
    chunking: bool = True
    binarymime: bool = True
    dsn: bool = True
    requiretls: bool = True


def decode_base64(text: bytes) -> bytes | None:
    """SASL base64 as SMTP carries it: ``=`` is the empty string (RFC 4954 section 4);
    ``None`` for invalid input."""
    text = text.strip()
    if text == b"=":
        return b""
    if not text:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def encode_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class SmtpServerProtocol:
    """One SMTP server session. See the module docstring for the contract."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.state = State.INITIAL
        self.helo: str | None = None
        self.esmtp = False
        self.tls = config.tls_active
        self.authenticated_user: str | None = None
        self.mail_params: MailParams | None = None
        self.recipient_count = 0
        self.transactions = 0
        self.errors = 0
        self.close_reason: str | None = None
        self._buf = bytearray()
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._pending: _Decision | None = None
        self._pending_params: MailParams | None = None
        self._eof = False
        self._discarding_line = False
        # message content
        self._decoder: DotDecoder | None = None
        self._meter: LineLengthMeter | None = None
        self._data_size = 0
        self._doom: Reply | None = None
        # BDAT chunk
        self._chunk_remaining = 0
        self._chunk_size = 0
        self._chunk_last = False
        self._chunk_error: Reply | None = None
        self._chunk_return = State.READY
        # AUTH
        self._auth_reading: Literal["response", "final"] | None = None
        self._auth_user: str | None = None
        self._send(Reply(220, None, f"{config.hostname} {config.greeting}"))

    # ---- shell interface ------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Bytes from the client; ``b""`` when it closed its side."""
        if self.state is State.CLOSED:
            return
        if not data:
            self._eof = True
            return
        if self.state is State.STARTTLS:
            return  # plaintext after STARTTLS is never a command (RFC 3207 4.2)
        self._buf += data

    def data_to_send(self) -> bytes:
        """Everything queued for the client since the last call."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Event | NeedData | Paused:
        """The next event, ``NEED_DATA`` or ``PAUSED`` (see ``server_events``)."""
        while True:
            if self._events:
                return self._events.popleft()
            if self.state is State.CLOSED:
                return ConnectionClosed(self.close_reason or "closed")
            if (self._pending is not None and self._auth_reading is None) or (
                self.state is State.STARTTLS
            ):
                return PAUSED
            if not self._step():
                if self._eof:
                    self._close("eof")
                    continue
                return NEED_DATA

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def receiving_message(self) -> bool:
        """True while message content is being read (the shell's data timeout)."""
        return self.state in (State.DATA, State.BDAT)

    @property
    def auth_available(self) -> bool:
        return bool(self.config.auth_mechanisms) and (self.tls or self.config.auth_without_tls)

    def extensions(self) -> list[str]:
        """The EHLO keyword lines offered now (they depend on TLS and AUTH state)."""
        c = self.config
        ext: list[str] = []
        if c.pipelining:
            ext.append("PIPELINING")
        ext.append(f"SIZE {c.max_message_size}" if c.max_message_size else "SIZE")
        if c.eightbitmime:
            ext.append("8BITMIME")
        if c.smtputf8:
            ext.append("SMTPUTF8")
        ext.append("ENHANCEDSTATUSCODES")
        if c.chunking:
            ext.append("CHUNKING")
            if c.binarymime and c.eightbitmime:
                ext.append("BINARYMIME")
        if c.dsn:
            ext.append("DSN")
        if c.starttls and not self.tls:
            ext.append("STARTTLS")
        if self.auth_available:
            ext.append("AUTH " + " ".join(c.auth_mechanisms))
        if c.requiretls and self.tls:
            ext.append("REQUIRETLS")
        limits = f"LIMITS RCPTMAX={c.max_recipients}"
        if c.max_transactions:
            limits += f" MAILMAX={c.max_transactions}"
        ext.append(limits)
        return ext

    def offered(self) -> frozenset[str]:
        """Keywords of the extensions this session may use (none after HELO)."""
        if not self.esmtp:
            return frozenset()
        return frozenset(line.split(" ", 1)[0] for line in self.extensions())

    def accept(self, reply: Reply | None = None) -> None:
        """Answer the pending MAIL, RCPT or message decision positively."""
        decision = self._take_decision()
        if decision is _Decision.MAIL:
            self._send(reply or Reply(250, "2.1.0", "Sender OK"))
            self.state = State.TRANSACTION
            self.mail_params = self._pending_params
            self.recipient_count = 0
            self.transactions += 1
        elif decision is _Decision.RCPT:
            self._send(reply or Reply(250, "2.1.5", "Recipient OK"))
            self.recipient_count += 1
        else:
            self._send(reply or codes.OK)
            self._end_transaction(None)

    def reject(self, reply: Reply) -> None:
        """Answer the pending MAIL, RCPT or message decision with ``reply``."""
        decision = self._take_decision()
        self._send(reply)
        if decision is _Decision.MESSAGE:
            self._end_transaction(None)

    def auth_challenge(self, data: bytes) -> None:
        """Send a ``334`` challenge; the client's answer comes as ``AuthResponse``."""
        self._require_auth_step()
        self._send(Reply(334, None, encode_base64(data)))
        self._auth_reading = "response"

    def auth_succeeded(self, user: str, final_data: bytes | None = None) -> None:
        """Authentication worked. ``final_data`` (SCRAM's server-final message) goes
        out as one more ``334`` and the client must answer it with an empty line
        before ``235`` (RFC 4954 section 4: no "additional data with success")."""
        self._require_auth_step()
        if final_data is not None:
            self._send(Reply(334, None, encode_base64(final_data)))
            self._auth_reading = "final"
            self._auth_user = user
            return
        self._finish_auth(user)

    def auth_failed(self, reply: Reply | None = None) -> None:
        """Authentication failed: ``535 5.7.8`` unless ``reply`` says otherwise."""
        self._require_auth_step()
        self._pending = None
        self.state = State.READY
        self._error(reply or codes.AUTH_INVALID)

    def tls_started(self) -> None:
        """The TLS handshake after STARTTLS succeeded: start over (RFC 3207 4.2)."""
        if self.state is not State.STARTTLS:
            raise RuntimeError("tls_started() without STARTTLS")
        self.tls = True
        self.helo = None
        self.esmtp = False
        self.authenticated_user = None
        self._buf.clear()
        self.state = State.INITIAL

    def timeout(self) -> None:
        """The client was silent too long (RFC 5321 4.5.3.2.7): 421 and close."""
        self.close(Reply(421, "4.4.2", f"{self.config.hostname} Timeout, closing connection"))
        self.close_reason = "timeout"

    def close(self, reply: Reply | None = None) -> None:
        """Close from the shell's side, sending ``reply`` first if given."""
        if self.state is State.CLOSED:
            return
        if reply is not None:
            self._send(reply)
        self._close("shell")

    # ---- internals: output and bookkeeping ------------------------------------------

    def _send(self, reply: Reply) -> None:
        self._out += reply.to_bytes()

    def _close(self, reason: str) -> None:
        if self.mail_params is not None:
            self.mail_params = None
        self._pending = None
        self._auth_reading = None
        self.state = State.CLOSED
        self.close_reason = reason
        self._buf.clear()

    def _error(self, reply: Reply) -> None:
        """Answer a client error; permanent ones count towards ``max_errors``."""
        self._send(reply)
        if reply.code >= 500:
            self.errors += 1
            if self.errors >= self.config.max_errors:
                self._send(codes.TOO_MANY_ERRORS)
                self._close("errors")

    def _take_decision(self) -> _Decision:
        decision = self._pending
        if decision is None or decision is _Decision.AUTH:
            raise RuntimeError("no MAIL/RCPT/message decision is pending")
        self._pending = None
        return decision

    def _require_auth_step(self) -> None:
        if self._pending is not _Decision.AUTH or self._auth_reading is not None:
            raise RuntimeError("no AUTH step is pending")

    def _finish_auth(self, user: str) -> None:
        self.authenticated_user = user
        self._pending = None
        self._auth_reading = None
        self._auth_user = None
        self.state = State.READY
        self._send(codes.AUTH_SUCCEEDED)

    def _abort_auth(self, reply: Reply) -> None:
        self._pending = None
        self._auth_reading = None
        self._auth_user = None
        self.state = State.READY
        self._events.append(AuthAborted(reply))
        self._error(reply)

    def _end_transaction(self, reason: str | None) -> None:
        """Forget the transaction; ``reason`` set: tell the shell (it may hold a spool)."""
        if reason is not None and self.mail_params is not None:
            self._events.append(TransactionReset(reason))
        self.mail_params = None
        self.recipient_count = 0
        self._decoder = None
        self._meter = None
        self._doom = None
        self._data_size = 0
        self.state = State.READY if self.helo is not None else State.INITIAL

    # ---- internals: input -----------------------------------------------------------

    def _step(self) -> bool:
        """Make progress on buffered input; False when more bytes are needed."""
        if self.state is State.DATA:
            return self._step_data()
        if self.state is State.BDAT:
            return self._step_bdat()
        limit = self.config.max_command_line
        if self.state is State.AUTH:
            limit = max(limit, self.config.max_auth_line)
        line = self._take_line(limit)
        if line is None:
            return False
        if self.state is State.AUTH:
            self._auth_line(line)
        elif line is _TOO_LONG:
            self._error(codes.LINE_TOO_LONG)
        else:
            assert isinstance(line, bytes)
            self._command(line)
        return True

    def _take_line(self, limit: int) -> bytes | object | None:
        buf = self._buf
        i = buf.find(b"\n")
        if self._discarding_line:
            if i < 0:
                buf.clear()
                return None
            del buf[: i + 1]
            self._discarding_line = False
            return _TOO_LONG
        if i < 0:
            if len(buf) > limit:
                buf.clear()
                self._discarding_line = True
            return None
        line = bytes(buf[:i])
        del buf[: i + 1]
        if len(line) + 1 > limit:
            return _TOO_LONG
        if line.endswith(b"\r"):
            line = line[:-1]
        return line

    def _command(self, raw: bytes) -> None:
        try:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise error(500, "5.5.2", "Invalid UTF-8 in command") from None
            if any(ord(c) < 32 and c != "\t" for c in text) or "\x7f" in text:
                raise error(501, "5.5.2", "Invalid character in command")
            verb, _, arg = text.partition(" ")
            verb = verb.upper()
            handler = self._HANDLERS.get(verb)
            if handler is None:
                if verb in HTTP_VERBS:
                    # Cross-protocol requests: say why and go (Postfix does the same).
                    self._send(Reply(421, "4.7.0", "This is an SMTP server, closing"))
                    self._close("http")
                    return
                raise SmtpError(codes.UNKNOWN_COMMAND)
            sequence = self._check_sequence(verb)
            if sequence is not None and verb != "BDAT":
                raise SmtpError(sequence)
            handler(self, arg.strip(" \t"))
        except SmtpError as exc:
            self._error(exc.reply)

    def _check_sequence(self, verb: str) -> Reply | None:
        """The one state guard: ``None`` when ``verb`` may run now, else the reply."""
        state = self.state
        if state in _ALLOWED[verb]:
            return None
        if state is State.INITIAL:
            return Reply(503, "5.5.1", "Send HELO/EHLO first")
        if verb == "MAIL":
            return Reply(503, "5.5.1", "Nested MAIL command")
        if state is State.CHUNKING and verb in ("DATA", "RCPT"):
            return Reply(503, "5.5.1", f"{verb} not allowed after BDAT")  # RFC 3030 2
        if verb in ("RCPT", "DATA", "BDAT"):
            return Reply(503, "5.5.1", "Need MAIL command")
        if verb in ("AUTH", "STARTTLS"):
            return Reply(503, "5.5.1", f"{verb} not allowed during a mail transaction")
        return codes.BAD_SEQUENCE

    # ---- commands -----------------------------------------------------------------

    def _hello(self, arg: str, esmtp: bool) -> None:
        name = arg.split(" ", 1)[0] if arg else ""
        if not name or len(name) > 255:
            raise error(501, "5.5.4", f"Syntax: {'EHLO' if esmtp else 'HELO'} hostname")
        self._end_transaction("hello")
        self.helo = name
        self.esmtp = esmtp
        self.state = State.READY
        host = self.config.hostname
        if esmtp:
            self._send(Reply(250, None, "\n".join([host, *self.extensions()])))
        else:
            self._send(Reply(250, None, host))

    def _cmd_ehlo(self, arg: str) -> None:
        self._hello(arg, True)

    def _cmd_helo(self, arg: str) -> None:
        self._hello(arg, False)

    def _cmd_mail(self, arg: str) -> None:
        if self.config.require_auth and self.authenticated_user is None:
            if not self.auth_available and self.config.starttls and not self.tls:
                raise error(530, "5.7.0", "Must issue a STARTTLS command first")
            raise SmtpError(codes.AUTH_REQUIRED)  # RFC 4954 section 6
        limit = self.config.max_transactions
        if limit and self.transactions >= limit:
            raise error(452, "4.5.3", "Too many transactions in this session")
        if arg[:5].upper() != "FROM:":
            raise error(501, "5.5.4", "Syntax: MAIL FROM:<address>")
        try:
            mailbox, rest = parse_path(arg[5:].lstrip(" "), allow_null=True)
        except AddressError as exc:
            raise error(501, "5.1.7", f"Bad sender address syntax: {exc}") from None
        if rest and not rest.startswith(" "):
            raise error(501, "5.5.4", "Syntax: MAIL FROM:<address> [parameters]")
        params = parse_mail_params(rest, self.offered())
        if mailbox is not None and not mailbox.is_ascii and not params.smtputf8:
            raise error(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")  # RFC 6531 3.5
        limit = self.config.max_message_size
        if params.size is not None and limit and params.size > limit:
            raise SmtpError(codes.SIZE_EXCEEDED)  # RFC 1870 section 6
        if params.auth is not None and self.authenticated_user is None:
            params = replace(params, auth="<>")  # untrusted AUTH=, RFC 4954 section 5
        self._pending = _Decision.MAIL
        self._pending_params = params
        address = str(mailbox) if mailbox is not None else ""
        self._events.append(MailFromRequested(address, mailbox, params))

    def _cmd_rcpt(self, arg: str) -> None:
        if arg[:3].upper() != "TO:":
            raise error(501, "5.5.4", "Syntax: RCPT TO:<address>")
        try:
            mailbox, rest = parse_path(arg[3:].lstrip(" "), allow_postmaster=True)
        except AddressError as exc:
            raise error(501, "5.1.3", f"Bad recipient address syntax: {exc}") from None
        assert mailbox is not None
        if rest and not rest.startswith(" "):
            raise error(501, "5.5.4", "Syntax: RCPT TO:<address> [parameters]")
        assert self.mail_params is not None
        utf8 = self.mail_params.smtputf8
        params = parse_rcpt_params(rest, self.offered(), utf8=utf8)
        if not mailbox.is_ascii and not utf8:
            raise error(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")
        if self.recipient_count >= self.config.max_recipients:
            self._send(codes.TOO_MANY_RECIPIENTS)  # not a client error: no count
            return
        self._pending = _Decision.RCPT
        self._events.append(RcptToRequested(str(mailbox), mailbox, params))

    def _cmd_data(self, arg: str) -> None:
        if arg:
            raise error(501, "5.5.4", "Syntax: DATA")
        assert self.mail_params is not None
        if self.mail_params.body == "BINARYMIME":
            raise error(503, "5.5.1", "BODY=BINARYMIME requires BDAT")  # RFC 3030 3
        if self.recipient_count == 0:
            raise error(554, "5.5.1", "No valid recipients")  # RFC 5321 3.3
        self._send(Reply(354, None, "End data with <CR><LF>.<CR><LF>"))
        self.state = State.DATA
        self._start_message()
        self._decoder = DotDecoder(bare_newline=self.config.bare_newline)
        if self.config.max_data_line:
            self._meter = LineLengthMeter(self.config.max_data_line)
        self._events.append(MessageStarted("DATA"))

    def _cmd_bdat(self, arg: str) -> None:
        parts = arg.split()
        if (
            not 1 <= len(parts) <= 2
            or not parts[0].isdigit()
            or len(parts[0]) > 20
            or (len(parts) == 2 and parts[1].upper() != "LAST")
        ):
            raise error(501, "5.5.4", "Syntax: BDAT size [LAST]")
        size = int(parts[0])
        last = len(parts) == 2
        # Whatever the verdict, the chunk's octets follow and must be read
        # (RFC 3030 section 2), so errors are answered after the chunk.
        problem = self._check_sequence("BDAT")
        if problem is None and not (self.config.chunking and self.esmtp):
            problem = Reply(503, "5.5.1", "CHUNKING not offered")
        if problem is None and self.recipient_count == 0:
            problem = Reply(554, "5.5.1", "No valid recipients")
        if problem is None and self.state is State.TRANSACTION:
            self.state = State.CHUNKING
            self._start_message()
            self._events.append(MessageStarted("BDAT"))
        if problem is None:
            limit = self.config.max_message_size
            if limit and self._data_size + size > limit and self._doom is None:
                self._doom = codes.SIZE_EXCEEDED
        self._chunk_remaining = size
        self._chunk_size = size
        self._chunk_last = last
        self._chunk_error = problem
        self._chunk_return = self.state
        self.state = State.BDAT
        if size == 0:
            self._chunk_finished()

    def _cmd_rset(self, arg: str) -> None:
        self._end_transaction("rset")
        self._send(codes.OK)

    def _cmd_noop(self, arg: str) -> None:
        self._send(codes.OK)

    def _cmd_quit(self, arg: str) -> None:
        self._send(Reply(221, "2.0.0", f"{self.config.hostname} closing connection"))
        self._close("quit")

    def _cmd_vrfy(self, arg: str) -> None:
        if not arg:
            raise error(501, "5.5.4", "Syntax: VRFY address")
        # RFC 5321 sections 3.5.3 and 7.3: do not disclose, do not refuse.
        self._send(Reply(252, "2.5.0", "Cannot VRFY user, but will accept message"))

    def _cmd_expn(self, arg: str) -> None:
        raise error(502, "5.5.1", "EXPN not available")

    def _cmd_help(self, arg: str) -> None:
        verbs = " ".join(sorted(_ALLOWED))
        self._send(Reply(214, "2.0.0", f"Commands: {verbs}\nEnd of HELP"))

    def _cmd_starttls(self, arg: str) -> None:
        if arg:
            raise error(501, "5.5.4", "Syntax: STARTTLS")
        if self.tls:
            raise error(503, "5.5.1", "TLS already active")
        if not self.config.starttls:
            raise error(502, "5.5.1", "STARTTLS not available")
        self._send(Reply(220, "2.0.0", "Ready to start TLS"))
        # Anything the client sent after STARTTLS in the same flight is plaintext
        # injection (RFC 3207 section 4.2, CVE-2011-0411): drop it.
        self._buf.clear()
        self.state = State.STARTTLS
        self._events.append(StartTlsRequested())

    def _cmd_auth(self, arg: str) -> None:
        parts = arg.split(" ")
        if not parts[0] or len(parts) > 2:
            raise error(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]")
        if self.authenticated_user is not None:
            raise error(503, "5.5.1", "Already authenticated")  # RFC 4954 section 4
        if not self.config.auth_mechanisms:
            raise error(502, "5.5.1", "AUTH not available")
        if not self.auth_available:
            raise error(538, "5.7.11", "Encryption required for requested authentication")
        mechanism = parts[0].upper()
        if mechanism not in self.config.auth_mechanisms:
            raise error(504, "5.5.4", "Unrecognized authentication type")
        initial: bytes | None = None
        if len(parts) == 2:
            initial = decode_base64(parts[1].encode("ascii", "replace"))
            if initial is None:
                raise error(501, "5.5.2", "Invalid base64 data")
        self.state = State.AUTH
        self._pending = _Decision.AUTH
        self._events.append(AuthRequested(mechanism, initial))

    _HANDLERS = {
        "EHLO": _cmd_ehlo,
        "HELO": _cmd_helo,
        "MAIL": _cmd_mail,
        "RCPT": _cmd_rcpt,
        "DATA": _cmd_data,
        "BDAT": _cmd_bdat,
        "RSET": _cmd_rset,
        "NOOP": _cmd_noop,
        "QUIT": _cmd_quit,
        "VRFY": _cmd_vrfy,
        "EXPN": _cmd_expn,
        "HELP": _cmd_help,
        "STARTTLS": _cmd_starttls,
        "AUTH": _cmd_auth,
    }

    # ---- AUTH exchange --------------------------------------------------------------

    def _auth_line(self, line: bytes | object) -> None:
        reading = self._auth_reading
        self._auth_reading = None
        if line is _TOO_LONG:
            self._abort_auth(Reply(500, "5.5.6", "Authentication exchange line is too long"))
            return
        assert isinstance(line, bytes)
        text = line.strip()
        if text == b"*":
            self._abort_auth(codes.AUTH_CANCELLED)  # RFC 4954 section 4
            return
        if reading == "final":
            if text not in (b"", b"="):
                self._abort_auth(Reply(501, "5.5.2", "Expected an empty response"))
                return
            assert self._auth_user is not None
            self._finish_auth(self._auth_user)
            return
        data = decode_base64(text) if text else b""
        if data is None:
            self._abort_auth(Reply(501, "5.5.2", "Invalid base64 data"))
            return
        self._events.append(AuthResponse(data))

    # ---- message content --------------------------------------------------------

    def _start_message(self) -> None:
        self._data_size = 0
        self._doom = None

    def _content(self, data: bytes) -> None:
        """Account for content; pass it on unless the message is already refused."""
        self._data_size += len(data)
        if self._doom is not None:
            return
        limit = self.config.max_message_size
        if limit and self._data_size > limit:
            self._doom = codes.SIZE_EXCEEDED
            return
        decoder = self._decoder
        if decoder is not None and decoder.bare_newline_seen and decoder.bare_newline == "reject":
            # RFC 5321 section 2.3.8; see data.py for why we refuse.
            self._doom = _BARE_NEWLINE
            return
        if self._meter is not None and not self._meter.feed(data):
            self._doom = Reply(500, "5.5.2", "Line too long in message content")
            return
        self._events.append(DataChunk(data))

    def _step_data(self) -> bool:
        assert self._decoder is not None
        if not self._buf:
            return False
        chunk = bytes(self._buf[:MAX_EVENT_BYTES])
        content, consumed, done = self._decoder.decode(chunk)
        del self._buf[:consumed]
        if content:
            self._content(content)
        if done:
            self._message_complete()
            return True
        return consumed > 0

    def _step_bdat(self) -> bool:
        take = min(self._chunk_remaining, len(self._buf), MAX_EVENT_BYTES)
        if take == 0:
            return False
        data = bytes(self._buf[:take])
        del self._buf[:take]
        self._chunk_remaining -= take
        if self._chunk_error is None:
            self._content(data)
        if self._chunk_remaining == 0:
            self._chunk_finished()
        return True

    def _chunk_finished(self) -> None:
        self.state = self._chunk_return
        if self._chunk_error is not None:
            self._error(self._chunk_error)
        elif self._doom is not None or self._chunk_last:
            self._message_complete()
        else:
            self._send(Reply(250, "2.0.0", f"{self._chunk_size} octets received"))

    def _message_complete(self) -> None:
        # Which refusal wins must not depend on how the content was cut into reads:
        # the problems seen anywhere in the message decide, in a fixed order.
        limit = self.config.max_message_size
        decoder = self._decoder
        if limit and self._data_size > limit:
            self._doom = codes.SIZE_EXCEEDED
        elif decoder is not None and decoder.bare_newline_seen and decoder.bare_newline == "reject":
            self._doom = _BARE_NEWLINE
        if self._doom is not None:
            doom = self._doom
            self._end_transaction("message refused")
            self._send(doom)
            return
        self._pending = _Decision.MESSAGE
        self._events.append(DataComplete(self._data_size))
