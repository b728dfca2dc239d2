"""Test helpers for the SMTP engine: a scripted shell and transcripts.

``Driver`` plays the shell: it feeds bytes, answers decisions with a small policy and
collects messages. ``parse_transcript`` turns ``C: ...`` / ``S: ...`` lines into the
client's byte stream and the server's expected output; ``check_transcript`` feeds the
client side at every chunk size (1, 2, ... whole) and compares every time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from postroom.smtp.codes import Reply
from postroom.smtp.server_events import (
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

HOST = "mx.test"
USERS = {"alice": "secret"}


def config(**kw: object) -> ServerConfig:
    base: dict[str, object] = {"hostname": HOST}
    base.update(kw)
    return ServerConfig(**base)  # type: ignore[arg-type]


@dataclass
class Driver:
    """A sans-IO shell: answers MAIL/RCPT by ``policy`` and AUTH PLAIN by ``USERS``."""

    engine: SmtpServerProtocol
    mail_policy: Callable[[MailFromRequested], Reply | None] = lambda ev: None
    rcpt_policy: Callable[[RcptToRequested], Reply | None] = lambda ev: None
    message_reply: Reply = field(default_factory=lambda: Reply(250, "2.0.0", "Queued"))
    events: list[Event] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    closed: str | None = None
    starttls_pending: bool = False
    auto_tls: bool = False  # finish the TLS handshake at once when asked
    _current: bytearray | None = None
    _output: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> None:
        self.engine.receive_data(data)
        self.pump()

    def pump(self) -> None:
        while True:
            ev = self.engine.next_event()
            if isinstance(ev, NeedData | Paused):
                break
            if isinstance(ev, ConnectionClosed):
                self.closed = ev.reason
                break
            self.events.append(ev)
            self._handle(ev)
        self._output += self.engine.data_to_send()

    def output(self) -> bytes:
        self._output += self.engine.data_to_send()
        out = bytes(self._output)
        self._output.clear()
        return out

    def _handle(self, ev: Event) -> None:
        eng = self.engine
        if isinstance(ev, MailFromRequested):
            reply = self.mail_policy(ev)
            eng.accept() if reply is None else eng.reject(reply)
        elif isinstance(ev, RcptToRequested):
            reply = self.rcpt_policy(ev)
            eng.accept() if reply is None else eng.reject(reply)
        elif isinstance(ev, MessageStarted):
            self._current = bytearray()
        elif isinstance(ev, DataChunk):
            assert self._current is not None
            self._current += ev.data
        elif isinstance(ev, DataComplete):
            assert self._current is not None
            assert ev.size == len(self._current)
            self.messages.append(bytes(self._current))
            self._current = None
            eng.accept(self.message_reply)
        elif isinstance(ev, TransactionReset):
            self._current = None
        elif isinstance(ev, AuthRequested):
            if ev.initial is None:
                eng.auth_challenge(b"")
            else:
                self._plain(ev.initial)
        elif isinstance(ev, AuthResponse):
            self._plain(ev.data)
        elif isinstance(ev, StartTlsRequested):
            self.starttls_pending = True
            if self.auto_tls:
                self.engine.tls_started()

    def _plain(self, data: bytes) -> None:
        parts = data.split(b"\0")
        if len(parts) == 3 and USERS.get(parts[1].decode()) == parts[2].decode():
            self.engine.auth_succeeded(parts[1].decode())
        else:
            self.engine.auth_failed()


def new_driver(**kw: object) -> Driver:
    return Driver(SmtpServerProtocol(config(**kw)))


def parse_transcript(text: str) -> tuple[bytes, bytes]:
    """``C: `` lines are sent with CRLF, ``S: `` lines expected with CRLF."""
    client = bytearray()
    server = bytearray()
    for line in text.splitlines():
        line = line.lstrip()
        tag, _, rest = line.partition(" ")
        if tag == "C:":
            client += rest.encode() + b"\r\n"
        elif tag == "S:":
            server += rest.encode() + b"\r\n"
        elif line.strip():
            raise ValueError(f"bad transcript line: {line!r}")
    return bytes(client), bytes(server)


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def run_split(client: bytes, size: int, *, auto_tls: bool = False, **kw: object) -> Driver:
    d = new_driver(**kw)
    d.auto_tls = auto_tls
    for chunk in chunks(client, size):
        d.feed(chunk)
    return d


def check_transcript(text: str, *, sizes: range | None = None, **kw: object) -> Driver:
    """Run the transcript at every chunk size; return the driver of the whole-feed run."""
    client, expected = parse_transcript(text)
    greeting = f"220 {HOST} ESMTP Postroom\r\n".encode()
    expected = greeting + expected
    for size in sizes or range(1, len(client) + 1):
        d = run_split(client, size, **kw)
        got = d.output()
        assert got.decode() == expected.decode(), f"chunk size {size}"
    return run_split(client, max(len(client), 1), **kw)


def ehlo_lines(**kw: object) -> list[str]:
    eng = SmtpServerProtocol(config(**kw))
    return eng.extensions()


def ehlo_reply(**kw: object) -> str:
    """The ``S:`` lines of the EHLO reply for a config built from ``kw``."""
    lines = [HOST, *ehlo_lines(**kw)]
    out = [f"S: 250-{line}" for line in lines[:-1]]
    out.append(f"S: 250 {lines[-1]}")
    return "\n".join(out)


AUTH_TEST_CFG: dict[str, object] = {
    "auth_mechanisms": ("PLAIN", "LOGIN"),
    "auth_without_tls": True,
    "starttls": True,
    "max_message_size": 2000,
    "max_recipients": 3,
}
