"""The asyncio shell over real sockets on 127.0.0.1, driven by smtplib and raw clients."""

from __future__ import annotations

import base64
import os
import smtplib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import scramp
from smtp_server_harness import (
    Certificates,
    FakeAuthenticator,
    FakeBackend,
    LineClient,
    ServerThread,
)

from postroom.auth.throttle import AuthThrottle, ThrottleSettings
from postroom.smtp.server import SmtpContext, SmtpLimits

MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"


@pytest.fixture(scope="module")
def certs() -> Certificates:
    return Certificates()


@pytest.fixture
def server() -> Iterator[ServerThread]:
    srv = ServerThread()
    yield srv
    srv.stop()


Start = Callable[..., tuple[int, SmtpContext]]


@pytest.fixture
def start(server: ServerThread, certs: Certificates, tmp_path: Path) -> Start:
    def _start(
        listener: str = "smtp", *, implicit_tls: bool = False, **kw: Any
    ) -> tuple[int, SmtpContext]:
        kw.setdefault("backend", FakeBackend())
        kw.setdefault("authenticator", FakeAuthenticator())
        kw.setdefault("ssl_context", certs.server)
        kw.setdefault("spool_dir", str(tmp_path))
        kw.setdefault(
            "throttle",
            AuthThrottle(ThrottleSettings(base_delay=0.01, max_delay=0.02, block_after=3)),
        )
        ctx = SmtpContext(hostname="mx.test", listener=listener, **kw)
        port = server.start(ctx, implicit_tls=certs.server if implicit_tls else None)
        return port, ctx

    return _start


def backend_of(ctx: SmtpContext) -> FakeBackend:
    assert isinstance(ctx.backend, FakeBackend)
    return ctx.backend


def test_mx_ehlo_and_delivery(start: Start) -> None:
    port, ctx = start("smtp")
    with smtplib.SMTP("127.0.0.1", port) as s:
        code, _ = s.ehlo("client.test")
        assert code == 250
        for ext in ("pipelining", "size", "8bitmime", "smtputf8", "chunking", "dsn", "starttls"):
            assert s.has_extn(ext), ext
        assert not s.has_extn("auth")  # MX: no AUTH by default
        s.sendmail("a@example.org", ["b@example.org"], MESSAGE)
    (msg,) = backend_of(ctx).delivered
    assert msg.envelope.mail_from == "a@example.org"
    assert [r.address for r in msg.envelope.recipients] == ["b@example.org"]
    assert msg.session.helo == "client.test" and msg.session.listener == "smtp"
    header = msg.data.partition(b"\r\n\r\n")[0]
    assert msg.data.endswith(MESSAGE)
    assert header.startswith(b"Received: from client.test ([127.0.0.1])\r\n\tby mx.test")
    assert f"with ESMTP id {msg.envelope.queue_id}".encode() in msg.data
    assert b"for <b@example.org>;" in msg.data
    assert msg.path is None  # small: stayed in memory


def test_refused_recipient_and_backend_failure(start: Start) -> None:
    backend = FakeBackend(refuse_recipients={"nobody@example.org"})
    port, _ = start("smtp", backend=backend)
    with smtplib.SMTP("127.0.0.1", port) as s:
        refused = s.sendmail("a@example.org", ["nobody@example.org", "b@example.org"], MESSAGE)
        assert refused == {"nobody@example.org": (550, b"5.1.1 No such user here")}
        backend.fail_deliver = True
        with pytest.raises(smtplib.SMTPDataError) as exc:
            s.sendmail("a@example.org", ["b@example.org"], MESSAGE)
        assert exc.value.smtp_code == 451
    assert len(backend.delivered) == 1
    assert b"\tfor <b@example.org>;" in backend.delivered[0].data


def test_submission_starttls_then_auth(start: Start, certs: Certificates) -> None:
    port, ctx = start("submission")
    with smtplib.SMTP("127.0.0.1", port) as s:
        s.ehlo("laptop")
        assert s.has_extn("starttls") and not s.has_extn("auth")
        code, text = s.mail("alice@example.org")
        assert (code, text) == (530, b"5.7.0 Must issue a STARTTLS command first")
        s.rset()
        s.starttls(context=certs.client())
        s.ehlo("laptop")
        assert s.esmtp_features["auth"].strip() == "PLAIN LOGIN SCRAM-SHA-256"
        assert "requiretls" in s.esmtp_features
        code, _ = s.mail("alice@example.org")
        assert code == 530
        s.rset()
        s.login("alice", "secret")
        s.sendmail("alice@example.org", ["bob@example.net", "carol@example.net"], MESSAGE)
    (msg,) = backend_of(ctx).delivered
    assert msg.session.authenticated_user == "alice@example.org"
    assert msg.session.tls and msg.session.info.tls_version is not None
    assert b"with ESMTPSA id" in msg.data
    assert msg.session.info.tls_version.encode() in msg.data
    assert b"\tfor <" not in msg.data  # two recipients: no "for" clause


