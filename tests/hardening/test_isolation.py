"""Isolation between accounts: alice tries every name trick to reach bob's mail over
IMAP, POP3, SMTP AUTH and the command line. Bob's messages carry a token that must
never appear in anything alice receives; bob's mailboxes must be unchanged after her
attempts, and nothing may be written outside the data directory."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hardening_clients import Imap, Pop3, Smtp
from harness import RunningServer, running_server

from postroom import services
from postroom.auth.throttle import AuthThrottle, ThrottleSettings

ALICE, ALICE_PW = "alice@example.com", "alice password"
BOB, BOB_PW = "bob@example.com", "bob's password"
TOKEN = b"BOB-SECRET-7f3a"


def imap_quote(name: bytes) -> bytes:
    """A literal when the name cannot be a quoted string (NUL, CR, LF, 8-bit)."""
    if any(b in name for b in b"\x00\r\n") or not name.isascii():
        return b"{%d+}\r\n%s" % (len(name), name)
    return b'"' + name.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


NAME_TRICKS = [
    b"../bob@example.com/INBOX", b"..", b"../..", b"../../..", b"/bob@example.com/INBOX",
    b"bob@example.com/INBOX", b"bob@example.com", b"bob", b"~bob/INBOX",
    b"~bob@example.com/INBOX", b"#shared/bob/INBOX", b"#users/bob/INBOX", b"#public/INBOX",
    b"Other Users/bob/INBOX", b"shared/bob@example.com/INBOX", b"%2e%2e/bob/INBOX",
    b"..%2fbob@example.com%2fINBOX", b"INBOX/../../bob@example.com/INBOX",
    b"INBOX\x00../bob@example.com/INBOX", b"\x00", b"/etc/passwd", b"/", b"//INBOX",
    b"\\..\\bob", b"&AC4ALg-/bob@example.com/INBOX", b"&AC8-bob", b"&" + b"A" * 2000 + b"-",
    b"&Jjo", b"Private", b"private", b"INBOX/Private", b"inbox", b"InBoX", b"INBOX.",
    b"INBOX/", b"*", b"%", b"\xc3\xa9/../bob", b"x" * 5000,
]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("isolation")
    with pytest.MonkeyPatch.context() as mp:  # failed logins answered without delay
        mp.setattr(services, "AuthThrottle", lambda: AuthThrottle(ThrottleSettings(
            base_delay=0.0, max_delay=0.0, block_after=10_000)))
        with running_server(tmp, listeners=("smtp", "submission", "imap", "pop3"),
                            users={ALICE: ALICE_PW, BOB: BOB_PW}) as server:
            yield from provision(server)


def provision(server: RunningServer) -> Iterator[RunningServer]:
    """Bob: three messages in INBOX and one in Private, each carrying TOKEN; alice: one
    message of her own."""
    bob = Imap(server.ports["imap"])
    bob.line()
    bob.login(BOB, BOB_PW)
    bob.cmd(b"CREATE Private")
    for box in (b"INBOX", b"INBOX", b"INBOX", b"Private"):
        body = b"Subject: " + TOKEN + b"\r\n\r\n" + TOKEN + b"\r\n"
        bob.send(b"b APPEND %s {%d}\r\n" % (box, len(body)))
        bob.line()
        bob.send(body + b"\r\n")
        assert bob.until(b"b")[-1].startswith(b"b OK")
    bob.close()
    alice = Imap(server.ports["imap"])
    alice.line()
    alice.login(ALICE, ALICE_PW)
    body = b"Subject: alice's own\r\n\r\nmine\r\n"
    alice.send(b"a APPEND INBOX {%d}\r\n" % len(body))
    alice.line()
    alice.send(body + b"\r\n")
    assert alice.until(b"a")[-1].startswith(b"a OK")
    alice.close()
    yield server


def bob_state(srv: RunningServer) -> list[bytes]:
    bob = Imap(srv.ports["imap"])
    bob.line()
    bob.login(BOB, BOB_PW)
    state = [ln for ln in bob.cmd(b'LIST "" "*"') if ln.startswith(b"* LIST")]
    for box in (b"INBOX", b"Private"):
        state += [ln for ln in bob.cmd(b"STATUS " + box + b" (MESSAGES UIDNEXT)")
                  if ln.startswith(b"* STATUS")]
    bob.close()
    return state


def files_outside(data_dir: Path) -> set[Path]:
    top = data_dir.parent
    return {p for p in top.rglob("*") if data_dir not in p.parents and p != data_dir}


@pytest.mark.slow
def test_imap_names_never_reach_another_account(srv: RunningServer) -> None:
    before = bob_state(srv)
    outside = files_outside(srv.data_dir)
    seen: list[bytes] = []
    for name in NAME_TRICKS:
        q = imap_quote(name)
        # a new session per name: 20 BAD answers end a session (ImapContext.max_errors)
        alice = Imap(srv.ports["imap"])
        alice.line()
        alice.login(ALICE, ALICE_PW)
        for command in (b"SELECT " + q, b"EXAMINE " + q, b"STATUS " + q + b" (MESSAGES SIZE)",
                        b'LIST "" ' + q, b"LIST " + q + b' "*"', b"LSUB " + q + b' "*"',
                        b"SUBSCRIBE " + q, b"CREATE " + q, b"RENAME " + q + b" stolen",
                        b"DELETE " + q, b"APPEND " + q + b" {5+}\r\nhello",
                        b'LIST (SUBSCRIBED) "" ' + q + b" RETURN (STATUS (MESSAGES))"):
            lines = alice.cmd(command)
            seen += lines
            if lines[-1].split()[1] == b"OK" and command.startswith((b"SELECT", b"EXAMINE")):
                seen += alice.cmd(b"FETCH 1:* (BODY.PEEK[] ENVELOPE)")
                seen += alice.cmd(b"UID FETCH 1:4294967295 (BODY.PEEK[])")
                alice.cmd(b"UNSELECT")
        alice.close()
    assert not any(TOKEN in line for line in seen), "bob's mail reached alice"
    assert bob_state(srv) == before, "alice changed bob's mailboxes"
    assert files_outside(srv.data_dir) == outside, "a file was written outside data_dir"
    assert not any(b"SERVERBUG" in line for line in seen), "name tricks hit internal errors"


@pytest.mark.slow
def test_imap_uids_of_another_account_are_not_addressable(srv: RunningServer) -> None:
    """Bob's UIDs (1 to 3 in his INBOX) mean nothing in alice's INBOX: COPY, MOVE,
    FETCH and STORE of them act on her messages only."""
    before = bob_state(srv)
    alice = Imap(srv.ports["imap"])
    alice.line()
    alice.login(ALICE, ALICE_PW)
    alice.cmd(b"SELECT INBOX")
    seen: list[bytes] = []
    for command in (b"UID FETCH 1:10 (BODY.PEEK[] UID)", b"UID COPY 2:3 Trash",
                    b"UID MOVE 2:3 Trash", b"UID STORE 2:3 +FLAGS (\\Deleted)",
                    b"UID EXPUNGE 2:3", b"FETCH 1:* (BODY.PEEK[])", b"UID SEARCH TEXT " + TOKEN,
                    b"UID COPY 1:* bob@example.com/INBOX", b"UID COPY 1:* ../bob@example.com/INBOX"):
        seen += alice.cmd(command)
    alice.cmd(b"SELECT Trash")
    seen += alice.cmd(b"FETCH 1:* (BODY.PEEK[])")
    assert not any(TOKEN in line for line in seen)
    assert bob_state(srv) == before
    alice.close()


@pytest.mark.slow
def test_pop3_and_sasl_identities_cannot_name_another_account(srv: RunningServer) -> None:
    """Wrong user names with alice's password, NUL and path tricks in USER, and SASL
    PLAIN with bob as the authorization identity: never bob's maildrop."""
    users = (BOB.encode(), b"../" + BOB.encode(), ALICE.encode() + b"\x00" + BOB.encode(),
             BOB.encode() + b"\x00", b"BOB@EXAMPLE.COM", b"bob@example.com/../alice")
    for n, user in enumerate(users, start=1):  # each from its own address: no login delay
        p = Pop3(srv.ports["pop3"], f"127.0.14.{n}")
        p.line()
        p.cmd(b"USER " + user)
        assert not p.cmd(b"PASS " + ALICE_PW.encode()).startswith(b"+OK"), user
        p.close()
    plain = base64.b64encode(BOB.encode() + b"\0" + ALICE.encode() + b"\0" + ALICE_PW.encode())
    p = Pop3(srv.ports["pop3"])
    p.line()
    if p.cmd(b"AUTH PLAIN " + plain).startswith(b"+OK"):  # then it is alice's maildrop
        listing = p.multi(b"LIST")
        for n in range(1, len(listing) - 1):
            assert TOKEN not in b"\n".join(p.multi(b"RETR %d" % n))
    p.close()
    i = Imap(srv.ports["imap"])
    i.line()
    if i.cmd(b"AUTHENTICATE PLAIN " + plain)[-1].split()[1] == b"OK":
        i.cmd(b"SELECT INBOX")
        assert not any(TOKEN in ln for ln in i.cmd(b"FETCH 1:* (BODY.PEEK[])"))
    i.close()
    s = Smtp(srv.ports["submission"])
    s.reply()
    s.cmd(b"EHLO x")
    if s.cmd(b"AUTH PLAIN " + plain)[0].startswith(b"235"):  # authenticated as alice
        assert s.cmd(b"MAIL FROM:<" + BOB.encode() + b">")[0].startswith(b"553")
    s.close()


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, POSTROOM_CONFIG=str(config), PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run([sys.executable, "-m", "postroom", *args], capture_output=True,
                          text=True, env=env, timeout=60)


