"""The IMAP listener's shell: bytes from the socket into the receiver, commands into the
session, responses back out.

Theory of operation: one coroutine per connection. The sans-IO ``CommandReceiver`` turns
bytes into events; complete commands are parsed (``parse_command``) and executed by the
``ImapSession`` (``session.py``), which writes its responses through this module's
``Connection``. Sub-dialogues that need more client lines (AUTHENTICATE, IDLE) ask the
connection for them, so the receiver stays the only parser of client bytes. Literals are
accepted or refused before the client sends them (APPENDLIMIT, RFC 7889).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from postroom.auth.authenticator import Authenticator
from postroom.auth.throttle import AuthThrottle
from postroom.imap.commands import parse_command
from postroom.imap.commands.append import append_mailbox
from postroom.imap.errors import ConnectionClosed, ParseError, ShuttingDown
from postroom.imap.grammar.options import ParseOptions
from postroom.imap.receiver import (
    Command,
    CommandReceiver,
    Line,
    NeedData,
    NeedLiteral,
    ReceiverConfig,
    Rejected,
)
from postroom.imap.responses import Continuation, Response, Tagged, bye, error_response
from postroom.net.listener import ConnectionInfo, discard_buffered
from postroom.store.sqlite import SqliteStore

log = logging.getLogger("postroom.imap")

WRITE_HIGH_WATER = 256 * 1024
BIG_CHUNK = 16 * 1024


def _never(ip: str) -> bool:
    return False


@dataclass
class ImapContext:
    """What every IMAP connection of one listener shares."""

    hostname: str
    store: SqliteStore
    authenticator: Authenticator
    throttle: AuthThrottle
    ssl_context: ssl.SSLContext | None = None  # for STARTTLS; None: not offered
    plaintext_auth_allowed: Callable[[str], bool] = _never
    append_limit: int = 52_428_800
    subaddress_delimiter: str = "+"
    idle_timeout: float = 1800.0  # RFC 9051 section 5.4: at least 30 minutes
    preauth_timeout: float = 60.0
    write_timeout: float = 120.0
    max_errors: int = 20  # BAD answers before BYE
    max_auth_failures: int = 3
    read_size: int = 64 * 1024
    # Set when the server stops: sessions waiting for their client say BYE and end at
    # once instead of holding the shutdown for the grace period.
    stopping: asyncio.Event | None = None
    extra: dict[str, object] = field(default_factory=dict)


class Connection:
    """The socket side of one session: buffered writes with backpressure, reads through
    the receiver, STARTTLS."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 info: ConnectionInfo, ctx: ImapContext) -> None:
        self.reader = reader
        self.writer = writer
        self.info = info
        self.ctx = ctx
        # Literals are held in memory until the command is complete: a MULTIAPPEND may
        # carry several messages, but not the receiver's default 1 GiB per connection.
        self.receiver = CommandReceiver(ReceiverConfig(
            max_append_literal=ctx.append_limit,
            max_append_command=2 * ctx.append_limit + 64 * 1024))
        self.options = ParseOptions()
        self.pending = 0
        self.out: list[bytes] = []
        self.out_size = 0
        self.closed = False

    # ------------------------------------------------------------------ output

    def send(self, response: Response | bytes) -> None:
        """Queue a response. Small chunks gather in a buffer that goes to the socket in
        one write per flush (a FETCH of 100,000 flags was 100,000 send() calls); big
        literals are passed through without copying."""
        if self.closed:
            return
        chunks = [response] if isinstance(response, bytes) else response.chunks()
        for c in chunks:
            if len(c) >= BIG_CHUNK:
                self._write_buffer()
                self.writer.write(c)
            else:
                self.out.append(c)
                self.out_size += len(c)
            self.pending += len(c)
        if self.out_size >= WRITE_HIGH_WATER:
            self._write_buffer()

    def _write_buffer(self) -> None:
        if self.out:
            self.writer.write(b"".join(self.out))
            self.out.clear()
            self.out_size = 0

    async def flush(self) -> None:
        """Hand everything queued to the socket and wait until it drained (with a
        timeout, so a client that stops reading cannot hold us)."""
        self._write_buffer()
        if self.pending and not self.closed:
            self.pending = 0
            try:
                await asyncio.wait_for(self.writer.drain(), self.ctx.write_timeout)
            except (TimeoutError, ConnectionError) as e:
                self.closed = True
                raise ConnectionClosed from e

    async def maybe_flush(self) -> None:
        if self.pending >= WRITE_HIGH_WATER:
            await self.flush()

    # ------------------------------------------------------------------ input

    async def read_more(self, seconds: float) -> None:
        """Feed the receiver what the client sends next. Raises TimeoutError after
        ``seconds`` of silence, ConnectionClosed at EOF, ShuttingDown when the server
        stops meanwhile."""
        stopping = self.ctx.stopping
        if stopping is not None and stopping.is_set():
            raise ShuttingDown
        read = asyncio.ensure_future(self.reader.read(self.ctx.read_size))
        waiters: set[asyncio.Future[object]] = {read}  # type: ignore[arg-type]
        stop = None
        if stopping is not None:
            stop = asyncio.ensure_future(stopping.wait())
            waiters.add(stop)  # type: ignore[arg-type]
        try:
            done, _ = await asyncio.wait(waiters, timeout=seconds,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                if not w.done():
                    w.cancel()
        if read not in done:
            if stop is not None and stop in done:
                raise ShuttingDown
            raise TimeoutError
        try:
            data = read.result()
        except (ConnectionError, OSError) as e:
            raise ConnectionClosed from e
        if not data:
            raise ConnectionClosed
        self.receiver.feed(data)

    async def read_line(self, seconds: float) -> bytes:
        """One raw client line (AUTHENTICATE response, IDLE's DONE)."""
        self.receiver.expect_line()
        while True:
            ev = self.receiver.next_event()
            if isinstance(ev, Line):
                return ev.data
            if isinstance(ev, NeedData):
                await self.flush()
                await self.read_more(seconds)
                continue
            if isinstance(ev, Rejected):
                return b"*"  # an overlong response line: treat as a cancel
            raise ConnectionClosed  # cannot happen in line mode

    async def start_tls(self, ok: Response) -> None:
        """Answer STARTTLS with ``ok`` and run the handshake. What the client sent before
        it saw ``ok`` is dropped (command injection, RFC 9051 section 6.2.1); what comes
        after it is the ClientHello, so nothing may read the socket in between: ``ok``
        is written without waiting and ``start_tls`` pauses reading in the same tick."""
        assert self.ctx.ssl_context is not None
        discard_buffered(self.reader)
        self.receiver.discard_buffered()
        self.send(ok)
        self._write_buffer()
        self.pending = 0
        try:
            await self.writer.start_tls(self.ctx.ssl_context, ssl_handshake_timeout=60)
        except (ssl.SSLError, OSError, TimeoutError) as e:
            # The client's handshake failed: the connection is over, quietly (a client
            # must not be able to flood the log with tracebacks).
            self.closed = True
            raise ConnectionClosed from e
        self.info.update_tls(self.writer)


async def handle_imap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      info: ConnectionInfo, ctx: ImapContext) -> None:
    from postroom.imap.session import ImapSession, State

    conn = Connection(reader, writer, info, ctx)
    session = ImapSession(ctx, conn)
    errors = 0
    loop = asyncio.get_running_loop()
    # The autologout clock (RFC 9051 section 5.4) runs per command, not per read: a
    # client trickling a byte at a time does not keep a session (slowloris).
    deadline: float | None = None
    try:
        conn.send(session.greeting())
        await conn.flush()
        while session.state is not State.LOGOUT:
            ev = conn.receiver.next_event()
            if isinstance(ev, NeedData):
                await conn.flush()
                if deadline is None:
                    deadline = loop.time() + (
                        ctx.idle_timeout if session.state is not State.NOT_AUTHENTICATED
                        else ctx.preauth_timeout)
                try:
                    await conn.read_more(max(deadline - loop.time(), 0.001))
                except TimeoutError:
                    conn.send(bye("Autologout: idle for too long"))
                    break
                continue
            deadline = None  # the client got somewhere: a literal or a whole command
            if isinstance(ev, NeedLiteral):
                refusal = await session.check_literal(ev)
                if refusal is not None:
                    conn.receiver.reject_literal(status=refusal[0], code=refusal[1],
                                                 text=refusal[2])
                else:
                    conn.receiver.accept_literal()
                    if ev.synchronizing:
                        conn.send(Continuation("Ready for literal data"))
                        await conn.flush()
                continue
            if isinstance(ev, Rejected):
                conn.send(error_response(ev))
                errors += 1
            elif isinstance(ev, Command):
                try:
                    cmd = parse_command(ev, conn.options)
                except ParseError as e:
                    conn.send(error_response(e))
                    errors += e.status == "BAD"
                else:
                    ok = await session.execute(cmd)
                    errors += not ok
            elif isinstance(ev, Line):  # a stray line outside a dialogue
                conn.send(Tagged("*", "BAD", "Unexpected line"))
                errors += 1
            if errors >= ctx.max_errors:
                conn.send(bye("Too many errors"))
                break
            await conn.maybe_flush()
        await conn.flush()
    except ShuttingDown:
        conn.send(bye("Server shutting down"))
        try:
            await conn.flush()
        except ConnectionClosed:
            pass
    except ConnectionClosed:
        pass
    except ssl.SSLError as e:
        log.info("imap %s: TLS failed: %s", info.peer_ip, e)
    finally:
        await session.close()
        if not writer.is_closing():
            writer.close()


def literal_target(ev: NeedLiteral, utf8: bool) -> str | None:
    """The APPEND target named on a literal's announcing line, if readable."""
    if ev.command != "APPEND":
        return None
    return append_mailbox(ev.line, ParseOptions(utf8=utf8))
