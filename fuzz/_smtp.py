"""A synchronous SMTP server shell for the fuzz targets: feeds bytes to the engine,
answers its decisions by a fixed policy, collects output and messages, and checks the
invariants every target shares (see ``run``)."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

from postroom.smtp.codes import Reply
from postroom.smtp.server_events import (
    AuthRequested,
    AuthResponse,
    ConnectionClosed,
    DataChunk,
    DataComplete,
    MailFromRequested,
    MessageStarted,
    NeedData,
    Paused,
    RcptToRequested,
    StartTlsRequested,
    TransactionReset,
)
from postroom.smtp.server_protocol import ServerConfig, SmtpServerProtocol

REPLY_LINE = re.compile(rb"[2-5][0-9][0-9][ -][^\r\n]*\r\n")

CONFIG = ServerConfig(
    hostname="mx.fuzz.test",
    auth_mechanisms=("PLAIN", "LOGIN"),
    auth_without_tls=True,
    starttls=True,
    max_message_size=3000,
    max_recipients=4,
    max_command_line=200,
    max_auth_line=300,
    max_data_line=120,
    max_errors=30,
)
NORMALIZE = ServerConfig(**{**CONFIG.__dict__, "bare_newline": "normalize"})


@dataclass
class Shell:
    engine: SmtpServerProtocol
    out: bytearray = field(default_factory=bytearray)
    messages: list[bytes] = field(default_factory=list)
    current: bytearray | None = None
    closed: str | None = None
    max_buffer: int = 0
    tls: bool = False  # STARTTLS done: later plaintext is not the client's (see run)

    def feed(self, data: bytes) -> None:
        if self.tls and data:
            return
        self.engine.receive_data(data)
        self.pump()

    def pump(self) -> None:
        eng = self.engine
        while True:
            ev = eng.next_event()
            if isinstance(ev, NeedData | Paused):
                break
            if isinstance(ev, ConnectionClosed):
                self.closed = ev.reason
                break
            if isinstance(ev, MailFromRequested):
                if "reject" in ev.address:
                    eng.reject(Reply(550, "5.7.1", "no"))
                else:
                    eng.accept()
            elif isinstance(ev, RcptToRequested):
                if ev.address.startswith("r"):
                    eng.reject(Reply(450, "4.2.0", "later"))
                else:
                    eng.accept()
            elif isinstance(ev, MessageStarted):
                self.current = bytearray()
            elif isinstance(ev, DataChunk):
                assert self.current is not None, "DataChunk outside a message"
                self.current += ev.data
            elif isinstance(ev, DataComplete):
                assert self.current is not None, "DataComplete outside a message"
                assert ev.size == len(self.current), (ev.size, len(self.current))
                self.messages.append(bytes(self.current))
                self.current = None
                eng.accept()
            elif isinstance(ev, TransactionReset):
                self.current = None
            elif isinstance(ev, AuthRequested):
                if ev.initial is None:
                    eng.auth_challenge(b"")
                else:
                    self._plain(ev.initial)
            elif isinstance(ev, AuthResponse):
                self._plain(ev.data)
            elif isinstance(ev, StartTlsRequested):
                eng.tls_started()
                self.tls = True
        self.out += eng.data_to_send()
        # Bounded buffering: what the engine keeps between reads is at most one
        # unfinished line (or a few bytes of a possible end-of-data marker).
        held = len(eng._buf)
        self.max_buffer = max(self.max_buffer, held)

    def _plain(self, data: bytes) -> None:
        parts = data.split(b"\0")
        if len(parts) == 3 and parts[1:] == [b"alice", b"secret"]:
            self.engine.auth_succeeded("alice")
        else:
            self.engine.auth_failed()


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def run(data: bytes, config: ServerConfig = CONFIG) -> Shell:
    """Feed ``data`` whole and in small chunks (size from its checksum); check that
    both give the same replies and messages (input after STARTTLS is dropped: it was
    pipelined before the handshake, RFC 3207 section 4.2, or would be encrypted), that every reply line is well formed,
    that EOF closes the session and that buffering stayed bounded."""
    size = 1 + zlib.crc32(data) % 11
    whole = Shell(SmtpServerProtocol(config))
    whole.feed(data)
    whole.feed(b"")
    split = Shell(SmtpServerProtocol(config))
    for piece in chunks(data, size):
        split.feed(piece)
    split.feed(b"")
    assert whole.closed is not None and split.closed is not None, "EOF did not close"
    assert bytes(split.out) == bytes(whole.out), "output depends on the split"
    assert split.messages == whole.messages, "messages depend on the split"
    pos = 0
    out = bytes(whole.out)
    while pos < len(out):
        m = REPLY_LINE.match(out, pos)
        assert m is not None, f"malformed reply line at {pos}: {out[pos:pos + 80]!r}"
        assert len(m.group()) <= 2048, "reply line too long"
        pos = m.end()
    limit = max(config.max_command_line, config.max_auth_line) + 16
    assert split.max_buffer <= limit + size, f"engine buffered {split.max_buffer} octets"
    for message in whole.messages:
        assert len(message) <= config.max_message_size, "message over SIZE accepted"
    return whole