@pytest.mark.slow
def test_cli_names_stay_inside(srv: RunningServer) -> None:
    """Administrative commands given path-like names fail with one line, show nothing
    of another account, and write nothing outside the data directory."""
    config = srv.data_dir.parent / "isolation.toml"
    config.write_text(f'data_dir = "{srv.data_dir}"\nhostname = "mx.example.com"\n')
    outside = files_outside(srv.data_dir)
    for args in (("mailbox", "list", "../" + BOB), ("mailbox", "list", ALICE + "/../" + BOB),
                 ("mailbox", "list", BOB + "\x01"), ("user", "add", "../evil@example.com",
                                                     "--password-stdin"),
                 ("dkim", "generate", "../../evil.test"),
                 ("dkim", "generate", "example.com", "--selector", "../../../evil")):
        r = cli(config, *args)
        assert r.returncode != 0, (args, r.stdout)
        assert "Traceback" not in r.stderr and TOKEN.decode() not in r.stdout, r.stderr
    assert files_outside(srv.data_dir) - outside <= {config}


def test_imap_delete_inbox_with_separator(srv: RunningServer) -> None:
    """``INBOX/`` is INBOX to the store, whose refusal used to escape as SERVERBUG."""
    alice = Imap(srv.ports["imap"])
    alice.line()
    alice.login(ALICE, ALICE_PW)
    answer = alice.cmd(b'DELETE "INBOX/"')[-1]
    alice.close()
    assert b"SERVERBUG" not in answer and answer.split()[1] == b"NO"
