"""IMAP through the whole App on the real store: sessions that see each other, IDLE,
and POP3 on the same INBOX."""

from __future__ import annotations

import imaplib
import poplib
import re
import smtplib
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from harness import running_server

BOB, PW = "bob@example.com", "bob password 1"
MSG = (b"From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: hi\r\n"
       b"Message-ID: <m@x>\r\n\r\nHello.\r\n")


class Raw:
    """A raw IMAP connection: send a command, read up to its tagged answer."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.n = 0
        self.greeting = self.line()

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def cmd(self, text: str) -> list[bytes]:
        self.n += 1
        tag = f"t{self.n}"
        self.sock.sendall(f"{tag} {text}\r\n".encode())
        out = []
        while True:
            ln = self.line()
            out.append(ln)
            if ln.startswith(tag.encode() + b" "):
                return out

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def srv(tmp_path: Path) -> Any:
    with running_server(tmp_path, listeners=("smtp", "imap", "pop3"), users={BOB: PW}) as s:
        yield s


def append(srv: Any, n: int = 1) -> None:
    user = srv.call(srv.store.get_user(BOB))
    for _ in range(n):
        srv.call(srv.store.append(user.id, "INBOX", MSG))


def test_two_sessions_see_each_others_changes_at_allowed_moments(srv: Any) -> None:
    append(srv, 3)
    a, b = Raw(srv.ports["imap"]), Raw(srv.ports["imap"])
    for c in (a, b):
        assert c.cmd(f'LOGIN {BOB} "{PW}"')[-1].split()[1] == b"OK"
    sel_a = a.cmd("SELECT INBOX")
    assert b"* 3 EXISTS" in sel_a and b"* 3 RECENT" in sel_a
    sel_b = b.cmd("SELECT INBOX")
    assert b"* 0 RECENT" in sel_b  # exactly one session gets \Recent
    a.cmd("STORE 2 +FLAGS (\\Deleted \\Flagged)")
    noop = b.cmd("NOOP")
    assert any(re.match(rb"\* 2 FETCH \(.*FLAGS \(\\Flagged \\Deleted\)", ln) or
               re.match(rb"\* 2 FETCH \(.*FLAGS \(\\Deleted \\Flagged\)", ln) for ln in noop), noop
    # message 2 was \Recent for A: the new count follows (RFC 3501 section 7.3.2)
    assert a.cmd("EXPUNGE")[:-1] == [b"* 2 EXPUNGE", b"* 2 RECENT"]
    # no EXPUNGE while B fetches: its sequence numbers stay valid
    fetch = b.cmd("FETCH 1:3 (UID)")
    assert not any(b"EXPUNGE" in ln for ln in fetch)
    assert b"* 3 FETCH (UID 3)" in fetch
    noop = b.cmd("NOOP")
    assert b"* 2 EXPUNGE" in noop
    # a message delivered to INBOX: EXISTS for both, \Recent for one of them
    append(srv)
    na, nb = a.cmd("NOOP"), b.cmd("NOOP")
    assert b"* 3 EXISTS" in na and b"* 3 EXISTS" in nb
    # A had 1 and 3 as \Recent since its SELECT; it claimed the new one: 3. B: none.
    assert b"* 3 RECENT" in na and b"* 0 RECENT" in nb
    for c in (a, b):
        c.cmd("LOGOUT")
        c.close()


def test_idle_reports_smtp_delivery_within_a_second(srv: Any) -> None:
    c = Raw(srv.ports["imap"])
    c.cmd(f'LOGIN {BOB} "{PW}"')
    c.cmd("SELECT INBOX")
    c.sock.sendall(b"i1 IDLE\r\n")
    assert c.line().startswith(b"+ ")
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as s:
        s.sendmail("alice@example.org", [BOB], MSG)
        acked = time.monotonic()
    assert c.line() == b"* 1 EXISTS"
    assert time.monotonic() - acked < 1.0
    c.sock.sendall(b"DONE\r\n")
    rest = [c.line() for _ in range(2)]
    assert rest[-1].startswith(b"i1 OK") or rest[0].startswith(b"i1 OK")
    c.close()


def test_imap_and_pop3_on_the_same_inbox(srv: Any) -> None:
    append(srv, 2)
    m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    m.login(BOB, PW)
    m.select("INBOX")
    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=10)
    p.user(BOB)
    p.pass_(PW)  # an IMAP session on the INBOX does not block POP3
    assert p.stat()[0] == 2
    p.dele(1)
    p.quit()
    typ, _ = m.noop()
    assert typ == "OK" and m.untagged_responses.get("EXPUNGE") == [b"1"]
    m.store("1", "+FLAGS", "(\\Seen)")
    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=10)
    p.user(BOB)
    p.pass_(PW)
    assert p.stat()[0] == 1  # flags do not hide messages from POP3
    p.quit()
    m.logout()


def test_logindisabled_without_tls_then_starttls(tmp_path: Path) -> None:
    with running_server(tmp_path, listeners=("imap",), users={BOB: PW}, plaintext=False) as s:
        c = Raw(s.ports["imap"])
        assert b"LOGINDISABLED" in c.greeting and b"STARTTLS" in c.greeting
        assert c.cmd(f'LOGIN {BOB} "{PW}"')[-1].split()[1] == b"NO"
        c.close()
        m = imaplib.IMAP4("127.0.0.1", s.ports["imap"])
        m.starttls(ssl._create_unverified_context())
        assert "AUTH=PLAIN" in m.capabilities
        assert m.login(BOB, PW)[0] == "OK"
        m.logout()


def test_bad_input_gets_bad_and_the_session_continues(srv: Any) -> None:
    c = Raw(srv.ports["imap"])
    assert c.cmd("FROB")[-1].split()[1] == b"BAD"
    assert c.cmd("SELECT INBOX")[-1].split()[1] == b"BAD"  # not authenticated yet
    c.cmd(f'LOGIN {BOB} "{PW}"')
    assert c.cmd("SELECT Nope")[-1].startswith(b"t4 NO [NONEXISTENT]")
    c.cmd("SELECT INBOX")
    assert c.cmd("FETCH 1 (FLAGS)")[-1].split()[1] == b"BAD"  # empty mailbox: no message 1
    c.sock.sendall(b"t9 APPEND INBOX {999999999}\r\n")
    assert c.line().startswith(b"t9 NO [TOOBIG]")
    assert c.cmd("NOOP")[-1].split()[1] == b"OK"
    c.close()


def test_flag_only_fetches_use_the_same_syntax(srv: Any) -> None:
    """The fast path for UID/FLAGS/MODSEQ-only FETCH answers exactly like the general
    path (which a body item forces)."""
    append(srv, 3)
    c = Raw(srv.ports["imap"])
    c.cmd(f'LOGIN {BOB} "{PW}"')
    c.cmd("SELECT INBOX (CONDSTORE)")
    c.cmd("STORE 2 +FLAGS.SILENT (\\Seen $Work)")
    fast = c.cmd("UID FETCH 1:* (FLAGS MODSEQ)")
    general = c.cmd("UID FETCH 1:* (FLAGS MODSEQ BODY.PEEK[HEADER.FIELDS (X-NONE)])")
    # the general lines end with the body literal: "... MODSEQ (n) BODY[...] {2}", CRLF,
    # CRLF, ")"; without the body item they must equal the fast lines
    strip = [re.sub(rb" BODY\[HEADER\.FIELDS \(X-NONE\)\] \{2\}$", b")", ln)
             for ln in general[:-1] if ln.startswith(b"* ")]
    assert fast[:-1] == strip
    assert fast[1].startswith(b"* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent $Work) MODSEQ (")
    plain = c.cmd("FETCH 3 (FLAGS)")
    assert plain[0].startswith(b"* 3 FETCH (FLAGS (\\Recent)")
    c.close()