def test_submissions_implicit_tls_auth_login(start: Start, certs: Certificates) -> None:
    port, ctx = start("submissions", implicit_tls=True)
    with smtplib.SMTP_SSL("127.0.0.1", port, context=certs.client()) as s:
        s.ehlo("laptop")
        assert not s.has_extn("starttls")
        s.user, s.password = "alice", "secret"
        code, _ = s.auth("LOGIN", s.auth_login)
        assert code == 235
        s.sendmail("alice@example.org", ["bob@example.net"], MESSAGE)
    assert backend_of(ctx).delivered[0].session.listener == "submissions"


def test_auth_failure_is_delayed_counted_and_blocks(start: Start, certs: Certificates) -> None:
    throttle = AuthThrottle(ThrottleSettings(base_delay=0.01, max_delay=0.02, block_after=2))
    authenticator = FakeAuthenticator()
    port, _ = start(
        "submission",
        plaintext_auth_allowed=lambda ip: ip == "127.0.0.1",
        throttle=throttle,
        authenticator=authenticator,
    )
    with smtplib.SMTP("127.0.0.1", port) as s:
        s.ehlo("laptop")
        assert s.has_extn("auth")  # plaintext allowed for this client
        for _ in range(2):
            with pytest.raises(smtplib.SMTPAuthenticationError) as exc:
                s.login("alice", "wrong")
            assert exc.value.smtp_code == 535
        assert throttle.is_blocked("127.0.0.1")
        calls = authenticator.calls
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("alice", "secret")  # blocked: refused without checking
        assert authenticator.calls == calls


def test_scram_sha_256_final_message_as_334(start: Start, certs: Certificates) -> None:
    port, _ = start("submissions", implicit_tls=True)
    c = LineClient(port)
    try:
        c.starttls(certs.client())
        assert c.reply()[0].startswith("220 mx.test")
        c.command("EHLO raw")
        client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "secret")
        first = base64.b64encode(client.get_client_first().encode()).decode()
        (line,) = c.command(f"AUTH SCRAM-SHA-256 {first}")
        assert line.startswith("334 ")
        client.set_server_first(base64.b64decode(line[4:]).decode())
        final = base64.b64encode(client.get_client_final().encode()).decode()
        (line,) = c.command(final)
        assert line.startswith("334 ")  # server-final goes as a challenge (RFC 4954)
        client.set_server_final(base64.b64decode(line[4:]).decode())
        assert c.command("") == ["235 2.7.0 Authentication successful"]
    finally:
        c.close()


