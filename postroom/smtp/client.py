"""The asyncio shell around the SMTP client engine: connect, TLS, timeouts, content.

Theory of operation: ``SmtpClientSession.connect`` opens a TCP connection to one
address, runs the engine (``client_protocol.SmtpClientProtocol``) until it is
``Ready`` — greeting, EHLO, STARTTLS with ``StreamWriter.start_tls``, AUTH — and
returns the session. ``send`` runs one transaction and returns its
``TransactionResult``; it can be called again for the next message over the same
connection (connection reuse) while ``usable`` is true. ``quit`` ends politely,
``abort`` drops the connection.

Content is pulled from a ``BodyReader`` (``read(start, end) -> bytes``, the store's
``read_message`` slices) ``CHUNK`` bytes at a time, so a large message never has to be
in memory whole. Every read waits at most the timeout the engine names (RFC 5321
section 4.5.3.2); every write waits for the socket to drain at most ``data_block``.

Errors: ``connect`` raises ``ConnectError`` (with the reply to record: 4.4.1 for no
answer, 4.7.5 for a failed TLS handshake, or the server's own refusal) and never
leaves a connection open. ``send`` never raises for network trouble: it reports it as
the recipients' replies and marks the session unusable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from postroom.smtp.client_protocol import (
    DEFAULT_TIMEOUTS,
    Closed,
    Credentials,
    Envelope,
    Event,
    Extensions,
    NeedBody,
    NeedData,
    Ready,
    SessionFailed,
    SmtpClientProtocol,
    StartTls,
    State,
    Timeouts,
    TlsMode,
    TransactionDone,
    TransactionResult,
)
from postroom.smtp.codes import Reply

log = logging.getLogger("postroom.relay")

CHUNK = 256 * 1024
READ_SIZE = 64 * 1024

BodyReader = Callable[[int, int], Awaitable[bytes]]


def bytes_reader(data: bytes) -> BodyReader:
    """A ``BodyReader`` over bytes in memory."""

    async def read(start: int, end: int) -> bytes:
        return data[start:end]

    return read


def opportunistic_context() -> ssl.SSLContext:
    """TLS without certificate checks: opportunistic STARTTLS only protects against
    passive listeners (RFC 7435); a verifying context comes from a policy."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class ConnectError(Exception):
    """No session could be opened; ``reply`` says why, ``tls_failed`` whether it was the
    TLS handshake (a retry without STARTTLS may work for opportunistic TLS)."""

    def __init__(self, reply: Reply, *, tls_failed: bool = False) -> None:
        super().__init__(str(reply))
        self.reply = reply
        self.tls_failed = tls_failed


@dataclass(frozen=True, slots=True)
class SessionOptions:
    helo_name: str
    tls_mode: TlsMode = TlsMode.OPPORTUNISTIC
    ssl_context: ssl.SSLContext | None = None  # None: opportunistic_context()
    credentials: Credentials | None = None
    allow_plaintext_auth: bool = False
    timeouts: Timeouts = DEFAULT_TIMEOUTS
    local_address: str | None = None  # source address to bind


