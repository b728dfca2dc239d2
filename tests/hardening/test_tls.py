"""TLS on every listener: implicit (submissions, imaps, pop3s) and STARTTLS (smtp,
submission, imap, pop3) accept only TLS 1.2+ with forward-secret AEAD suites; old
versions and weak suites offered by a deliberately weak client are refused. Commands
pipelined behind STARTTLS / STLS are thrown away, never run after the handshake
(CVE-2011-0411 and its IMAP/POP3 kin)."""

from __future__ import annotations

import logging
import socket
import ssl
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hardening_clients import Imap, LineClient, Pop3, Smtp
from harness import RunningServer, running_server

ALICE, PW = "alice@example.com", "alice password"
IMPLICIT = ("submissions", "imaps", "pop3s")
STARTTLS = ("smtp", "submission", "imap", "pop3")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("tls"), users={ALICE: PW}) as server:
        yield server


def client_context(*, version: ssl.TLSVersion | None = None,
                   ciphers: str | None = None) -> ssl.SSLContext:
    """A client that offers exactly ``version`` and ``ciphers`` (security level 0, so
    that OpenSSL itself does not veto the weak offers)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1 / TLSv1_1 names
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if version is not None:
            ctx.minimum_version = version
            ctx.maximum_version = version
        ctx.set_ciphers((ciphers or "ALL") + ":@SECLEVEL=0")
    return ctx


def upgrade(srv: RunningServer, kind: str) -> socket.socket:
    """A plaintext connection to ``kind`` taken to the point where the TLS handshake
    starts (right after connecting for implicit TLS)."""
    port = srv.ports[kind]
    if kind in IMPLICIT:
        return socket.create_connection(("127.0.0.1", port), 5)
    c: LineClient
    if kind in ("smtp", "submission"):
        c = Smtp(port)
        c.reply()
        c.cmd(b"EHLO client")
        assert c.cmd(b"STARTTLS")[0].startswith(b"220")
    elif kind == "imap":
        c = Imap(port)
        c.line()
        assert c.cmd(b"STARTTLS")[-1].split()[1] == b"OK"
    else:
        c = Pop3(port)
        c.line()
        assert c.cmd(b"STLS").startswith(b"+OK")
    return c.sock


def handshake(srv: RunningServer, kind: str, ctx: ssl.SSLContext) -> tuple[str, str] | None:
    """(version, cipher) when the server accepts, None when it refuses."""
    sock = upgrade(srv, kind)
    try:
        tls = ctx.wrap_socket(sock, server_hostname="localhost")
    except (ssl.SSLError, ConnectionError):
        sock.close()
        return None
    with tls:
        cipher = tls.cipher()
        assert tls.compression() is None
        assert cipher is not None
        return str(tls.version()), cipher[0]


def available(suites: str) -> bool:
    try:
        client_context(version=ssl.TLSVersion.TLSv1_2, ciphers=suites)
    except ssl.SSLError:  # not built into this OpenSSL: nothing to offer
        return False
    return True


WEAK_SUITES = [s for s in [
    "AES128-SHA",  # RSA key exchange, CBC, SHA-1
    "AES128-GCM-SHA256",  # RSA key exchange: no forward secrecy
    "ECDHE-RSA-AES128-SHA",  # CBC with SHA-1
    "ECDHE-RSA-AES256-SHA384",  # CBC
    "ECDHE-RSA-AES128-CCM:AES128-CCM8",  # not on the list (CCM, no FS)
    "DES-CBC3-SHA",  # 3DES (Sweet32)
    "NULL-SHA256",  # no encryption
    "ECDHE-RSA-NULL-SHA",
    "ADH-AES128-GCM-SHA256",  # no authentication
    "AECDH-AES128-SHA",
    "CAMELLIA128-SHA",
    "RC4-SHA",
] if available(s)]
OLD_VERSIONS = (ssl.TLSVersion.SSLv3, ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)
GOOD_TLS12 = "ECDHE-RSA-AES128-GCM-SHA256"


def test_the_weak_offers_are_really_made() -> None:
    assert len(WEAK_SUITES) >= 6, WEAK_SUITES


def accepts_only_strong(srv: RunningServer, kind: str, versions: tuple[ssl.TLSVersion, ...],
                        suites: list[str]) -> None:
    for version in versions:
        assert handshake(srv, kind, client_context(version=version)) is None, version
    for suite in suites:
        ctx = client_context(version=ssl.TLSVersion.TLSv1_2, ciphers=suite)
        assert handshake(srv, kind, ctx) is None, suite
    good = handshake(srv, kind, client_context(version=ssl.TLSVersion.TLSv1_2,
                                               ciphers=GOOD_TLS12))
    assert good == ("TLSv1.2", GOOD_TLS12)
    modern = handshake(srv, kind, client_context())
    assert modern is not None and modern[0] == "TLSv1.3"


@pytest.mark.slow
@pytest.mark.parametrize("kind", IMPLICIT + STARTTLS)
def test_only_tls12_and_up_with_strong_suites(srv: RunningServer, kind: str) -> None:
    accepts_only_strong(srv, kind, OLD_VERSIONS, WEAK_SUITES)


def test_failed_starttls_handshake_is_not_a_server_error(
        srv: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    """A client's failed handshake is the client's problem: no ERROR log (IMAP used to
    log a traceback per handshake and answer NO [SERVERBUG])."""
    caplog.set_level(logging.INFO)
    for kind in STARTTLS:
        assert handshake(srv, kind, client_context(version=ssl.TLSVersion.TLSv1)) is None
    time.sleep(0.2)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [(r.name, r.getMessage()) for r in errors]


def tls_client(sock: socket.socket, client: LineClient) -> None:
    client.sock = client_context().wrap_socket(sock, server_hostname="localhost")
    client.buf = b""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["smtp", "submission"])
def test_smtp_commands_pipelined_behind_starttls_are_dropped(srv: RunningServer,
                                                             kind: str) -> None:
    c = Smtp(srv.ports[kind])
    c.reply()
    c.cmd(b"EHLO client")
    c.send(b"STARTTLS\r\nMAIL FROM:<attacker@example.org>\r\nRSET\r\n")
    assert c.reply()[0].startswith(b"220")
    assert c.buf == b"", "the server answered the injected commands in plaintext"
    tls_client(c.sock, c)
    first = c.cmd(b"EHLO client")
    assert first[0].startswith(b"250-"), first  # nothing queued from the injection
    assert c.cmd(b"RCPT TO:<" + ALICE.encode() + b">")[0].startswith(b"503")  # no MAIL
    c.close()


@pytest.mark.slow
def test_imap_commands_pipelined_behind_starttls_are_dropped(srv: RunningServer) -> None:
    c = Imap(srv.ports["imap"])
    c.line()
    c.send(b"s1 STARTTLS\r\ns2 LOGIN " + ALICE.encode() + b' "' + PW.encode() + b'"\r\n')
    assert c.until(b"s1")[-1].split()[1] == b"OK"
    tls_client(c.sock, c)
    lines = c.cmd(b"NOOP")
    assert not any(ln.startswith(b"s2 ") for ln in lines), lines
    assert c.cmd(b"SELECT INBOX")[-1].split()[1] in (b"BAD", b"NO")  # not logged in
    c.close()


@pytest.mark.slow
def test_pop3_commands_pipelined_behind_stls_are_dropped(srv: RunningServer) -> None:
    c = Pop3(srv.ports["pop3"])
    c.line()
    c.send(b"STLS\r\nUSER " + ALICE.encode() + b"\r\n")
    assert c.line().startswith(b"+OK")
    tls_client(c.sock, c)
    assert c.cmd(b"PASS " + PW.encode()).startswith(b"-ERR")  # the USER never counted
    assert c.cmd(b"USER " + ALICE.encode()).startswith(b"+OK")
    assert c.cmd(b"PASS " + PW.encode()).startswith(b"+OK")
    c.close()


def test_tls_certificate_files_are_private(srv: RunningServer) -> None:
    key = Path(srv.data_dir) / "tls" / "key.pem"
    assert key.exists() and key.stat().st_mode & 0o077 == 0
