"""The POP3 shell over real sockets on 127.0.0.1: Python's poplib and raw commands
against an in-memory backend, trustme certificates for STLS and POP3S."""

from __future__ import annotations

import asyncio
import base64
import poplib
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
import scramp
import trustme

from postroom.auth.passwords import (
    ScramCredentials,
    make_scram_credentials,
    parse_scram_credentials,
)
from postroom.auth.throttle import AuthThrottle, ThrottleSettings
from postroom.net.listener import ConnectionInfo, ConnectionLimiter, start_listener
from postroom.pop3.backend import MaildropEntry
from postroom.pop3.server import Pop3Context, handle_pop3

T = TypeVar("T")

INBOX = [
    b"Subject: one\r\n\r\nHello\r\n",
    b"Subject: two\r\n\r\n.dotted\r\n..\r\n.\r\nend\r\n",
    b"Subject: three\r\n\r\nl1\r\nl2\r\nl3\r\n",
]


# --- fakes ---------------------------------------------------------------------------


@dataclass
class FakeMaildrop:
    backend: FakeBackend
    user: str
    entries: list[MaildropEntry]

    async def retrieve(self, index: int) -> bytes:
        if self.backend.fail_retrieve:
            raise OSError("disk on fire")
        return self.backend.mailboxes[self.user][index]

    async def commit(self, deleted: Sequence[int]) -> None:
        self.backend.commits.append((self.user, list(deleted)))
        if self.backend.fail_commit:
            raise OSError("disk on fire")
        box = self.backend.mailboxes[self.user]
        for i in sorted(deleted, reverse=True):
            del box[i]

    async def release(self) -> None:
        self.backend.releases.append(self.user)
        self.backend.locked.discard(self.user)


@dataclass
class FakeBackend:
    mailboxes: dict[str, list[bytes]]
    locked: set[str] = field(default_factory=set)
    commits: list[tuple[str, list[int]]] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)
    fail_open: bool = False
    fail_retrieve: bool = False
    fail_commit: bool = False

    async def open_maildrop(self, user: str) -> FakeMaildrop | None:
        if self.fail_open:
            raise OSError("store down")
        if user in self.locked:
            return None
        self.locked.add(user)
        box = self.mailboxes.setdefault(user, [])
        entries = [MaildropEntry(len(m), f"uid{i}") for i, m in enumerate(box)]
        return FakeMaildrop(self, user, entries)


class FakeAuthenticator:
    def __init__(self, passwords: dict[str, str]) -> None:
        self.passwords = passwords
        self.scram = {
            u: parse_scram_credentials(make_scram_credentials(p)) for u, p in passwords.items()
        }

    async def verify_password(self, username: str, password: str) -> str | None:
        return username if self.passwords.get(username) == password else None

    async def scram_credentials(self, username: str) -> tuple[str, ScramCredentials] | None:
        creds = self.scram.get(username)
        return None if creds is None else (username, creds)


# --- harness -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_ssl(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("pop.example.test", "127.0.0.1").configure_cert(ctx)
    return ctx


