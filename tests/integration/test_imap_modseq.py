"""Mod-sequence rules (RFC 7162) that the Dovecot comparison cannot check, because the two
servers number mod-sequences differently (``imap_diff.py`` compares them as opaque)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import RunningServer, running_server

BOB, PW = "bob@example.com", "bob password 1"


class Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.n = 0
        self.file.readline()

    def __call__(self, command: str) -> list[str]:
        self.n += 1
        tag = f"m{self.n}"
        self.sock.sendall(f"{tag} {command}\r\n".encode())
        out = []
        while True:
            line = self.file.readline().decode().rstrip("\r\n")
            out.append(line)
            if line.startswith(tag + " ") or not line:
                return out

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def modseqs(lines: list[str]) -> dict[int, int]:
    """UID -> MODSEQ from FETCH responses."""
    out = {}
    for ln in lines:
        m = re.search(r"UID (\d+).*MODSEQ \((\d+)\)", ln)
        if m:
            out[int(m.group(1))] = int(m.group(2))
    return out


def highest(lines: list[str]) -> int:
    m = re.search(r"HIGHESTMODSEQ (\d+)", "\n".join(lines))
    assert m, lines
    return int(m.group(1))


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Client]:
    with running_server(tmp_path, listeners=("imap",), users={BOB: PW}) as s:
        put(s, 4)
        client = Client(s.ports["imap"])
        client(f'LOGIN {BOB} "{PW}"')
        client("ENABLE QRESYNC")
        yield client
        client.close()


def put(srv: RunningServer, count: int) -> None:
    user = srv.call(srv.store.get_user(BOB))
    for n in range(count):
        srv.call(srv.store.append(user.id, "INBOX", b"Subject: %d\r\n\r\nx\r\n" % n))


def test_every_change_raises_highestmodseq_above_what_was_seen(c: Client) -> None:
    start = highest(c("SELECT INBOX"))
    before = modseqs(c("UID FETCH 1:* (MODSEQ)"))
    assert max(before.values()) <= start  # section 3.1.2.1: the highest of them all
    after_store = modseqs(c("UID STORE 2 +FLAGS (\\Seen)"))
    assert after_store[2] > start  # section 3.1.3: a change gets a new, higher modseq
    status = highest(c("STATUS INBOX (HIGHESTMODSEQ)"))
    assert status == after_store[2]
    c("UID STORE 2 +FLAGS.SILENT (\\Seen)")  # no change: no new modseq
    assert highest(c("STATUS INBOX (HIGHESTMODSEQ)")) == status
    c("UID STORE 3 +FLAGS.SILENT (\\Deleted)")
    expunge = c("EXPUNGE")
    assert expunge[0] == "* VANISHED 3"
    assert highest(expunge) > status  # an expunge is a change too (section 3.2.10)


def test_changedsince_returns_exactly_the_changed_messages(c: Client) -> None:
    mark = highest(c("SELECT INBOX"))
    c("UID STORE 1,4 +FLAGS (\\Flagged)")
    got = modseqs(c(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {mark})"))
    assert set(got) == {1, 4}
    later = max(got.values())
    assert modseqs(c(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {later})")) == {}


def test_unchangedsince_guards_against_lost_updates(c: Client) -> None:
    c("SELECT INBOX")
    seen = modseqs(c("UID FETCH 1:2 (MODSEQ)"))
    c("UID STORE 1 +FLAGS (\\Answered)")  # someone changed message 1 since
    out = c(f"UID STORE 1:2 (UNCHANGEDSINCE {max(seen.values())}) +FLAGS (\\Flagged)")
    assert re.match(r"m\d+ OK \[MODIFIED 1\]", out[-1]), out
    flags = c("UID FETCH 1:2 (FLAGS)")
    assert "\\Flagged" not in flags[0] and "\\Flagged" in flags[1]


def test_qresync_resync_after_reconnect_sees_what_happened(c: Client) -> None:
    sel = c("SELECT INBOX")
    uidvalidity = re.search(r"UIDVALIDITY (\d+)", "\n".join(sel))
    assert uidvalidity
    mark = highest(sel)
    c("UID STORE 1 +FLAGS (\\Seen)")
    c("UID STORE 2 +FLAGS.SILENT (\\Deleted)")
    c("UID EXPUNGE 2")
    c("UNSELECT")
    out = c(f"SELECT INBOX (QRESYNC ({uidvalidity.group(1)} {mark}))")
    assert "* VANISHED (EARLIER) 2" in out
    assert list(modseqs(out)) == [1]