class SmtpClientSession:
    """One open SMTP connection, ready for transactions."""

    def __init__(
        self,
        engine: SmtpClientProtocol,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        host: str,
        address: str,
        port: int,
    ) -> None:
        self.engine = engine
        self.reader = reader
        self.writer = writer
        self.host = host
        self.address = address
        self.port = port
        self.messages = 0

    @property
    def extensions(self) -> Extensions:
        return self.engine.extensions

    @property
    def tls_active(self) -> bool:
        return self.engine.tls_active

    @property
    def usable(self) -> bool:
        return self.engine.state is State.READY

    @classmethod
    async def connect(
        cls, host: str, address: str, port: int, options: SessionOptions
    ) -> SmtpClientSession:
        """Connect to ``address:port`` (``host`` names it for SNI and logs) and open the
        session. Raises ``ConnectError``."""
        timeouts = options.timeouts
        local = (options.local_address, 0) if options.local_address else None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address, port, local_addr=local), timeouts.connect
            )
        except (OSError, TimeoutError) as e:
            why = "timed out" if isinstance(e, TimeoutError) else e.strerror or str(e)
            raise ConnectError(
                Reply(451, "4.4.1", f"Cannot connect to {host} [{address}]:{port}: {why}")
            ) from None
        engine = SmtpClientProtocol(
            options.helo_name,
            tls_mode=options.tls_mode,
            credentials=options.credentials,
            allow_plaintext_auth=options.allow_plaintext_auth,
            timeouts=timeouts,
        )
        session = cls(engine, reader, writer, host, address, port)
        try:
            await session._open(options)
        except BaseException:
            session._close_transport()
            raise
        return session

    async def _open(self, options: SessionOptions) -> None:
        while True:
            event = await self._next()
            if isinstance(event, Ready):
                return
            if isinstance(event, StartTls):
                ctx = options.ssl_context or opportunistic_context()
                try:
                    await asyncio.wait_for(
                        self.writer.start_tls(ctx, server_hostname=self.host or None),
                        options.timeouts.connect,
                    )
                except (OSError, ssl.SSLError, TimeoutError) as e:
                    raise ConnectError(
                        Reply(
                            451,
                            "4.7.5",
                            f"TLS handshake with {self.host} [{self.address}] failed: {e}",
                        ),
                        tls_failed=True,
                    ) from None
                self.engine.tls_started()
            elif isinstance(event, SessionFailed | Closed):
                await self._flush_quietly()
                reply = (
                    event.reply
                    if isinstance(event, SessionFailed)
                    else Reply(451, "4.4.2", "The remote server closed the session")
                )
                raise ConnectError(reply)
            else:  # TransactionDone / NeedBody cannot happen before Ready
                raise AssertionError(f"unexpected event {event}")

    async def _next(self) -> Event:
        """Flush, then the next event that needs more than bytes from the peer."""
        while True:
            event = self.engine.next_event()
            if not await self._flush():
                continue  # the write failed: the engine has new events to tell
            if not isinstance(event, NeedData):
                return event
            try:
                data = await asyncio.wait_for(self.reader.read(READ_SIZE), event.timeout)
            except TimeoutError:
                self.engine.connection_lost(
                    Reply(
                        451,
                        "4.4.2",
                        f"Timeout waiting for the remote server ({event.timeout:.0f} s)",
                    )
                )
                continue
            except OSError as e:
                self.engine.connection_lost(Reply(451, "4.4.2", f"Connection error: {e}"))
                continue
            self.engine.receive_data(data)

    async def _flush(self) -> bool:
        """Write what the engine has; False when that failed (the engine knows)."""
        out = self.engine.data_to_send()
        if not out:
            return True
        try:
            self.writer.write(out)
            await asyncio.wait_for(self.writer.drain(), self.engine.timeouts.data_block)
        except (OSError, TimeoutError) as e:
            if self.engine.state is State.CLOSED:
                return True  # e.g. QUIT after a failure: nothing more to tell
            why = "timeout" if isinstance(e, TimeoutError) else str(e)
            self.engine.connection_lost(
                Reply(451, "4.4.2", f"Cannot write to the remote server: {why}")
            )
            return False
        return True

    async def _flush_quietly(self) -> None:
        with contextlib.suppress(Exception):
            await self._flush()

    async def send(self, envelope: Envelope, body: BodyReader) -> TransactionResult:
        """Run one transaction. Never raises for network or protocol trouble."""
        self.engine.send_message(envelope)
        offset = 0
        while True:
            event = await self._next()
            if isinstance(event, TransactionDone):
                self.messages += 1
                if not self.usable:
                    await self._flush_quietly()
                    self._close_transport()
                return event.result
            if isinstance(event, NeedBody):
                end = min(offset + CHUNK, envelope.size)
                try:
                    chunk = await body(offset, end) if end > offset else b""
                    if end > offset and not chunk:
                        raise EOFError(f"message ends at {offset} of {envelope.size} octets")
                except Exception as e:
                    # Never send a truncated message: drop the connection instead, so the
                    # peer discards the transaction (RFC 5321 section 4.1.1.4).
                    log.error("cannot read the message to send: %s", e)
                    self.engine.connection_lost(
                        Reply(451, "4.3.0", "Local error reading the message")
                    )
                    self._close_transport()
                    continue
                offset += len(chunk)
                self.engine.send_body(chunk, last=offset >= envelope.size)
            elif isinstance(event, SessionFailed | Closed):
                # The transaction's outcome always comes first; this is a safety net.
                raise AssertionError("session ended without a transaction result")

    async def quit(self) -> None:
        """QUIT and close; errors are ignored (the work is done)."""
        try:
            if self.usable:
                self.engine.quit()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._next(), self.engine.timeouts.command)
        finally:
            self._close_transport()

    def abort(self) -> None:
        self._close_transport()

    def _close_transport(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()