@pytest.fixture(scope="module")
def client_ssl(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def make_ctx(backend: FakeBackend, **kw: Any) -> Pop3Context:
    kw.setdefault("plaintext_auth_allowed", lambda ip: True)
    kw.setdefault("throttle", AuthThrottle(ThrottleSettings(base_delay=0.01, max_delay=0.01)))
    return Pop3Context(
        hostname="pop.example.test",
        backend=backend,
        authenticator=FakeAuthenticator({"alice": "secret", "bob": "hunter2"}),
        **kw,
    )


def serve(
    ctx: Pop3Context, client: Callable[[int], T], *, implicit_tls: ssl.SSLContext | None = None
) -> T:
    """Run a listener with ``handle_pop3``, call ``client(port)`` in a thread, then wait
    for every session to end (so release/commit have happened) and shut down."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnectionInfo
    ) -> None:
        await handle_pop3(reader, writer, info, ctx)

    async def main() -> T:
        running: set[asyncio.Task[None]] = set()
        servers = await start_listener(
            "pop3",
            ["127.0.0.1:0"],
            handler,
            limiter=ConnectionLimiter(100, 100),
            overload_reply=b"-ERR [SYS/TEMP] busy\r\n",
            ssl_context=implicit_tls,
            tasks=running,
        )
        port = servers[0].sockets[0].getsockname()[1]
        try:
            result = await asyncio.wait_for(asyncio.to_thread(client, port), 30)
            for _ in range(200):
                if not running:
                    break
                await asyncio.sleep(0.01)
            assert not running, "a session did not end"
            return result
        finally:
            for srv in servers:
                srv.close()
                await srv.wait_closed()

    return asyncio.run(main())


class Raw:
    """A line-oriented raw client for commands poplib does not have."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.file.readline()

    def cmd(self, line: bytes | str) -> bytes:
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.line()

    def starttls(self, context: ssl.SSLContext) -> None:
        self.file.close()
        self.sock = context.wrap_socket(self.sock, server_hostname="127.0.0.1")
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- tests ---------------------------------------------------------------------------


def test_poplib_session_with_plaintext_allowed() -> None:
    backend = FakeBackend({"alice": list(INBOX)})

    def client(port: int) -> dict[str, Any]:
        pop = poplib.POP3("127.0.0.1", port, timeout=10)
        got: dict[str, Any] = {"welcome": pop.getwelcome(), "capa": pop.capa()}
        pop.user("alice")
        pop.pass_("secret")
        got["stat"] = pop.stat()
        got["list"] = pop.list()[1]
        got["uidl"] = pop.uidl()[1]
        got["retr2"] = pop.retr(2)[1]
        got["top3"] = pop.top(3, 1)[1]
        pop.dele(1)
        got["quit"] = pop.quit()
        return got

    got = serve(make_ctx(backend), client)
    assert got["welcome"] == b"+OK pop.example.test Postroom POP3 server ready"
    assert "USER" in got["capa"] and "PIPELINING" in got["capa"]
    assert got["capa"]["SASL"] == ["PLAIN", "LOGIN", "SCRAM-SHA-256"]
    assert "STLS" not in got["capa"]
    assert got["stat"] == (3, sum(map(len, INBOX)))
    assert got["list"] == [f"{i + 1} {len(m)}".encode() for i, m in enumerate(INBOX)]
    assert got["uidl"] == [b"1 uid0", b"2 uid1", b"3 uid2"]
    assert b"\r\n".join(got["retr2"]) + b"\r\n" == INBOX[1]
    assert got["top3"] == [b"Subject: three", b"", b"l1"]
    assert got["quit"].startswith(b"+OK")
    assert backend.commits == [("alice", [0])]
    assert backend.releases == ["alice"]
    assert backend.mailboxes["alice"] == INBOX[1:]


def test_stls_then_login(server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext) -> None:
    backend = FakeBackend({"alice": list(INBOX)})
    ctx = make_ctx(backend, plaintext_auth_allowed=lambda ip: False, ssl_context=server_ssl)

    def client(port: int) -> tuple[dict[str, Any], str, dict[str, Any], bytes]:
        pop = poplib.POP3("127.0.0.1", port, timeout=10)
        before = pop.capa()
        with pytest.raises(poplib.error_proto) as refused:
            pop.user("alice")
        pop.stls(client_ssl)
        after = pop.capa()
        pop.user("alice")
        pop.pass_("secret")
        body = b"\r\n".join(pop.retr(1)[1]) + b"\r\n"
        pop.quit()
        return before, str(refused.value), after, body

    before, refused, after, body = serve(ctx, client)
    assert "STLS" in before and "USER" not in before and "SASL" not in before
    assert "TLS" in refused
    assert "STLS" not in after and "USER" in after and "SASL" in after
    assert body == INBOX[0]
    assert backend.commits == [] and backend.releases == ["alice"]


def test_stls_injection_is_not_executed(
    server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext
) -> None:
    backend = FakeBackend({"alice": list(INBOX)})
    ctx = make_ctx(backend, plaintext_auth_allowed=lambda ip: False, ssl_context=server_ssl)

    def client(port: int) -> list[bytes]:
        raw = Raw(port)
        raw.line()
        raw.send(b"STLS\r\nUSER alice\r\n")
        answers = [raw.line()]
        raw.starttls(client_ssl)
        answers.append(raw.cmd("PASS secret"))
        answers.append(raw.cmd("QUIT"))
        raw.close()
        return answers

    answers = serve(ctx, client)
    assert answers == [
        b"+OK begin TLS negotiation\r\n",
        b"-ERR USER first\r\n",
        b"+OK pop.example.test Postroom POP3 server signing off\r\n",
    ]


def test_pop3s_implicit_tls(server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext) -> None:
    backend = FakeBackend({"alice": list(INBOX)})
    ctx = make_ctx(backend, plaintext_auth_allowed=lambda ip: False)

    def client(port: int) -> tuple[dict[str, Any], tuple[int, int]]:
        pop = poplib.POP3_SSL("127.0.0.1", port, context=client_ssl, timeout=10)
        capa = pop.capa()
        pop.user("alice")
        pop.pass_("secret")
        stat = pop.stat()
        pop.quit()
        return capa, stat

    capa, stat = serve(ctx, client, implicit_tls=server_ssl)
    assert "USER" in capa and "STLS" not in capa
    assert stat == (3, sum(map(len, INBOX)))


def test_auth_plain_login_and_failure() -> None:
    backend = FakeBackend({"alice": list(INBOX)})
    ctx = make_ctx(backend)

    def client(port: int) -> list[bytes]:
        raw = Raw(port)
        raw.line()
        answers = [raw.cmd("AUTH PLAIN " + b64(b"\x00alice\x00wrong"))]
        answers.append(raw.cmd("AUTH PLAIN"))
        answers.append(raw.cmd("*"))
        answers.append(raw.cmd("AUTH LOGIN"))
        answers.append(raw.cmd(b64(b"alice")))
        answers.append(raw.cmd(b64(b"secret")))
        answers.append(raw.cmd("QUIT"))
        raw.close()
        return answers

    answers = serve(ctx, client)
    assert answers == [
        b"-ERR [AUTH] authentication failed\r\n",
        b"+ \r\n",
        b"-ERR authentication cancelled\r\n",
        f"+ {b64(b'Username:')}\r\n".encode(),
        f"+ {b64(b'Password:')}\r\n".encode(),
        f"+OK maildrop has 3 messages ({sum(map(len, INBOX))} octets)\r\n".encode(),
        b"+OK pop.example.test Postroom POP3 server signing off (3 messages left)\r\n",
    ]
    assert backend.releases == ["alice"]


def test_auth_scram_sends_server_final_as_a_challenge() -> None:
    backend = FakeBackend({"alice": list(INBOX)})

    def client(port: int) -> tuple[bytes, bytes]:
        scram = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "secret")
        raw = Raw(port)
        raw.line()
        first = raw.cmd("AUTH SCRAM-SHA-256 " + b64(scram.get_client_first().encode()))
        assert first.startswith(b"+ ")
        scram.set_server_first(base64.b64decode(first[2:].strip()).decode())
        final = raw.cmd(b64(scram.get_client_final().encode()))
        assert final.startswith(b"+ ")
        scram.set_server_final(base64.b64decode(final[2:].strip()).decode())  # verifies
        ok = raw.cmd("")
        stat = raw.cmd("STAT")
        raw.cmd("QUIT")
        raw.close()
        return ok, stat

    ok, stat = serve(make_ctx(backend), client)
    assert ok.startswith(b"+OK maildrop has 3 messages")
    assert stat == f"+OK 3 {sum(map(len, INBOX))}\r\n".encode()


