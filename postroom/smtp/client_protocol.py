"""The SMTP client engine, sans-IO (RFC 5321 and the extensions listed below).

Theory of operation: the shell (``client.py``) feeds received bytes with
``receive_data`` (``b""`` when the peer closed), pulls events with ``next_event`` and
writes what ``data_to_send`` returns. The engine opens the session by itself (EHLO,
STARTTLS, AUTH) and then waits for the shell: ``Ready`` means "call ``send_message``
or ``quit``". A message is one transaction; its outcome is a ``TransactionDone`` with
one reply per envelope recipient (RFC 5321 section 3.3: RCPT replies for refused
recipients, the end-of-data reply for the others). Body bytes are pulled: after
``NeedBody`` the shell calls ``send_body(chunk, last=...)`` until ``last``.

States (``State``); ``_expect`` pairs every sent command with the reply it waits for,
oldest first, so pipelined replies are matched in order (RFC 2920 section 3.1):

    GREETING --220--> EHLO --250--> [STARTTLS --220--> TLS --tls_started--> EHLO]
             [AUTH] --> READY --send_message--> TRANSACTION --354/RCPTs--> BODY
             BODY --last chunk--> DATA_END --reply--> READY;  READY --quit--> QUIT
    any state --421 / close / protocol error--> CLOSED (SessionFailed)

Decisions made here, each from its RFC:

* EHLO first; HELO when EHLO gets a 5xx (RFC 5321 section 3.2).
* STARTTLS (RFC 3207) per ``TlsMode``: NONE never, OPPORTUNISTIC when offered (a
  refusal means plain text), REQUIRED fails the session (4.7.4) when not offered or
  refused. Bytes the server sent after its 220 and before the handshake are a protocol
  error (command injection, CVE-2011-0411). After TLS, EHLO again (section 4.2).
* AUTH PLAIN, else LOGIN (RFC 4954, RFC 4616) when credentials are given; never over
  plain text unless ``allow_plaintext_auth``. A refused AUTH fails the session with a
  temporary reply: a wrong password is our configuration, not the message's fault.
* SIZE (RFC 1870): a message over the peer's limit is refused 552 5.3.4 without a
  command; ``SIZE=`` is declared otherwise.
* 8BITMIME (RFC 6152): 8-bit content to a peer without it: 554 5.6.3 (no conversion).
* SMTPUTF8 (RFC 6531 section 3.4): a message that needs it, to a peer without it:
  553 5.6.7 (non-ASCII address) or 554 5.6.9 (UTF-8 header fields); no downgrade.
* DSN (RFC 3461): RET/ENVID/NOTIFY/ORCPT passed on only when the peer offers DSN;
  ``TransactionResult.dsn`` tells the queue whether "relayed" DSNs are owed.
* PIPELINING: MAIL, every RCPT and DATA go in one write (RSET first when the previous
  transaction did not end cleanly). When every RCPT failed but DATA got 354 anyway, a
  lone "." ends the empty message (RFC 2920 section 3.1).
* CHUNKING (RFC 3030): BDAT instead of DATA when offered, sent after the RCPT replies
  (no body for a transaction nobody accepted); chunks are pipelined when PIPELINING is
  offered. DATA content is dot-stuffed by ``data.DotStuffer``, which also turns bare
  CR/LF into CR LF (no SMTP smuggling passes through us).
* 421 at any point, a closed connection or a garbled reply end the session: the
  recipients not yet decided get a temporary reply (4.4.2 / 4.5.0), the ones already
  refused keep their reply.
* ``NeedData.timeout`` is the RFC 5321 section 4.5.3.2 timeout for the reply awaited;
  the shell enforces it and calls ``connection_lost`` when it expires.
"""

from __future__ import annotations

import base64
import enum
from collections import deque
from dataclasses import dataclass, field

from postroom.smtp.codes import Reply
from postroom.smtp.data import DotStuffer
from postroom.smtp.params import MailParams, RcptParams, format_mail_params, format_rcpt_params

MAX_REPLY_LINE = 8192  # RFC 5321 4.5.3.1.5 says 512; real servers send longer text
MAX_REPLY_LINES = 200


