"""The asyncio shell around the POP3 engine: sockets, TLS, timeouts, auth, the store.

Theory of operation: ``handle_pop3`` runs one connection. It feeds what it reads to a
``ServerConnection`` (``protocol.py``) and acts on the engine's events one at a time:
checking a password or running a SASL exchange (``postroom.auth``), opening the
maildrop (``Pop3Backend``), reading a message, the STLS handshake, the UPDATE state's
commit. While it acts the engine is paused, so pipelined commands wait their turn and
answers leave in order. Output is flushed before each read and after each action.

Guarantees: the maildrop is released exactly once however the session ends; messages
are deleted only after QUIT (RFC 1939 section 6); an idle client is logged out after
``idle_timeout`` (RFC 1939 section 3: at least 10 minutes; counted from the last answer,
so a client trickling bytes without finishing a command is logged out too) without
entering UPDATE; a client that stops reading is dropped after ``write_timeout``. Messages are sent as
slices of the stored bytes, waiting for the socket to drain (backpressure).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from postroom.auth.authenticator import Authenticator, MalformedResponse, run_sasl
from postroom.auth.sasl import MECHANISMS, Failure, new_mechanism
from postroom.auth.throttle import AuthThrottle
from postroom.net.listener import ConnectionInfo, discard_buffered
from postroom.pop3.backend import Maildrop, Pop3Backend
from postroom.pop3.protocol import (
    AuthCancelled,
    AuthResponse,
    AuthStart,
    Close,
    Commit,
    EngineConfig,
    NeedData,
    PasswordLogin,
    ResponseCode,
    RetrieveMessage,
    ServerConnection,
    StartTls,
)

log = logging.getLogger("postroom.pop3")

READ_SIZE = 64 * 1024
WRITE_HIGH_WATER = 256 * 1024  # drain when the transport holds more than this


def _never(ip: str) -> bool:
    return False


@dataclass
class Pop3Context:
    """Everything a POP3 listener shares between its connections.

    ``plaintext_auth_allowed(peer_ip)``: may this client log in without TLS (a trusted
    network)? Over TLS login is always allowed. ``ssl_context``: for STLS; None means
    STLS is not offered. ``login_delay``: seconds between two logins of one user,
    announced as LOGIN-DELAY and enforced with ``-ERR [LOGIN-DELAY]`` (RFC 2449 6.5).
    """

    hostname: str
    backend: Pop3Backend
    authenticator: Authenticator
    throttle: AuthThrottle
    ssl_context: ssl.SSLContext | None = None
    plaintext_auth_allowed: Callable[[str], bool] = _never
    mechanisms: tuple[str, ...] = MECHANISMS
    login_delay: int | None = None
    # timeouts, seconds
    idle_timeout: float = 600.0  # RFC 1939 section 3: autologout, at least 10 minutes
    write_timeout: float = 120.0  # a client that does not read its mail
    tls_handshake_timeout: float = 30.0
    # limits
    max_line: int = 512
    max_auth_line: int = 12288
    max_errors: int = 10
    max_auth_failures: int = 3
    clock: Callable[[], float] = time.monotonic
    _last_login: dict[str, float] = field(default_factory=dict, init=False, repr=False)

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            hostname=self.hostname,
            mechanisms=self.mechanisms,
            tls_available=self.ssl_context is not None,
            login_delay=self.login_delay,
            max_line=self.max_line,
            max_auth_line=self.max_auth_line,
            max_errors=self.max_errors,
            max_auth_failures=self.max_auth_failures,
        )


async def handle_pop3(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    info: ConnectionInfo,
    ctx: Pop3Context,
) -> None:
    """Serve one POP3 connection until QUIT, a timeout or a dropped connection.
    Connection errors propagate (the listener logs nothing for them); the maildrop is
    released and the writer closed in every case."""
    session = _Session(reader, writer, info, ctx)
    try:
        await session.run()
    except _SessionOver:
        pass
    finally:
        try:
            await session.release()
        finally:
            writer.close()


class _SessionOver(Exception):
    """The client went away or timed out in the middle of something."""


class _Session:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        info: ConnectionInfo,
        ctx: Pop3Context,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.info = info
        self.ctx = ctx
        plaintext = info.tls or ctx.plaintext_auth_allowed(info.peer_ip)
        self.engine = ServerConnection(
            ctx.engine_config(), tls_active=info.tls, plaintext_allowed=plaintext
        )
        self.maildrop: Maildrop | None = None
        self._sasl_ended_by_engine = False
        # The autologout timer (RFC 1939 section 3) restarts when a command was
        # answered, not whenever a byte arrives: a client trickling bytes is logged out.
        self._deadline: float | None = None

    # --- the loop -------------------------------------------------------------------

    async def run(self) -> None:
        engine = self.engine
        while True:
            event = engine.next_event()
            match event:
                case NeedData():
                    await self._flush()
                    engine.receive_data(await self._read())
                    continue
                case PasswordLogin(user, password):
                    await self._password_login(user, password)
                case AuthStart(mechanism, initial):
                    await self._sasl_login(mechanism, initial)
                case RetrieveMessage(index, _):
                    await self._retrieve(index)
                case StartTls():
                    await self._start_tls()
                case Commit(deleted):
                    await self._commit(deleted)
                case Close():
                    await self._flush()
                    return
                case _:  # Paused, or SASL events outside an exchange: a bug here
                    raise RuntimeError(f"unexpected POP3 engine event {event!r}")
            self._deadline = None  # a command was handled (RETR may have sent a lot)
            await self._flush()

    async def release(self) -> None:
        maildrop, self.maildrop = self.maildrop, None
        if maildrop is not None:
            try:
                await maildrop.release()
            except Exception:
                log.exception("pop3 %s: releasing the maildrop failed", self.info.peer_ip)

    # --- I/O ------------------------------------------------------------------------

    async def _read(self) -> bytes:
        """Bytes from the client; raises ``_SessionOver`` at EOF or after the idle
        timeout (autologout: the session ends without UPDATE, RFC 1939 section 3)."""
        if self._deadline is None:
            self._deadline = asyncio.get_running_loop().time() + self.ctx.idle_timeout
        try:
            async with asyncio.timeout_at(self._deadline):
                data = await self.reader.read(READ_SIZE)
        except TimeoutError:
            self.writer.write(b"-ERR autologout: idle for too long\r\n")
            try:
                await self._drain()
            except (OSError, TimeoutError):
                pass
            raise _SessionOver from None
        if not data:
            raise _SessionOver
        return data

    async def _flush(self) -> None:
        data = self.engine.data_to_send()
        if data:
            self.writer.write(data)
            self._deadline = None  # a command was answered
            await self._drain()

    async def _drain(self) -> None:
        async with asyncio.timeout(self.ctx.write_timeout):
            await self.writer.drain()

    # --- AUTHORIZATION --------------------------------------------------------------

    async def _password_login(self, user: str, password: str) -> None:
        if self._blocked():
            return
        try:
            canonical = await self.ctx.authenticator.verify_password(user, password)
        except Exception:
            log.exception("pop3 %s: password check failed", self.info.peer_ip)
            self.engine.reject_login("authentication unavailable", ResponseCode.SYS_TEMP)
            return
        if canonical is None:
            await self._auth_failed()
            return
        await self._open_maildrop(canonical)

    async def _sasl_login(self, name: str, initial: bytes | None) -> None:
        if self._blocked():
            return
        mechanism = new_mechanism(name)
        if mechanism is None:  # the engine only passes configured names; defensive
            self.engine.reject_login("unsupported SASL mechanism", None)
            return
        self._sasl_ended_by_engine = False
        try:
            outcome = await run_sasl(mechanism, initial, self._ask, self.ctx.authenticator)
        except _SessionOver:
            raise
        except Exception:  # the authenticator's (temporary) failure
            log.exception("pop3 %s: SASL %s failed", self.info.peer_ip, name)
            if not self._sasl_ended_by_engine:
                self.engine.reject_login("authentication unavailable", ResponseCode.SYS_TEMP)
            return
        if self._sasl_ended_by_engine:
            return  # cancelled or unreadable: the engine has answered
        if isinstance(outcome, Failure):
            if outcome.malformed:
                self.engine.reject_login("malformed SASL response", None)
            else:
                await self._auth_failed()
            return
        await self._open_maildrop(outcome.user)

    async def _ask(self, challenge: bytes) -> bytes | None:
        """``run_sasl``'s ``ask``: one "+ " challenge out, one decoded answer back
        (None when the client cancelled). Connection trouble is ``_SessionOver``, so
        that ``_sasl_login`` can tell it from an authenticator failure."""
        self.engine.send_challenge(challenge)
        try:
            await self._flush()
        except (OSError, TimeoutError) as e:
            raise _SessionOver from e
        while True:
            event = self.engine.next_event()
            match event:
                case NeedData():
                    try:
                        self.engine.receive_data(await self._read())
                    except (OSError, TimeoutError) as e:
                        raise _SessionOver from e
                case AuthResponse(data):
                    return data
                case AuthCancelled(malformed):
                    self._sasl_ended_by_engine = True
                    if malformed:
                        raise MalformedResponse
                    return None
                case _:
                    raise RuntimeError(f"unexpected POP3 engine event {event!r} in SASL")

    def _blocked(self) -> bool:
        if self.ctx.throttle.is_blocked(self.info.peer_ip):
            self.engine.reject_login(
                "too many failed logins, try again later", ResponseCode.SYS_TEMP
            )
            return True
        return False

    async def _auth_failed(self) -> None:
        throttle, ip = self.ctx.throttle, self.info.peer_ip
        throttle.record_failure(ip)
        log.info("pop3 %s: authentication failed", ip)
        await asyncio.sleep(throttle.failure_delay(ip))
        self.engine.reject_login("authentication failed")

    async def _open_maildrop(self, user: str) -> None:
        ctx = self.ctx
        ctx.throttle.record_success(self.info.peer_ip)
        if ctx.login_delay is not None:
            last = ctx._last_login.get(user)
            if last is not None and ctx.clock() - last < ctx.login_delay:
                self.engine.reject_login(
                    f"wait {ctx.login_delay} seconds between logins", ResponseCode.LOGIN_DELAY
                )
                return
        try:
            maildrop = await ctx.backend.open_maildrop(user)
        except Exception:
            log.exception("pop3 %s: opening the maildrop of %s failed", self.info.peer_ip, user)
            self.engine.reject_login("maildrop unavailable, try again later", ResponseCode.SYS_TEMP)
            return
        if maildrop is None:
            self.engine.reject_login(
                "maildrop already locked by another session", ResponseCode.IN_USE
            )
            return
        self.maildrop = maildrop
        if ctx.login_delay is not None:
            ctx._last_login[user] = ctx.clock()
        log.info("pop3 %s: %s logged in", self.info.peer_ip, user)
        # RFC 1939 section 8: the list is frozen for the session.
        self.engine.accept_login(user, tuple(maildrop.entries))

    async def _start_tls(self) -> None:
        # STARTTLS command injection: drop what came before the +OK, not after it (the
        # ClientHello follows the +OK at once).
        discard_buffered(self.reader)
        await self._flush()  # "+OK begin TLS negotiation" goes out in the clear
        assert self.ctx.ssl_context is not None  # the engine offers STLS only then
        try:
            await self.writer.start_tls(
                self.ctx.ssl_context, ssl_handshake_timeout=self.ctx.tls_handshake_timeout
            )
        except (ssl.SSLError, OSError, TimeoutError) as e:
            log.info("pop3 %s: TLS handshake failed: %s", self.info.peer_ip, e)
            raise _SessionOver from None
        self.info.update_tls(self.writer)
        self.engine.tls_started()

    # --- TRANSACTION and UPDATE -----------------------------------------------------

    async def _retrieve(self, index: int) -> None:
        assert self.maildrop is not None
        try:
            message = await self.maildrop.retrieve(index)
        except Exception:
            log.exception("pop3 %s: reading message %d failed", self.info.peer_ip, index)
            self.engine.retrieve_failed()
            return
        transport = self.writer.transport
        for chunk in self.engine.send_message(message):
            self.writer.write(chunk)
            if transport.get_write_buffer_size() > WRITE_HIGH_WATER:
                await self._drain()
        await self._drain()

    async def _commit(self, deleted: Sequence[int]) -> None:
        assert self.maildrop is not None
        try:
            await self.maildrop.commit(deleted)
        except Exception:
            log.exception("pop3 %s: expunging %d messages failed", self.info.peer_ip, len(deleted))
            self.engine.commit_finished(False)
            return
        self.engine.commit_finished(True)