def test_in_use() -> None:
    backend = FakeBackend({"alice": list(INBOX)})

    def client(port: int) -> str:
        first = poplib.POP3("127.0.0.1", port, timeout=10)
        first.user("alice")
        first.pass_("secret")
        second = poplib.POP3("127.0.0.1", port, timeout=10)
        second.user("alice")
        with pytest.raises(poplib.error_proto) as err:
            second.pass_("secret")
        second.quit()
        first.quit()
        return str(err.value)

    assert "[IN-USE]" in serve(make_ctx(backend), client)
    assert backend.releases == ["alice"]


def test_five_megabyte_message_is_byte_exact(
    server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext
) -> None:
    line = b"." + b"x" * 76 + b"\r\n"
    big = b"Subject: big\r\n\r\n" + line * (5 * 1024 * 1024 // len(line)) + b"end\r\n"
    backend = FakeBackend({"alice": [big, INBOX[0]]})
    ctx = make_ctx(backend, ssl_context=server_ssl)

    def client(port: int) -> tuple[bytes, bytes, bytes]:
        pop = poplib.POP3("127.0.0.1", port, timeout=10)
        pop.user("alice")
        pop.pass_("secret")
        resp, lines, _octets = pop.retr(1)
        plain = b"\r\n".join(lines) + b"\r\n"
        pop.quit()
        tls = poplib.POP3("127.0.0.1", port, timeout=10)
        tls.stls(client_ssl)
        tls.user("alice")
        tls.pass_("secret")
        over_tls = b"\r\n".join(tls.retr(1)[1]) + b"\r\n"
        tls.quit()
        return resp, plain, over_tls

    resp, plain, over_tls = serve(ctx, client)
    assert resp == f"+OK {len(big)} octets".encode()
    assert plain == big
    assert over_tls == big


def test_dropped_connection_releases_without_commit() -> None:
    backend = FakeBackend({"alice": list(INBOX)})

    def client(port: int) -> None:
        raw = Raw(port)
        raw.line()
        raw.cmd("USER alice")
        raw.cmd("PASS secret")
        assert raw.cmd("DELE 1") == b"+OK message 1 deleted\r\n"
        raw.close()

    serve(make_ctx(backend), client)
    assert backend.commits == []
    assert backend.releases == ["alice"]
    assert backend.mailboxes["alice"] == INBOX


def test_idle_timeout_logs_out_without_update() -> None:
    backend = FakeBackend({"alice": list(INBOX)})

    def client(port: int) -> list[bytes]:
        raw = Raw(port)
        raw.line()
        raw.cmd("USER alice")
        raw.cmd("PASS secret")
        raw.cmd("DELE 1")
        rest = [raw.line(), raw.line()]
        raw.close()
        return rest

    rest = serve(make_ctx(backend, idle_timeout=0.2), client)
    assert rest == [b"-ERR autologout: idle for too long\r\n", b""]
    assert backend.commits == []
    assert backend.releases == ["alice"]


def test_throttle_block_and_failure_recording() -> None:
    backend = FakeBackend({"alice": list(INBOX)})
    throttle = AuthThrottle(ThrottleSettings(base_delay=0.01, max_delay=0.01, block_after=2))

    def client(port: int) -> list[bytes]:
        raw = Raw(port)
        raw.line()
        answers = []
        for password in ("a", "b", "secret"):
            raw.cmd("USER alice")
            answers.append(raw.cmd(f"PASS {password}"))
        answers.append(raw.cmd("AUTH PLAIN " + b64(b"\x00alice\x00secret")))
        raw.close()
        return answers

    answers = serve(make_ctx(backend, throttle=throttle, max_auth_failures=5), client)
    assert answers == [
        b"-ERR [AUTH] authentication failed\r\n",
        b"-ERR [AUTH] authentication failed\r\n",
        b"-ERR [SYS/TEMP] too many failed logins, try again later\r\n",
        b"-ERR [SYS/TEMP] too many failed logins, try again later\r\n",
    ]
    assert throttle.is_blocked("127.0.0.1")
    assert backend.releases == []


def test_login_delay() -> None:
    backend = FakeBackend({"alice": list(INBOX)})
    now = [1000.0]
    ctx = make_ctx(backend, login_delay=900, clock=lambda: now[0])

    def client(port: int) -> tuple[dict[str, Any], str, bytes]:
        pop = poplib.POP3("127.0.0.1", port, timeout=10)
        capa = pop.capa()
        pop.user("alice")
        pop.pass_("secret")
        pop.quit()
        now[0] += 10
        again = poplib.POP3("127.0.0.1", port, timeout=10)
        again.user("alice")
        with pytest.raises(poplib.error_proto) as err:
            again.pass_("secret")
        now[0] += 900
        again.user("alice")
        ok = again.pass_("secret")
        again.quit()
        return capa, str(err.value), ok

    capa, refused, ok = serve(ctx, client)
    assert capa["LOGIN-DELAY"] == ["900"]
    assert "[LOGIN-DELAY]" in refused
    assert ok.startswith(b"+OK")


def test_backend_failures_are_sys_temp() -> None:
    backend = FakeBackend({"alice": list(INBOX)}, fail_retrieve=True, fail_commit=True)

    def client(port: int) -> list[bytes]:
        raw = Raw(port)
        raw.line()
        raw.cmd("USER alice")
        raw.cmd("PASS secret")
        answers = [raw.cmd("RETR 1"), raw.cmd("DELE 2"), raw.cmd("QUIT"), raw.line()]
        raw.close()
        return answers

    answers = serve(make_ctx(backend), client)
    assert answers == [
        b"-ERR [SYS/TEMP] message unavailable, try again later\r\n",
        b"+OK message 2 deleted\r\n",
        b"-ERR [SYS/TEMP] some deleted messages not removed\r\n",
        b"",
    ]
    assert backend.commits == [("alice", [1])]
    assert backend.releases == ["alice"]

    broken = FakeBackend({}, fail_open=True)

    def client2(port: int) -> bytes:
        raw = Raw(port)
        raw.line()
        raw.cmd("USER alice")
        answer = raw.cmd("PASS secret")
        raw.close()
        return answer

    assert serve(make_ctx(broken), client2) == (
        b"-ERR [SYS/TEMP] maildrop unavailable, try again later\r\n"
    )


def test_pipelined_commands_are_answered_in_order() -> None:
    backend = FakeBackend({"alice": list(INBOX)})

    def client(port: int) -> bytes:
        raw = Raw(port)
        raw.line()
        raw.send(b"USER alice\r\nPASS secret\r\nRETR 1\r\nTOP 3 0\r\nDELE 1\r\nSTAT\r\nQUIT\r\n")
        data = b""
        while chunk := raw.sock.recv(65536):
            data += chunk
        raw.close()
        return data

    data = serve(make_ctx(backend), client)
    size = sum(map(len, INBOX))
    assert data == (
        b"+OK send PASS\r\n"
        + f"+OK maildrop has 3 messages ({size} octets)\r\n".encode()
        + f"+OK {len(INBOX[0])} octets\r\n".encode()
        + INBOX[0]
        + b".\r\n+OK top of message follows\r\nSubject: three\r\n\r\n.\r\n"
        + b"+OK message 1 deleted\r\n"
        + f"+OK 2 {size - len(INBOX[0])}\r\n".encode()
        + b"+OK pop.example.test Postroom POP3 server signing off (2 messages left)\r\n"
    )


class BrokenAuthenticator(FakeAuthenticator):
    async def verify_password(self, username: str, password: str) -> str | None:
        raise OSError("directory down")


def test_authenticator_failure_and_malformed_sasl() -> None:
    backend = FakeBackend({"alice": list(INBOX)})
    ctx = make_ctx(backend)
    ctx.authenticator = BrokenAuthenticator({})

    def client(port: int) -> list[bytes]:
        raw = Raw(port)
        raw.line()
        raw.cmd("USER alice")
        answers = [raw.cmd("PASS secret")]
        answers.append(raw.cmd("AUTH PLAIN " + b64(b"\x00alice\x00secret")))
        answers.append(raw.cmd("AUTH PLAIN ="))
        answers.append(raw.cmd("AUTH PLAIN"))
        answers.append(raw.cmd("@@@"))
        answers.append(raw.cmd("NOOP"))
        raw.close()
        return answers

    assert serve(ctx, client) == [
        b"-ERR [SYS/TEMP] authentication unavailable\r\n",
        b"-ERR [SYS/TEMP] authentication unavailable\r\n",
        b"-ERR malformed SASL response\r\n",
        b"+ \r\n",
        b"-ERR invalid base64, authentication aborted\r\n",
        b"-ERR NOOP not valid in the AUTHORIZATION state\r\n",
    ]
    assert backend.releases == []


def test_failed_tls_handshake_ends_the_session(server_ssl: ssl.SSLContext) -> None:
    backend = FakeBackend({"alice": list(INBOX)})
    ctx = make_ctx(backend, ssl_context=server_ssl, tls_handshake_timeout=2)

    def client(port: int) -> tuple[bytes, bytes]:
        raw = Raw(port)
        raw.line()
        ok = raw.cmd("STLS")
        raw.send(b"this is not a TLS client hello\r\n" * 10)
        rest = raw.sock.recv(1024)
        while rest and (more := raw.sock.recv(1024)):
            rest += more
        raw.close()
        return ok, rest

    ok, _ = serve(ctx, client)
    assert ok == b"+OK begin TLS negotiation\r\n"
