"""The asyncio shell around ``SmtpServerProtocol``: sockets, timeouts, TLS, the backend.

Theory of operation: ``handle_smtp`` is the listener's per-connection handler. It
builds the engine's ``ServerConfig`` from the ``SmtpContext`` and the connection, then
runs one loop: take the next engine event; when the engine needs bytes, flush the
queued replies (``drain``: backpressure), read at most ``read_size`` bytes under the
command or data timeout and feed them; answer decisions by awaiting the backend. So
the engine buffers at most one read beyond a command line, and replies leave in
command order (the engine guarantees it, RFC 2920).

Message content streams into a ``SpooledMessage`` that starts with our Received header;
after ``DataComplete`` the backend's ``deliver`` gets it and its reply goes back to
the client. The spool is deleted when the transaction ends either way.

AUTH runs ``postroom.auth.authenticator.run_sasl`` with an ``ask`` callback that
sends a ``334`` challenge through the engine and waits for the next engine event
(reading the socket as needed). Failed attempts are counted and slowed down by the
shared ``AuthThrottle``; a blocked network gets the same ``535`` a wrong password
gets, after the delay, without running a mechanism.

Listener rules (RFC 6409 submission, RFC 3207, RFC 4954): submission listeners
require AUTH before MAIL (``530 5.7.0``) and offer AUTH only under TLS unless
``plaintext_auth_allowed(ip)``; the MX listener (``smtp``) offers no AUTH unless
``mx_auth``. STARTTLS is offered when ``ssl_context`` is set and TLS is not yet on.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from postroom.auth.authenticator import Authenticator, run_sasl
from postroom.auth.sasl import MECHANISMS, new_mechanism
from postroom.auth.steps import Success
from postroom.auth.throttle import AuthThrottle
from postroom.net.listener import ConnectionInfo, discard_buffered
from postroom.smtp import codes
from postroom.smtp.backend import Envelope, Recipient, SessionInfo, SmtpBackend
from postroom.smtp.codes import Reply
from postroom.smtp.data import BareNewlinePolicy
from postroom.smtp.received import build_received, new_queue_id, with_keyword
from postroom.smtp.server_events import (
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
from postroom.smtp.server_protocol import ServerConfig, SmtpServerProtocol
from postroom.smtp.spool import DEFAULT_MEMORY_LIMIT, SpooledMessage

log = logging.getLogger("postroom.smtp")

SUBMISSION_LISTENERS = frozenset({"submission", "submissions"})
T = TypeVar("T")


def _never(ip: str) -> bool:
    return False


@dataclass(frozen=True)
class SmtpLimits:
    """Sizes, counts and timeouts (seconds). ``message_size`` 0: unlimited;
    ``data_line`` None: unlimited. Defaults follow RFC 5321 section 4.5.3."""

    message_size: int = 52_428_800
    max_recipients: int = 1000
    max_transactions: int | None = None
    command_line: int = 4096
    data_line: int | None = 65536
    max_errors: int = 20
    command_timeout: float = 300.0  # RFC 5321 4.5.3.2.7
    data_timeout: float = 600.0  # between reads of message content
    tls_handshake_timeout: float = 60.0
    memory_spool: int = DEFAULT_MEMORY_LIMIT
    read_size: int = 64 * 1024


@dataclass
class SmtpContext:
    """Everything an SMTP listener's sessions share; built once by the application.

    ``listener``: ``"smtp"`` (MX), ``"submission"`` or ``"submissions"``.
    ``ssl_context``: for STARTTLS (implicit TLS is the listener's job).
    ``plaintext_auth_allowed(ip)``: may this client AUTH without TLS.
    ``authenticator``: None disables AUTH. ``clock``: wall-clock seconds (Received
    date, queue ids).
    """

    hostname: str
    listener: str
    backend: SmtpBackend
    authenticator: Authenticator | None = None
    throttle: AuthThrottle | None = None
    ssl_context: ssl.SSLContext | None = None
    plaintext_auth_allowed: Callable[[str], bool] = _never
    limits: SmtpLimits = field(default_factory=SmtpLimits)
    spool_dir: str | None = None
    clock: Callable[[], float] = time.time
    auth_mechanisms: tuple[str, ...] = MECHANISMS
    mx_auth: bool = False
    bare_newline: BareNewlinePolicy = "reject"
    requiretls: bool = True
    fake_salt_key: bytes | None = None


def engine_config(ctx: SmtpContext, info: ConnectionInfo) -> ServerConfig:
    """The engine settings for one connection of ``ctx``'s listener."""
    submission = ctx.listener in SUBMISSION_LISTENERS
    offer_auth = ctx.authenticator is not None and (submission or ctx.mx_auth)
    lim = ctx.limits
    return ServerConfig(
        hostname=ctx.hostname,
        max_message_size=lim.message_size,
        max_recipients=lim.max_recipients,
        max_transactions=lim.max_transactions,
        max_command_line=lim.command_line,
        max_data_line=lim.data_line,
        max_errors=lim.max_errors,
        bare_newline=ctx.bare_newline,
        tls_active=info.tls,
        starttls=ctx.ssl_context is not None,
        auth_mechanisms=ctx.auth_mechanisms if offer_auth else (),
        auth_without_tls=ctx.plaintext_auth_allowed(info.peer_ip),
        require_auth=submission,
        requiretls=ctx.requiretls,
    )


class _SessionClosed(Exception):
    """The engine closed while the shell was inside a nested exchange (AUTH)."""


class SmtpSession:
    """One connection: the engine, the current envelope and spool."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        info: ConnectionInfo,
        ctx: SmtpContext,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.info = info
        self.ctx = ctx
        self.engine = SmtpServerProtocol(engine_config(ctx, info))
        self.envelope: Envelope | None = None
        self.spool: SpooledMessage | None = None
        self._command_deadline: float | None = None  # loop time; see _next_event

    async def run(self) -> None:
        log.debug("smtp %s: session start (%s)", self.info.peer_ip, self.ctx.listener)
        try:
            while True:
                event = await self._next_event()
                if isinstance(event, ConnectionClosed):
                    log.debug("smtp %s: closed (%s)", self.info.peer_ip, event.reason)
                    return
                await self._handle(event)
        finally:
            self._drop_message()

    # ---- I/O ----------------------------------------------------------------------

    async def _flush(self) -> bool:
        """Send the queued replies; True if there were any."""
        data = self.engine.data_to_send()
        if data:
            self.writer.write(data)
            async with asyncio.timeout(self.ctx.limits.command_timeout):
                await self.writer.drain()
        return bool(data)

    async def _next_event(self) -> Event:
        """The next engine event, reading (with timeouts) as needed. A closed engine
        gives ``ConnectionClosed`` after its last replies were flushed.

        The command timeout runs from our last reply until the next command is
        complete, not from one read to the next: a client trickling a byte at a time
        cannot hold the connection (RFC 5321 section 4.5.3.2.7 times the wait for a
        *command*). Message content is timed per read (section 4.5.3.2.5)."""
        engine = self.engine
        limits = self.ctx.limits
        loop = asyncio.get_running_loop()
        while True:
            event = engine.next_event()
            if isinstance(event, NeedData):
                if await self._flush() or self._command_deadline is None:
                    self._command_deadline = loop.time() + limits.command_timeout
                if engine.receiving_message:
                    timer = asyncio.timeout(limits.data_timeout)
                else:
                    timer = asyncio.timeout_at(self._command_deadline)
                try:
                    async with timer:
                        data = await self.reader.read(limits.read_size)
                except TimeoutError:
                    log.info("smtp %s: timeout", self.info.peer_ip)
                    engine.timeout()
                    continue
                except (ConnectionError, ssl.SSLError):
                    data = b""
                engine.receive_data(data)
                continue
            if isinstance(event, Paused):
                raise RuntimeError("SMTP engine paused with no answer pending")
            if isinstance(event, ConnectionClosed):
                try:
                    await self._flush()
                except (ConnectionError, TimeoutError):
                    pass
            return event

    def _session(self) -> SessionInfo:
        return SessionInfo(
            info=self.info,
            helo=self.engine.helo or "",
            esmtp=self.engine.esmtp,
            authenticated_user=self.engine.authenticated_user,
            listener=self.ctx.listener,
        )

    async def _backend(self, call: Awaitable[T], what: str) -> T | Reply:
        """Await a backend call; an exception becomes ``451 4.3.0`` (and a log line)."""
        try:
            return await call
        except Exception:
            log.exception("smtp %s: backend %s failed", self.info.peer_ip, what)
            return codes.LOCAL_ERROR

    # ---- events -------------------------------------------------------------------

    async def _handle(self, event: Event) -> None:
        engine = self.engine
        if isinstance(event, MailFromRequested):
            result = await self._backend(
                self.ctx.backend.check_sender(self._session(), event.address, event.params),
                "check_sender",
            )
            if result is None or result.positive:
                queue_id = new_queue_id(self.ctx.clock())
                self.envelope = Envelope(event.address, event.params, queue_id)
                engine.accept(result)
            else:
                engine.reject(result)
        elif isinstance(event, RcptToRequested):
            assert self.envelope is not None
            result = await self._backend(
                self.ctx.backend.check_recipient(
                    self._session(), self.envelope, event.address, event.params
                ),
                "check_recipient",
            )
            if result is None or result.positive:
                p = event.params
                self.envelope.recipients.append(Recipient(event.address, p.notify, p.orcpt))
                engine.accept(result)
            else:
                engine.reject(result)
        elif isinstance(event, MessageStarted):
            self._drop_spool()
            self.spool = SpooledMessage(
                self.ctx.spool_dir, memory_limit=self.ctx.limits.memory_spool
            )
            self.spool.write(self._received_header())
        elif isinstance(event, DataChunk):
            assert self.spool is not None
            self.spool.write(event.data)
        elif isinstance(event, DataComplete):
            await self._deliver()
        elif isinstance(event, TransactionReset):
            self._drop_message()
        elif isinstance(event, AuthRequested):
            await self._authenticate(event)
        elif isinstance(event, StartTlsRequested):
            await self._starttls()
        # AuthResponse / AuthAborted outside an exchange: nothing to do.

    async def _deliver(self) -> None:
        assert self.envelope is not None and self.spool is not None
        self.spool.finish()
        reply = await self._backend(
            self.ctx.backend.deliver(self._session(), self.envelope, self.spool), "deliver"
        )
        log.info(
            "smtp %s: %s from=<%s> rcpts=%d size=%d: %s",
            self.info.peer_ip,
            self.envelope.queue_id,
            self.envelope.mail_from,
            len(self.envelope.recipients),
            self.spool.size,
            reply.code,
        )
        if reply.positive:
            self.engine.accept(reply)
        else:
            self.engine.reject(reply)
        self._drop_message()

    def _received_header(self) -> bytes:
        assert self.envelope is not None
        engine = self.engine
        info = self.info
        rdns = info.extra.get("rdns")
        protocol = with_keyword(
            esmtp=engine.esmtp,
            tls=info.tls,
            authenticated=engine.authenticated_user is not None,
            smtputf8=self.envelope.mail_params.smtputf8,
        )
        return build_received(
            helo=engine.helo or "unknown",
            peer_ip=info.peer_ip,
            hostname=self.ctx.hostname,
            protocol=protocol,
            queue_id=self.envelope.queue_id,
            recipients=[r.address for r in self.envelope.recipients],
            rdns=rdns if isinstance(rdns, str) else None,
            tls_version=info.tls_version,
            tls_cipher=info.tls_cipher,
            timestamp=self.ctx.clock(),
        )

    def _drop_spool(self) -> None:
        if self.spool is not None:
            self.spool.close()
            self.spool = None

    def _drop_message(self) -> None:
        self._drop_spool()
        self.envelope = None

    # ---- STARTTLS -----------------------------------------------------------------

    async def _starttls(self) -> None:
        assert self.ctx.ssl_context is not None
        # Nothing the client sent before the 220 may count (RFC 3207 section 4.2): the
        # engine already dropped its buffer, this drops the stream's - before the 220
        # goes out, since what follows it is the ClientHello.
        discard_buffered(self.reader)
        await self._flush()  # the 220 must go out in plaintext first
        try:
            async with asyncio.timeout(self.ctx.limits.tls_handshake_timeout):
                await self.writer.start_tls(self.ctx.ssl_context)
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError) as exc:
            log.info("smtp %s: TLS handshake failed: %s", self.info.peer_ip, exc)
            self.engine.close()
            return
        self.info.update_tls(self.writer)
        self.engine.tls_started()

    # ---- AUTH ---------------------------------------------------------------------

    async def _authenticate(self, event: AuthRequested) -> None:
        engine = self.engine
        ip = self.info.peer_ip
        throttle = self.ctx.throttle
        authenticator = self.ctx.authenticator
        mechanism = new_mechanism(event.mechanism, fake_salt_key=self.ctx.fake_salt_key)
        if mechanism is None or authenticator is None:
            engine.auth_failed(Reply(504, "5.5.4", "Unrecognized authentication type"))
            return
        if throttle is not None and throttle.is_blocked(ip):
            log.info("smtp %s: AUTH refused, network blocked", ip)
            await asyncio.sleep(throttle.failure_delay(ip))
            engine.auth_failed()
            return
        aborted = False

        async def ask(challenge: bytes) -> bytes | None:
            nonlocal aborted
            engine.auth_challenge(challenge)
            answer = await self._next_event()
            if isinstance(answer, AuthResponse):
                return answer.data
            aborted = True  # the engine answered already (501) or is closing
            if isinstance(answer, AuthAborted):
                return None
            raise _SessionClosed

        try:
            outcome = await run_sasl(mechanism, event.initial, ask, authenticator)
        except _SessionClosed:
            return
        except Exception:
            log.exception("smtp %s: authentication backend failed", ip)
            if not aborted and not engine.closed:
                engine.auth_failed(Reply(454, "4.7.0", "Temporary authentication failure"))
            return
        if aborted or engine.closed:
            return
        if isinstance(outcome, Success):
            log.info("smtp %s: authenticated as %s (%s)", ip, outcome.user, event.mechanism)
            if throttle is not None:
                throttle.record_success(ip)
            engine.auth_succeeded(outcome.user, outcome.final_data)
            return
        log.info("smtp %s: AUTH %s failed: %s", ip, event.mechanism, outcome.reason)
        if outcome.malformed:
            engine.auth_failed(Reply(501, "5.5.2", "Malformed authentication exchange"))
            return
        if throttle is not None:
            throttle.record_failure(ip)
            await asyncio.sleep(throttle.failure_delay(ip))
        engine.auth_failed()


async def handle_smtp(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    info: ConnectionInfo,
    ctx: SmtpContext,
) -> None:
    """Serve one SMTP connection until QUIT, EOF, timeout or error; the caller (the
    listener) closes the writer."""
    await SmtpSession(reader, writer, info, ctx).run()
