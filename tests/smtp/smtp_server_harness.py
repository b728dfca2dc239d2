"""Run the asyncio SMTP shell on 127.0.0.1 in a background thread, with fakes.

Blocking clients (``smtplib``, raw sockets) talk to it from the test thread. The
backend and authenticator are in-memory fakes; certificates come from ``trustme``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trustme

from postroom.auth.passwords import (
    ScramCredentials,
    make_scram_credentials,
    parse_scram_credentials,
)
from postroom.net.listener import ConnectionInfo, ConnectionLimiter, start_listener
from postroom.smtp.backend import Envelope, SessionInfo
from postroom.smtp.codes import Reply
from postroom.smtp.params import MailParams, RcptParams
from postroom.smtp.server import SmtpContext, handle_smtp
from postroom.smtp.spool import SpooledMessage

T = TypeVar("T")


@dataclass
class Delivered:
    session: SessionInfo
    envelope: Envelope
    data: bytes
    path: str | None
    file_existed: bool


@dataclass
class FakeBackend:
    delivered: list[Delivered] = field(default_factory=list)
    senders: list[tuple[str, MailParams]] = field(default_factory=list)
    refuse_recipients: set[str] = field(default_factory=set)
    fail_deliver: bool = False

    async def check_sender(
        self, session: SessionInfo, address: str, params: MailParams
    ) -> Reply | None:
        self.senders.append((address, params))
        return None

    async def check_recipient(
        self, session: SessionInfo, envelope: Envelope, address: str, params: RcptParams
    ) -> Reply | None:
        if address in self.refuse_recipients:
            return Reply(550, "5.1.1", "No such user here")
        return None

    async def deliver(
        self, session: SessionInfo, envelope: Envelope, message: SpooledMessage
    ) -> Reply:
        if self.fail_deliver:
            raise RuntimeError("store is down")
        path = message.path
        with message.open() as f:
            data = f.read()
        assert data == message.read_all() and len(data) == message.size
        self.delivered.append(Delivered(session, envelope, data, path, _exists(path)))
        return Reply(250, "2.0.0", f"Ok: queued as {envelope.queue_id}")


def _exists(path: str | None) -> bool:
    return path is not None and os.path.exists(path)


class FakeAuthenticator:
    """alice / secret, canonical name alice@example.org; SCRAM credentials too."""

    def __init__(self) -> None:
        creds = parse_scram_credentials(make_scram_credentials("secret"))
        assert creds is not None
        self.scram: ScramCredentials = creds
        self.calls = 0

    async def verify_password(self, username: str, password: str) -> str | None:
        self.calls += 1
        return "alice@example.org" if (username, password) == ("alice", "secret") else None

    async def scram_credentials(self, username: str) -> tuple[str, ScramCredentials] | None:
        self.calls += 1
        return ("alice@example.org", self.scram) if username == "alice" else None


class Certificates:
    def __init__(self) -> None:
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("localhost", "127.0.0.1")
        self.server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self.server)

    def client(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx


class ServerThread:
    """An event loop in a thread serving ``handle_smtp`` for the given contexts."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: list[asyncio.Server] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.limiter = ConnectionLimiter(100, 100)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, ctx: SmtpContext, *, implicit_tls: ssl.SSLContext | None = None) -> int:
        async def handler(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnectionInfo
        ) -> None:
            await handle_smtp(reader, writer, info, ctx)

        servers = self.run(
            start_listener(
                ctx.listener,
                ["127.0.0.1:0"],
                handler,
                limiter=self.limiter,
                overload_reply=b"421 4.7.0 busy\r\n",
                ssl_context=implicit_tls,
                tasks=self.tasks,
            )
        )
        self.servers.extend(servers)
        port: int = servers[0].sockets[0].getsockname()[1]
        return port

    def stop(self) -> None:
        async def shutdown() -> None:
            for srv in self.servers:
                srv.close()
            for task in list(self.tasks):
                task.cancel()
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            for srv in self.servers:
                await srv.wait_closed()

        self.run(shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class LineClient:
    """A raw SMTP client over a blocking socket (for what smtplib cannot do)."""

    def __init__(self, port: int, timeout: float = 5) -> None:
        self.sock: socket.socket = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def reply(self) -> list[str]:
        lines = [self.line().decode()]
        while lines[-1][3:4] == "-":
            lines.append(self.line().decode())
        return lines

    def command(self, text: str) -> list[str]:
        self.send(text.encode() + b"\r\n")
        return self.reply()

    def starttls(self, ctx: ssl.SSLContext) -> None:
        assert self.buf == b""
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")

    def at_eof(self) -> bool:
        try:
            return self.buf == b"" and self.sock.recv(1) == b""
        except (ConnectionError, ssl.SSLError):
            return True

    def close(self) -> None:
        self.sock.close()