class TlsMode(enum.Enum):
    NONE = "none"  # never STARTTLS
    OPPORTUNISTIC = "opportunistic"  # when offered; plain text otherwise
    REQUIRED = "required"  # fail (temporarily) without TLS


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds to wait for each reply; RFC 5321 section 4.5.3.2 minimums."""

    greeting: float = 300.0  # 4.5.3.2.1 initial 220
    mail: float = 300.0  # 4.5.3.2.2
    rcpt: float = 300.0  # 4.5.3.2.3
    data_init: float = 120.0  # 4.5.3.2.4 DATA -> 354
    data_block: float = 180.0  # 4.5.3.2.5 each write of content (the shell's)
    data_end: float = 600.0  # 4.5.3.2.6 "." -> final reply
    command: float = 300.0  # EHLO, STARTTLS, AUTH, RSET, QUIT
    connect: float = 30.0  # TCP connect and TLS handshake (the shell's)


DEFAULT_TIMEOUTS = Timeouts()


@dataclass(frozen=True, slots=True)
class OutboundRecipient:
    address: str
    notify: frozenset[str] | None = None  # RFC 3461 NOTIFY
    orcpt: tuple[str, str] | None = None  # (addr-type, address), RFC 3461 ORCPT


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message to send. ``mail_from`` ``""`` is the null reverse-path.
    ``eight_bit``: the content has octets >= 128; ``smtputf8``: it needs SMTPUTF8
    (non-ASCII addresses or UTF-8 header fields)."""

    mail_from: str
    recipients: tuple[OutboundRecipient, ...]
    size: int
    eight_bit: bool = False
    smtputf8: bool = False
    ret: str | None = None
    envid: str | None = None


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class Extensions:
    """The EHLO keywords (upper-cased) and their parameters; empty after HELO."""

    keywords: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, reply: Reply) -> Extensions:
        """RFC 5321 4.1.1.1: first line the greeting, then ``keyword [params]``."""
        out: dict[str, str] = {}
        for line in reply.lines()[1:]:
            keyword, _, params = line.strip().partition(" ")
            if keyword:
                out[keyword.upper()] = params.strip()
        return cls(out)

    def __contains__(self, keyword: str) -> bool:
        return keyword.upper() in self.keywords

    @property
    def size_limit(self) -> int:
        """The SIZE limit, 0 when none was announced (RFC 1870 section 4)."""
        value = self.keywords.get("SIZE", "")
        return int(value) if value.isascii() and value.isdigit() else 0

    @property
    def auth_mechanisms(self) -> frozenset[str]:
        return frozenset(self.keywords.get("AUTH", "").upper().split())


@dataclass(frozen=True, slots=True)
class TransactionResult:
    """``replies[i]`` answers ``envelope.recipients[i]``. ``dsn``: the peer offered DSN
    (it now owes the notifications); ``data_sent``: the content went out and the
    final reply came back."""

    replies: tuple[Reply, ...]
    dsn: bool
    data_sent: bool


# ------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class NeedData:
    """Waiting for the peer; ``timeout`` seconds before the shell gives up."""

    timeout: float


@dataclass(frozen=True, slots=True)
class StartTls:
    """Upgrade the connection now (nothing else is to be read first), then call
    ``tls_started``; on failure ``connection_lost``."""


@dataclass(frozen=True, slots=True)
class Ready:
    """The session is open: call ``send_message`` or ``quit``."""

    extensions: Extensions


@dataclass(frozen=True, slots=True)
class NeedBody:
    """Call ``send_body`` with the next chunk of the content."""


@dataclass(frozen=True, slots=True)
class TransactionDone:
    result: TransactionResult