def test_starttls_injection_over_the_wire(start: Start, certs: Certificates) -> None:
    port, ctx = start("smtp")
    c = LineClient(port)
    try:
        c.reply()
        c.command("EHLO raw")
        c.send(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\nNOOP\r\n")
        assert c.reply() == ["220 2.0.0 Ready to start TLS"]
        c.starttls(certs.client())
        lines = c.command("EHLO raw")  # the first reply after the handshake is this one
        assert lines[0] == "250-mx.test"
        assert c.command("NOOP") == ["250 2.0.0 OK"]
    finally:
        c.close()
    assert backend_of(ctx).senders == []


def test_smuggling_over_the_wire(start: Start) -> None:
    port, ctx = start("smtp")
    c = LineClient(port)
    try:
        c.reply()
        c.command("HELO raw")
        c.command("MAIL FROM:<a@example.org>")
        c.command("RCPT TO:<b@example.org>")
        c.command("DATA")
        c.send(
            b"Subject: one\r\n\r\nx\n.\r\nMAIL FROM:<admin@example.org>\r\n"
            b"RCPT TO:<victim@example.org>\r\nDATA\r\nSubject: forged\r\n\r\n.\r\n"
        )
        assert c.reply() == ["550 5.6.0 Bare CR or LF in message content not allowed"]
        assert c.command("NOOP") == ["250 2.0.0 OK"]
    finally:
        c.close()
    assert [a for a, _ in backend_of(ctx).senders] == ["a@example.org"]
    assert backend_of(ctx).delivered == []


def test_large_message_spills_to_disk(start: Start, tmp_path: Path) -> None:
    port, ctx = start("smtp", limits=SmtpLimits(memory_spool=1024 * 1024))
    line = b"0123456789" * 7 + b"abcd\r\n"
    body = b"Subject: big\r\n\r\n" + line * (10 * 1024 * 1024 // len(line))
    with smtplib.SMTP("127.0.0.1", port) as s:
        s.sendmail("a@example.org", ["b@example.org"], body)
    (msg,) = backend_of(ctx).delivered
    assert msg.data.endswith(body) and len(msg.data) > 10_000_000
    assert msg.path is not None and msg.file_existed
    assert os.path.dirname(msg.path) == str(tmp_path)
    assert not os.path.exists(msg.path)  # deleted once the transaction ended
    assert list(tmp_path.iterdir()) == []


def test_size_limit_over_the_wire(start: Start) -> None:
    port, ctx = start("smtp", limits=SmtpLimits(message_size=1000))
    with smtplib.SMTP("127.0.0.1", port) as s:
        s.ehlo("c")
        assert s.esmtp_features["size"] == "1000"
        with pytest.raises(smtplib.SMTPSenderRefused) as exc:
            s.sendmail("a@example.org", ["b@example.org"], b"x" * 2000)  # SIZE=2000 declared
        assert exc.value.smtp_code == 552
        s.rset()
        # not declared: read to the end, then refused
        s.mail("a@example.org")
        s.rcpt("b@example.org")
        code, text = s.data(b"y" * 70 + b"\r\n" * 100 + b"z" * 2000)
        assert (code, text) == (552, b"5.3.4 Message size exceeds fixed maximum message size")
        assert s.noop()[0] == 250
    assert backend_of(ctx).delivered == []


def test_bdat_and_smtputf8_over_the_wire(start: Start) -> None:
    port, ctx = start("smtp")
    c = LineClient(port)
    try:
        c.reply()
        c.command("EHLO raw")
        c.send(
            "MAIL FROM:<jösé@exämple.org> SMTPUTF8 BODY=BINARYMIME\r\n"
            "RCPT TO:<用户@例子.广告>\r\nBDAT 5\r\n".encode()
            + b"ab\r\n\x00"
            + b"BDAT 3 LAST\r\n\xff\r\n"
        )
        assert c.reply() == ["250 2.1.0 Sender OK"]
        assert c.reply() == ["250 2.1.5 Recipient OK"]
        assert c.reply() == ["250 2.0.0 5 octets received"]
        assert c.reply()[0].startswith("250 2.0.0 Ok: queued as ")
        assert c.command("QUIT") == ["221 2.0.0 mx.test closing connection"]
        assert c.at_eof()
    finally:
        c.close()
    (msg,) = backend_of(ctx).delivered
    assert msg.data.endswith(b"\r\nab\r\n\x00\xff\r\n")
    assert b"with UTF8SMTP id" in msg.data
    assert "for <用户@例子.广告>".encode() in msg.data
    assert msg.envelope.mail_params.body == "BINARYMIME"


def test_command_timeout(start: Start) -> None:
    port, _ = start("smtp", limits=SmtpLimits(command_timeout=0.2))
    c = LineClient(port)
    try:
        c.reply()
        assert c.reply() == ["421 4.4.2 mx.test Timeout, closing connection"]
        assert c.at_eof()
    finally:
        c.close()


def test_data_timeout(start: Start) -> None:
    port, ctx = start("smtp", limits=SmtpLimits(command_timeout=5, data_timeout=0.2))
    c = LineClient(port)
    try:
        c.reply()
        c.command("HELO raw")
        c.command("MAIL FROM:<a@example.org>")
        c.command("RCPT TO:<b@example.org>")
        assert c.command("DATA")[0].startswith("354")
        c.send(b"Subject: slow\r\n")
        assert c.reply() == ["421 4.4.2 mx.test Timeout, closing connection"]
        assert c.at_eof()
    finally:
        c.close()
    assert backend_of(ctx).delivered == []


def test_client_disconnect_mid_data_cleans_spool(start: Start, tmp_path: Path) -> None:
    port, ctx = start("smtp", limits=SmtpLimits(memory_spool=1000))
    c = LineClient(port)
    try:
        c.reply()
        c.command("HELO raw")
        c.command("MAIL FROM:<a@example.org>")
        c.command("RCPT TO:<b@example.org>")
        c.command("DATA")
        c.send((b"x" * 70 + b"\r\n") * 30)
        for _ in range(200):  # the spool spilled to a file
            if list(tmp_path.iterdir()):
                break
            time.sleep(0.01)
        assert list(tmp_path.iterdir())
    finally:
        c.close()
    for _ in range(200):
        if not list(tmp_path.iterdir()):
            break
        time.sleep(0.01)
    assert list(tmp_path.iterdir()) == []
    assert backend_of(ctx).delivered == []


def test_tls_handshake_failure_closes(start: Start) -> None:
    port, _ = start("smtp")
    c = LineClient(port)
    try:
        c.reply()
        c.command("EHLO raw")
        assert c.command("STARTTLS") == ["220 2.0.0 Ready to start TLS"]
        c.send(b"this is not a TLS client hello\r\n" * 4)
        assert c.at_eof()
    finally:
        c.close()
