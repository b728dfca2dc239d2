"""A synchronous stand-in for the asyncio shell, to drive the POP3 engine in tests.

``EngineDriver`` answers every engine event the way the real shell would, but from
memory and without awaiting: a user table, a list of messages, PLAIN for SASL (plus
``X-FINAL``, a fake mechanism that sends additional data with success like SCRAM).
``transcript`` turns a ``C:`` / ``S:`` script into (client bytes, expected server bytes).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from postroom.pop3.backend import MaildropEntry
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

GREETING = b"+OK pop.example.test Postroom POP3 server ready\r\n"

MESSAGES = [
    b"Subject: one\r\n\r\nHello\r\n",
    b"Subject: two\r\nX-Dots: yes\r\n\r\n.leading dot\r\nmiddle\r\n..two dots\r\n.\r\nend\r\n",
    b"Subject: three\r\n\r\nline 1\r\nline 2\r\nline 3\r\n",
]


def transcript(script: str | bytes) -> tuple[bytes, bytes]:
    """``C: line`` lines are what the client sends, ``S: line`` what the server must
    answer; each gets CRLF. Other lines are ignored. ``S:`` lines before the first
    ``C:`` are the greeting."""
    raw = script.encode() if isinstance(script, str) else script
    client = bytearray()
    server = bytearray()
    for line in raw.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(b"C:"):
            client += _body(stripped) + b"\r\n"
        elif stripped.startswith(b"S:"):
            server += _body(stripped) + b"\r\n"
    return bytes(client), bytes(server)


def _body(line: bytes) -> bytes:
    rest = line[2:]
    return rest[1:] if rest.startswith(b" ") else rest


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@dataclass
class EngineDriver:
    messages: list[bytes] = field(default_factory=lambda: list(MESSAGES))
    users: dict[str, str] = field(default_factory=lambda: {"alice": "secret"})
    plaintext_allowed: bool = True
    tls_active: bool = False
    in_use: bool = False
    commit_ok: bool = True
    utf8_messages: frozenset[int] = frozenset()
    config: EngineConfig = field(
        default_factory=lambda: EngineConfig(
            hostname="pop.example.test",
            mechanisms=("PLAIN", "X-FINAL"),
            tls_available=True,
        )
    )

    def __post_init__(self) -> None:
        self.engine = ServerConnection(
            self.config, tls_active=self.tls_active, plaintext_allowed=self.plaintext_allowed
        )
        self.output = bytearray(self.engine.data_to_send())
        self.commits: list[tuple[int, ...]] = []
        self.tls_starts = 0
        self.closed: str | None = None
        self.events: list[object] = []
        self._mechanism: str | None = None
        self._final_sent = False

    def entries(self) -> tuple[MaildropEntry, ...]:
        return tuple(
            MaildropEntry(len(m), f"uid-{i + 1}", utf8=i in self.utf8_messages)
            for i, m in enumerate(self.messages)
        )

    def feed(self, chunks: Iterable[bytes]) -> bytes:
        """Send each chunk, answering events in between; returns all server output
        so far (greeting included)."""
        for chunk in chunks:
            if self.closed is not None:
                break
            self.engine.receive_data(chunk)
            self.pump()
        return bytes(self.output)

    def pump(self) -> None:
        engine = self.engine
        while True:
            event = engine.next_event()
            self.events.append(event)
            match event:
                case NeedData():
                    break
                case Close(reason):
                    self.closed = reason
                    break
                case PasswordLogin(user, password):
                    if self.users.get(user) == password:
                        self._login(user)
                    else:
                        engine.reject_login("authentication failed")
                case AuthStart(mechanism, initial):
                    self._mechanism = mechanism
                    self._final_sent = False
                    if initial is None:
                        engine.send_challenge(b"")
                    else:
                        self._sasl_step(initial)
                case AuthResponse(data):
                    self._sasl_step(data)
                case AuthCancelled():
                    self._mechanism = None
                case RetrieveMessage(index, _):
                    for chunk in engine.send_message(self.messages[index]):
                        self.output += chunk
                case StartTls():
                    self.tls_starts += 1
                    engine.tls_started()
                case Commit(deleted):
                    self.commits.append(deleted)
                    engine.commit_finished(self.commit_ok)
                case _:
                    raise AssertionError(f"unexpected event {event!r}")
            self.output += engine.data_to_send()
        self.output += engine.data_to_send()

    def _sasl_step(self, data: bytes) -> None:
        engine = self.engine
        if self._final_sent:  # X-FINAL: the answer to the additional data
            if data:
                engine.reject_login("malformed SASL response", None)
            else:
                self._login("alice")
            return
        fields = data.split(b"\x00")
        if len(fields) != 3:
            engine.reject_login("malformed SASL response", None)
            return
        user = fields[1].decode(errors="replace")
        password = fields[2].decode(errors="replace")
        if self.users.get(user) != password:
            engine.reject_login("authentication failed")
        elif self._mechanism == "X-FINAL":
            self._final_sent = True
            engine.send_challenge(b"v=server-signature")
        else:
            self._login(user)

    def _login(self, user: str) -> None:
        if self.in_use:
            self.engine.reject_login("maildrop already locked", ResponseCode.IN_USE)
        else:
            self.engine.accept_login(user, self.entries())


def run_split(script: str | bytes, size: int, **kw: object) -> tuple[bytes, bytes, EngineDriver]:
    """(expected, actual, driver) with the client's bytes sent in ``size`` chunks."""
    client, expected = transcript(script)
    driver = EngineDriver(**kw)  # type: ignore[arg-type]
    return expected, driver.feed(chunked(client, size)), driver
