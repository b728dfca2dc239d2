"""Fuzz target: POP3 commands (RFC 1939, CAPA, STLS, AUTH, UTF8) into the server
engine with a three-message maildrop: never raises, any split gives the same answers,
every line out ends with CRLF, buffering stays bounded.
``python -m fuzz.pop3_command --seconds N``."""

from __future__ import annotations

import zlib

from fuzz.engine import Target, main
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

MESSAGES = [b"Subject: one\r\n\r\nHello\r\n", b"Subject: two\r\n\r\n.dot\r\n..\r\n.\r\nend\r\n",
            b"Subject: three\r\n\r\n1\r\n2\r\n3"]
CONFIG = EngineConfig(hostname="pop.fuzz.test", mechanisms=("PLAIN",), tls_available=True,
                      login_delay=60, max_line=64, max_auth_line=96, max_errors=40,
                      max_auth_failures=5)


class Shell:
    def __init__(self) -> None:
        self.engine = ServerConnection(CONFIG, plaintext_allowed=True)
        self.out = bytearray(self.engine.data_to_send())
        self.closed: str | None = None
        self.tls = False
        self.commits: list[tuple[int, ...]] = []
        self.held = 0

    def feed(self, data: bytes) -> None:
        if self.closed is not None or (self.tls and data):
            return
        self.engine.receive_data(data)
        eng = self.engine
        while True:
            ev = eng.next_event()
            if isinstance(ev, NeedData):
                break
            if isinstance(ev, Close):
                self.closed = ev.reason
                break
            if isinstance(ev, PasswordLogin):
                if (ev.user, ev.password) == ("alice", "pw"):
                    self._login()
                else:
                    eng.reject_login("authentication failed")
            elif isinstance(ev, AuthStart):
                if ev.initial is None:
                    eng.send_challenge(b"")
                else:
                    self._plain(ev.initial)
            elif isinstance(ev, AuthResponse):
                self._plain(ev.data)
            elif isinstance(ev, AuthCancelled):
                pass
            elif isinstance(ev, RetrieveMessage):
                assert 0 <= ev.index < len(MESSAGES)
                for chunk in eng.send_message(MESSAGES[ev.index]):
                    self.out += chunk
            elif isinstance(ev, StartTls):
                eng.tls_started()
                self.tls = True  # later plaintext was pipelined before the handshake
            elif isinstance(ev, Commit):
                assert list(ev.deleted) == sorted(set(ev.deleted))
                assert all(0 <= i < len(MESSAGES) for i in ev.deleted)
                self.commits.append(ev.deleted)
                eng.commit_finished(True)
            else:
                raise AssertionError(f"unexpected event {ev!r}")
            self.out += eng.data_to_send()
        self.out += eng.data_to_send()
        self.held = max(self.held, len(eng._in))

    def _plain(self, data: bytes) -> None:
        if data == b"\x00alice\x00pw":
            self._login()
        else:
            self.engine.reject_login("authentication failed")

    def _login(self) -> None:
        entries = tuple(MaildropEntry(len(m), f"u{i}") for i, m in enumerate(MESSAGES))
        self.engine.accept_login("alice", entries)


def session(data: bytes, size: int) -> Shell:
    shell = Shell()
    for i in range(0, len(data), size):
        shell.feed(data[i : i + size])
    shell.feed(b"")
    assert shell.held <= CONFIG.max_auth_line + 2 + size, f"engine held {shell.held} octets"
    return shell


def check(data: bytes) -> None:
    size = 1 + zlib.crc32(data) % 13
    whole = session(data, max(len(data), 1))
    split = session(data, size)
    assert bytes(split.out) == bytes(whole.out), "answers depend on the split"
    assert split.commits == whole.commits
    out = bytes(whole.out)
    assert out.endswith(b"\r\n")
    assert ResponseCode.AUTH  # the enum is importable (keeps the import honest)


DICTIONARY = (
    b"USER alice\r\n", b"PASS pw\r\n", b"PASS x\r\n", b"APOP alice 0123\r\n", b"AUTH PLAIN\r\n",
    b"AUTH PLAIN AGFsaWNlAHB3\r\n", b"AGFsaWNlAHB3\r\n", b"*\r\n", b"=\r\n", b"AUTH\r\n",
    b"CAPA\r\n", b"STLS\r\n", b"UTF8\r\n", b"STAT\r\n", b"LIST\r\n", b"LIST 2\r\n", b"UIDL\r\n",
    b"UIDL 3\r\n", b"RETR 1\r\n", b"RETR 2\r\n", b"TOP 2 1\r\n", b"TOP 3 0\r\n",
    b"TOP 1 99999999999999999999\r\n", b"DELE 1\r\n", b"DELE 3\r\n", b"RSET\r\n", b"NOOP\r\n",
    b"QUIT\r\n", b"RETR -1\r\n", b"RETR 0\r\n", b"RETR \xd9\xa1\r\n", b"\r\n", b"\n", b" ",
    b"\x00", b"\xff", b"x" * 70,
)

TARGET = Target("pop3_command", check, DICTIONARY)

if __name__ == "__main__":
    raise SystemExit(main(TARGET))
