"""A scriptable SMTP server on loopback for relay tests (not a real MTA: just enough).

Each behaviour is a knob: the EHLO extensions, a function answering RCPT, the reply
after the content, dropping the connection in the middle of DATA, STARTTLS with a
given server context, AUTH PLAIN/LOGIN against fixed credentials. What it received
is kept in ``messages`` (complete messages only) and ``transcript`` (lines).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from postroom.smtp.data import dot_unstuff


@dataclass
class Received:
    mail_from: str
    rcpts: list[str]
    data: bytes
    mail_line: str
    rcpt_lines: list[str]
    tls: bool
    session: int


@dataclass
class FakeSmtp:
    host: str = "127.0.0.1"
    port: int = 0
    extensions: list[str] = field(
        default_factory=lambda: ["PIPELINING", "8BITMIME", "SIZE 10000000", "ENHANCEDSTATUSCODES"]
    )
    rcpt_reply: Callable[[str, int], str] = lambda addr, n: "250 2.1.5 OK"
    mail_reply: Callable[[str], str] = lambda line: "250 2.1.0 OK"
    data_reply: Callable[[bytes], str] = lambda data: "250 2.0.0 Queued"
    greeting: str = "220 fake.test ESMTP"
    drop_in_data: int = 0  # drop the connection mid-DATA in this many sessions
    stall_in_data: bool = False  # read the content, never answer
    tls_context: ssl.SSLContext | None = None
    broken_starttls: bool = False  # offer STARTTLS, then hang up instead of a handshake
    max_rcpts: int = 0  # more RCPTs in one transaction get 452 4.5.3
    credentials: tuple[str, str] | None = None
    messages: list[Received] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)
    sessions: int = 0
    rcpt_attempts: dict[str, int] = field(default_factory=dict)
    _server: asyncio.base_events.Server | None = None
    _bdat: bytes = b""

    async def start(self) -> FakeSmtp:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        session = self.sessions
        try:
            await self._session(reader, writer, session)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def _session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, session: int
    ) -> None:
        def send(line: str) -> None:
            self.transcript.append(f"S: {line}")
            writer.write(line.encode() + b"\r\n")

        tls = False
        authed = self.credentials is None
        mail: str | None = None
        mail_line = ""
        rcpts: list[str] = []
        rcpt_lines: list[str] = []
        send(self.greeting)
        if not self.greeting.startswith("220"):
            await writer.drain()
            return
        while True:
            await writer.drain()
            raw = await reader.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.transcript.append(f"C: {line}")
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                exts = list(self.extensions)
                if (self.tls_context is not None or self.broken_starttls) and not tls:
                    exts.append("STARTTLS")
                if self.credentials is not None:
                    exts.append("AUTH PLAIN LOGIN")
                lines = ["fake.test", *exts]
                for i, text in enumerate(lines):
                    send(f"250{'-' if i < len(lines) - 1 else ' '}{text}")
            elif verb == "HELO":
                send("250 fake.test")
            elif verb == "STARTTLS" and self.broken_starttls:
                send("220 2.0.0 Go ahead")
                await writer.drain()
                writer.transport.abort()
                return
            elif verb == "STARTTLS" and self.tls_context is not None:
                send("220 2.0.0 Go ahead")
                await writer.drain()
                await writer.start_tls(self.tls_context)
                tls = True
            elif verb == "AUTH":
                parts = line.split(" ")
                assert self.credentials is not None
                user, password = self.credentials
                if parts[1].upper() == "PLAIN":
                    token = base64.b64decode(parts[2]).split(b"\0")
                    ok = token[1:] == [user.encode(), password.encode()]
                else:
                    send("334 VXNlcm5hbWU6")
                    await writer.drain()
                    u = base64.b64decode((await reader.readline()).strip())
                    send("334 UGFzc3dvcmQ6")
                    await writer.drain()
                    p = base64.b64decode((await reader.readline()).strip())
                    ok = (u, p) == (user.encode(), password.encode())
                authed = ok
                send("235 2.7.0 OK" if ok else "535 5.7.8 Bad credentials")
            elif verb == "MAIL":
                if not authed:
                    send("530 5.7.0 Authentication required")
                    continue
                reply = self.mail_reply(line)
                if reply.startswith("2"):
                    mail = line[10:].split(">", 1)[0].lstrip("<")
                    mail_line = line
                    rcpts, rcpt_lines = [], []
                send(reply)
            elif verb == "RCPT":
                addr = line[8:].split(">", 1)[0].lstrip("<")
                n = self.rcpt_attempts.get(addr, 0) + 1
                self.rcpt_attempts[addr] = n
                if mail is None:
                    send("503 5.5.1 MAIL first")
                    continue
                reply = self.rcpt_reply(addr, n)
                if self.max_rcpts and len(rcpts) >= self.max_rcpts:
                    reply = "452 4.5.3 Too many recipients"
                if reply.startswith("2"):
                    rcpts.append(addr)
                    rcpt_lines.append(line)
                send(reply)
            elif verb == "DATA":
                if mail is None or not rcpts:
                    send("554 5.5.1 No valid recipients")
                    continue
                send("354 Go ahead")
                await writer.drain()
                if self.drop_in_data > 0:
                    self.drop_in_data -= 1
                    await reader.read(10)
                    writer.transport.abort()
                    return
                wire = await reader.readuntil(b"\r\n.\r\n")
                if self.stall_in_data:
                    await asyncio.sleep(3600)
                data = dot_unstuff(wire)
                reply = self.data_reply(data)
                if reply.startswith("2"):
                    self.messages.append(
                        Received(mail, rcpts, data, mail_line, rcpt_lines, tls, session)
                    )
                mail = None
                send(reply)
            elif verb == "BDAT":
                parts = line.split(" ")
                size = int(parts[1])
                chunk = await reader.readexactly(size)
                buf = self._bdat + chunk
                if len(parts) > 2 and parts[2].upper() == "LAST":
                    self._bdat = b""
                    if mail is None or not rcpts:
                        send("554 5.5.1 No valid recipients")
                        continue
                    reply = self.data_reply(buf)
                    if reply.startswith("2"):
                        self.messages.append(
                            Received(mail, rcpts, buf, mail_line, rcpt_lines, tls, session)
                        )
                    mail = None
                    send(reply)
                else:
                    self._bdat = buf
                    send(f"250 2.0.0 {size} octets received")
            elif verb == "RSET":
                mail = None
                send("250 2.0.0 OK")
            elif verb == "NOOP":
                send("250 2.0.0 OK")
            elif verb == "QUIT":
                send("221 2.0.0 Bye")
                await writer.drain()
                return
            else:
                send("500 5.5.1 Unknown command")