@dataclass(frozen=True, slots=True)
class SessionFailed:
    """The session is over (the shell closes after flushing ``data_to_send``)."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class Closed:
    """QUIT was answered, or the peer closed after it."""


Event = NeedData | StartTls | Ready | NeedBody | TransactionDone | SessionFailed | Closed


class State(enum.Enum):
    GREETING = "greeting"
    EHLO = "ehlo"
    STARTTLS = "starttls"
    TLS = "tls"  # waiting for the shell's handshake
    AUTH = "auth"
    READY = "ready"
    TRANSACTION = "transaction"  # MAIL/RCPT(/DATA) replies awaited
    BODY = "body"  # the shell is sending content
    DATA_END = "data_end"  # content sent, replies awaited
    QUIT = "quit"
    CLOSED = "closed"


class _Cmd(enum.Enum):
    GREETING = "greeting"
    EHLO = "ehlo"
    HELO = "helo"
    STARTTLS = "starttls"
    AUTH = "auth"
    RSET = "rset"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"
    DATA_END = "data_end"
    BDAT = "bdat"
    BDAT_LAST = "bdat_last"
    QUIT = "quit"


class ClientProtocolError(Exception):
    """A method was called in a state that does not allow it (a bug in the shell)."""


def _local(code: int, enhanced: str, text: str) -> Reply:
    return Reply(code, enhanced, text)


CONNECTION_LOST = _local(451, "4.4.2", "Connection lost to the remote server")


def _unexpected(reply: Reply) -> Reply:
    return _local(451, "4.5.0", f"Protocol error from the remote server: unexpected reply "
                                f"{reply.code}")


class _Transaction:
    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope
        n = len(envelope.recipients)
        self.rcpt_replies: list[Reply | None] = [None] * n
        self.final: list[Reply | None] = [None] * n
        self.mail_reply: Reply | None = None
        self.data_reply: Reply | None = None  # DATA's reply when it was not 354
        self.failed_chunk: Reply | None = None  # a non-LAST BDAT refused
        self.data_sent = False
        self.body_done = False
        self.next_rcpt = 0  # without PIPELINING: the next RCPT to send

    def accepted(self) -> list[int]:
        return [i for i, r in enumerate(self.rcpt_replies) if r is not None and r.positive]

    def result(self, dsn: bool, fallback: Reply | None = None) -> TransactionResult:
        out: list[Reply] = []
        for i in range(len(self.rcpt_replies)):
            r = self.final[i]
            if r is None:
                rr = self.rcpt_replies[i]
                if self.mail_reply is not None and not self.mail_reply.positive:
                    r = self.mail_reply
                elif rr is not None and not rr.positive:
                    r = rr
                else:
                    r = fallback or CONNECTION_LOST
            out.append(r)
        return TransactionResult(tuple(out), dsn, self.data_sent)


class SmtpClientProtocol:
    """One client session. ``helo_name`` is our host name for EHLO/HELO."""

    def __init__(
        self,
        helo_name: str,
        *,
        tls_mode: TlsMode = TlsMode.OPPORTUNISTIC,
        tls_active: bool = False,
        credentials: Credentials | None = None,
        allow_plaintext_auth: bool = False,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
    ) -> None:
        self.helo_name = helo_name
        self.tls_mode = tls_mode
        self.tls_active = tls_active
        self.credentials = credentials
        self.allow_plaintext_auth = allow_plaintext_auth
        self.timeouts = timeouts
        self.state = State.GREETING
        self.extensions = Extensions()
        self.greeting: Reply | None = None
        self._in = bytearray()
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._expect: deque[_Cmd] = deque([_Cmd.GREETING])
        self._reply_lines: list[bytes] = []
        self._txn: _Transaction | None = None
        self._needs_rset = False
        self._stuffer: DotStuffer | None = None
        self._auth_step = 0
        self._peer_closed = False
        self._final: Event = SessionFailed(CONNECTION_LOST)
        try:
            self._helo = helo_name.encode("idna")
        except UnicodeError:
            self._helo = helo_name.encode("ascii", "replace")

    # ------------------------------------------------------------------ shell API

    def receive_data(self, data: bytes) -> None:
        """Bytes from the peer; ``b""`` means it closed the connection."""
        if not data:
            self._peer_closed = True
        else:
            self._in += data

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Event:
        """The next thing the shell must do. Never blocks; ``NeedData`` asks for bytes."""
        while not self._events:
            if self.state is State.CLOSED:
                return self._final
            reply = self._take_reply() if self._expect or self._in else None
            if reply is not None:
                self._on_reply(reply)
                continue
            if self._closed():  # _take_reply found a protocol error
                continue
            if self._peer_closed:
                self._lost(CONNECTION_LOST)
                continue
            if self.state is State.BODY:
                return NeedBody()  # pipelined BDAT replies may still be on their way
            if self._expect:
                return NeedData(self._timeout_for(self._expect[0]))
            if self.state is State.READY:
                return Ready(self.extensions)
            if self.state is State.TLS:
                return StartTls()
            return NeedData(self.timeouts.command)
        return self._events.popleft()

    def tls_started(self) -> None:
        """The shell finished the TLS handshake: greet again (RFC 3207 section 4.2)."""
        self._require(State.TLS)
        self.tls_active = True
        self.extensions = Extensions()
        self._send_ehlo()

    def connection_lost(self, reply: Reply = CONNECTION_LOST) -> None:
        """The connection failed or a timeout expired: end the session with ``reply``."""
        if self.state is not State.CLOSED:
            self._lost(reply)

    def send_message(self, envelope: Envelope) -> None:
        """Start a transaction; answered by ``TransactionDone`` (maybe at once)."""
        self._require(State.READY)
        if not envelope.recipients:
            raise ClientProtocolError("a message needs at least one recipient")
        txn = _Transaction(envelope)
        refusal = self._precheck(envelope)
        if refusal is not None:
            txn.final = [refusal] * len(envelope.recipients)
            self._events.append(TransactionDone(txn.result(self._dsn)))
            return
        self._txn = txn
        self.state = State.TRANSACTION
        pipelining = "PIPELINING" in self.extensions
        if self._needs_rset:
            self._needs_rset = False
            self._command(b"RSET", _Cmd.RSET)
            if not pipelining:
                return  # MAIL follows the RSET reply
        self._send_mail(pipelining)

    def send_body(self, chunk: bytes, *, last: bool) -> None:
        """The next piece of content; ``last`` ends it (the chunk may be empty)."""
        self._require(State.BODY)
        txn = self._txn
        assert txn is not None
        if "CHUNKING" in self.extensions:
            if txn.failed_chunk is None:
                if last:
                    self._out += f"BDAT {len(chunk)} LAST\r\n".encode() + chunk
                    self._expect.append(_Cmd.BDAT_LAST)
                elif chunk:
                    self._out += f"BDAT {len(chunk)}\r\n".encode() + chunk
                    self._expect.append(_Cmd.BDAT)
            if last:
                txn.body_done = True
                self.state = State.DATA_END
                if txn.failed_chunk is not None and not self._expect:
                    self._finish_transaction()
            elif "PIPELINING" not in self.extensions and self._expect:
                self.state = State.DATA_END  # wait for this chunk's reply first
            return
        assert self._stuffer is not None
        self._out += self._stuffer.encode(chunk)
        if last:
            self._out += self._stuffer.finish()
            self._stuffer = None
            txn.body_done = True
            self._expect.append(_Cmd.DATA_END)
            self.state = State.DATA_END

    def quit(self) -> None:
        """End the session politely (QUIT, RFC 5321 section 4.1.1.10)."""
        self._require(State.READY)
        self._command(b"QUIT", _Cmd.QUIT)
        self.state = State.QUIT

    # ------------------------------------------------------------------ plumbing

    def _closed(self) -> bool:
        return self.state is State.CLOSED

    def _require(self, *states: State) -> None:
        if self.state not in states:
            names = ", ".join(s.value for s in states)
            raise ClientProtocolError(f"not allowed in state {self.state.value} (needs {names})")

    def _command(self, line: bytes, kind: _Cmd) -> None:
        self._out += line + b"\r\n"
        self._expect.append(kind)

    @property
    def _dsn(self) -> bool:
        return "DSN" in self.extensions

    def _timeout_for(self, kind: _Cmd) -> float:
        t = self.timeouts
        return {
            _Cmd.GREETING: t.greeting,
            _Cmd.MAIL: t.mail,
            _Cmd.RCPT: t.rcpt,
            _Cmd.DATA: t.data_init,
            _Cmd.DATA_END: t.data_end,
            _Cmd.BDAT: t.data_block,
            _Cmd.BDAT_LAST: t.data_end,
        }.get(kind, t.command)

    def _take_reply(self) -> Reply | None:
        """One complete reply from the input buffer, or None (need more bytes)."""
        while True:
            nl = self._in.find(b"\n")
            if nl < 0:
                if len(self._in) > MAX_REPLY_LINE:
                    self._protocol_error("reply line too long")
                return None
            line = bytes(self._in[:nl]).rstrip(b"\r")
            del self._in[: nl + 1]
            if len(line) > MAX_REPLY_LINE or len(self._reply_lines) >= MAX_REPLY_LINES:
                self._protocol_error("reply too long")
                return None
            self._reply_lines.append(line)
            if line[3:4] == b"-":
                continue
            lines, self._reply_lines = self._reply_lines, []
            try:
                return Reply.parse(lines)
            except ValueError as e:
                self._protocol_error(str(e))
                return None

    def _protocol_error(self, why: str) -> None:
        self._in.clear()
        self._lost(_local(451, "4.5.0", f"Protocol error from the remote server: {why}"))

    def _lost(self, reply: Reply) -> None:
        """The session ends now; undecided recipients get ``reply``. A positive reply
        that ends a session (a 2xx greeting, a 221 to EHLO) is the peer's protocol
        error: the recipients must not count as delivered, so it becomes a 451."""
        if self.state is State.QUIT:
            self._on_quit(reply)
            return
        if reply.positive:
            reply = _unexpected(reply)
        txn = self._txn
        self._txn = None
        self._expect.clear()
        self.state = State.CLOSED
        if txn is not None:
            self._events.append(TransactionDone(txn.result(self._dsn, reply)))
        self._final = SessionFailed(reply)
        self._events.append(self._final)

    def _fail_session(self, reply: Reply) -> None:
        """End the session ourselves, politely: QUIT, then the shell closes."""
        self._out += b"QUIT\r\n"
        self._lost(reply)

    # ------------------------------------------------------------------ replies

    def _on_reply(self, reply: Reply) -> None:
        if not self._expect:
            if reply.code == 421:
                self._lost(reply)
            else:
                self._protocol_error(f"unexpected reply {reply.code}")
            return
        kind = self._expect.popleft()
        if reply.code == 421 and kind is not _Cmd.QUIT:
            # RFC 5321 3.8: the server is closing; nothing more will be answered.
            self._lost(reply)
            return
        handler = {
            _Cmd.GREETING: self._on_greeting,
            _Cmd.EHLO: self._on_ehlo,
            _Cmd.HELO: self._on_helo,
            _Cmd.STARTTLS: self._on_starttls,
            _Cmd.AUTH: self._on_auth,
            _Cmd.RSET: self._on_rset,
            _Cmd.MAIL: self._on_mail,
            _Cmd.RCPT: self._on_rcpt,
            _Cmd.DATA: self._on_data,
            _Cmd.DATA_END: self._on_data_end,
            _Cmd.BDAT: self._on_bdat,
            _Cmd.BDAT_LAST: self._on_data_end,
            _Cmd.QUIT: self._on_quit,
        }[kind]
        handler(reply)

    def _send_ehlo(self) -> None:
        self.state = State.EHLO
        self._command(b"EHLO " + self._helo, _Cmd.EHLO)

    def _on_greeting(self, reply: Reply) -> None:
        self.greeting = reply
        if reply.code != 220:  # RFC 5321 3.1: 554 means "no service here"
            self._fail_session(reply)
            return
        self._send_ehlo()

    def _on_ehlo(self, reply: Reply) -> None:
        if reply.code == 250:
            self.extensions = Extensions.parse(reply)
            self._after_greeting()
        elif reply.permanent and not self.tls_active:
            self._command(b"HELO " + self._helo, _Cmd.HELO)
        else:
            self._fail_session(reply)

    def _on_helo(self, reply: Reply) -> None:
        if reply.code != 250:
            self._fail_session(reply)
            return
        self.extensions = Extensions()
        self._after_greeting()

    def _after_greeting(self) -> None:
        if not self.tls_active and self.tls_mode is not TlsMode.NONE:
            if "STARTTLS" in self.extensions:
                self.state = State.STARTTLS
                self._command(b"STARTTLS", _Cmd.STARTTLS)
                return
            if self.tls_mode is TlsMode.REQUIRED:
                self._fail_session(
                    _local(
                        451,
                        "4.7.4",
                        "TLS is required but the remote server does not offer STARTTLS",
                    )
                )
                return
        self._start_auth()

    def _on_starttls(self, reply: Reply) -> None:
        if reply.code == 220:
            if self._in:  # CVE-2011-0411: nothing may follow before the handshake
                self._protocol_error("data after the STARTTLS reply")
                return
            self.state = State.TLS
            return
        if self.tls_mode is TlsMode.REQUIRED:
            self._fail_session(
                _local(451, "4.7.4", f"TLS is required but STARTTLS was refused: {reply}")
            )
            return
        self._start_auth()

    def _start_auth(self) -> None:
        creds = self.credentials
        if creds is None:
            self._ready()
            return
        if not self.tls_active and not self.allow_plaintext_auth:
            self._fail_session(_local(451, "4.7.0", "Refusing to send credentials without TLS"))
            return
        mechs = self.extensions.auth_mechanisms
        self.state = State.AUTH
        self._auth_step = 0
        if "PLAIN" in mechs:  # RFC 4616: authzid NUL authcid NUL passwd
            token = f"\0{creds.username}\0{creds.password}".encode()
            self._command(b"AUTH PLAIN " + base64.b64encode(token), _Cmd.AUTH)
            self._auth_step = 2
        elif "LOGIN" in mechs:
            self._command(b"AUTH LOGIN", _Cmd.AUTH)
        else:
            self._fail_session(
                _local(
                    451, "4.7.4", "The remote server offers no authentication mechanism we support"
                )
            )

    def _on_auth(self, reply: Reply) -> None:
        creds = self.credentials
        assert creds is not None
        if reply.code == 235:
            self._ready()
            return
        if reply.code == 334 and self._auth_step < 2:
            value = creds.username if self._auth_step == 0 else creds.password
            self._auth_step += 1
            self._command(base64.b64encode(value.encode()), _Cmd.AUTH)
            return
        if reply.code == 334:  # a challenge we have no answer for: cancel (RFC 4954 4)
            self._command(b"*", _Cmd.AUTH)
            self._auth_step = 3
            return
        enhanced = reply.enhanced if reply.transient else "4.7.8"
        code = reply.code if reply.transient else 451
        self._fail_session(
            _local(
                code, enhanced or "4.7.0", f"Authentication to the remote server failed: {reply}"
            )
        )

    def _ready(self) -> None:
        self.state = State.READY
        self._events.append(Ready(self.extensions))

    def _on_quit(self, reply: Reply) -> None:
        self._expect.clear()
        self.state = State.CLOSED
        self._final = Closed()
        self._events.append(self._final)

    # ------------------------------------------------------------------ transactions

    def _precheck(self, env: Envelope) -> Reply | None:
        ext = self.extensions
        if ext.size_limit and env.size > ext.size_limit:
            return _local(
                552,
                "5.3.4",
                f"Message size {env.size} exceeds the remote server's limit of {ext.size_limit}",
            )
        if env.smtputf8 and "SMTPUTF8" not in ext:
            addresses = [env.mail_from] + [r.address for r in env.recipients]
            if not all(a.isascii() for a in addresses):
                return _local(
                    553,
                    "5.6.7",
                    "The remote server does not support SMTPUTF8 and the addresses are not ASCII",
                )
            return _local(
                554,
                "5.6.9",
                "The remote server does not support SMTPUTF8"
                " and the message has UTF-8 header fields",
            )
        if env.eight_bit and "8BITMIME" not in ext and "SMTPUTF8" not in ext:
            return _local(
                554,
                "5.6.3",
                "The remote server does not accept 8-bit content and conversion is not supported",
            )
        return None

    def _send_mail(self, pipelining: bool) -> None:
        txn = self._txn
        assert txn is not None
        env = txn.envelope
        ext = self.extensions
        dsn = self._dsn
        params = MailParams(
            size=env.size if "SIZE" in ext else None,
            body="8BITMIME" if env.eight_bit and "8BITMIME" in ext else None,
            smtputf8=env.smtputf8 and "SMTPUTF8" in ext,
            ret=env.ret if dsn and env.ret else None,
            envid=env.envid if dsn and env.envid else None,
        )
        self._command(_line("MAIL FROM:", env.mail_from, format_mail_params(params)), _Cmd.MAIL)
        if pipelining:
            for i in range(len(env.recipients)):
                self._send_rcpt(i)
            txn.next_rcpt = len(env.recipients)
            if "CHUNKING" not in ext:
                self._command(b"DATA", _Cmd.DATA)

    def _send_rcpt(self, i: int) -> None:
        txn = self._txn
        assert txn is not None
        r = txn.envelope.recipients[i]
        params = RcptParams(notify=r.notify, orcpt=r.orcpt) if self._dsn else RcptParams()
        self._command(_line("RCPT TO:", r.address, format_rcpt_params(params)), _Cmd.RCPT)

    def _on_rset(self, reply: Reply) -> None:
        if self.state is State.TRANSACTION and "PIPELINING" not in self.extensions:
            self._send_mail(pipelining=False)

    def _on_mail(self, reply: Reply) -> None:
        txn = self._txn
        assert txn is not None
        txn.mail_reply = reply
        if not reply.positive:
            if "PIPELINING" not in self.extensions:
                self._finish_transaction()
            return  # pipelined: the RCPT/DATA replies (503s) are still to come
        if "PIPELINING" not in self.extensions:
            self._send_rcpt(0)
            txn.next_rcpt = 1

    def _on_rcpt(self, reply: Reply) -> None:
        txn = self._txn
        assert txn is not None
        index = next(i for i, r in enumerate(txn.rcpt_replies) if r is None)
        txn.rcpt_replies[index] = reply
        if "PIPELINING" in self.extensions:
            if index == len(txn.rcpt_replies) - 1 and "CHUNKING" in self.extensions:
                self._after_rcpts()
            return
        if txn.next_rcpt < len(txn.rcpt_replies):
            self._send_rcpt(txn.next_rcpt)
            txn.next_rcpt += 1
            return
        if "CHUNKING" in self.extensions:
            self._after_rcpts()
        elif txn.accepted():
            self._command(b"DATA", _Cmd.DATA)
        else:
            self._needs_rset = True
            self._finish_transaction()

    def _after_rcpts(self) -> None:
        """CHUNKING: every RCPT answered; content only if someone was accepted."""
        txn = self._txn
        assert txn is not None
        mail_ok = txn.mail_reply is not None and txn.mail_reply.positive
        if mail_ok and txn.accepted():
            self.state = State.BODY
            return
        self._needs_rset = mail_ok
        self._finish_transaction()

    def _on_data(self, reply: Reply) -> None:
        txn = self._txn
        assert txn is not None
        mail_ok = txn.mail_reply is not None and txn.mail_reply.positive
        if reply.code == 354:
            if mail_ok and txn.accepted():
                self._stuffer = DotStuffer()
                self.state = State.BODY
            else:  # RFC 2920 3.1: nobody to deliver to, end the (empty) content
                self._out += b".\r\n"
                self._expect.append(_Cmd.DATA_END)
                self.state = State.DATA_END
            return
        if reply.positive:  # only 354 may answer DATA positively (RFC 5321 4.3.2)
            self._protocol_error(f"unexpected reply {reply.code} to DATA")
            return
        txn.data_reply = reply
        if mail_ok and txn.accepted():
            for i in txn.accepted():
                txn.final[i] = reply
        self._needs_rset = mail_ok
        self._finish_transaction()

    def _on_bdat(self, reply: Reply) -> None:
        txn = self._txn
        assert txn is not None
        if not reply.positive and txn.failed_chunk is None:
            txn.failed_chunk = reply
            for i in txn.accepted():
                txn.final[i] = reply
            self._needs_rset = True
        if self._expect:
            return
        if txn.body_done or txn.failed_chunk is not None:
            self._finish_transaction()
        elif self.state is State.DATA_END:
            self.state = State.BODY  # not pipelining: next chunk

    def _on_data_end(self, reply: Reply) -> None:
        txn = self._txn
        assert txn is not None
        if 300 <= reply.code < 400:  # the content's final reply is 2xx, 4xx or 5xx
            self._protocol_error(f"unexpected reply {reply.code} after the content")
            return
        if txn.accepted() and txn.failed_chunk is None:
            txn.data_sent = True
            for i in txn.accepted():
                txn.final[i] = reply
        if not self._expect:
            self._finish_transaction()

    def _finish_transaction(self) -> None:
        txn = self._txn
        assert txn is not None
        self._txn = None
        self.state = State.READY
        self._events.append(TransactionDone(txn.result(self._dsn)))


def _line(verb: str, address: str, params: str) -> bytes:
    text = f"{verb}<{address}>"
    if params:
        text += " " + params
    return text.encode("utf-8")
