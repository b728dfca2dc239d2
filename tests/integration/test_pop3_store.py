"""POP3 on the real store through the whole App: poplib against a running server."""

from __future__ import annotations

import poplib
import time
from pathlib import Path

from harness import running_server

from postroom.services import uidl_for
from postroom.store.models import SEEN, Flags

USER, PASSWORD = "bob@example.com", "bob password 1"


def msg(i: int) -> bytes:
    return (f"From: a@example.org\r\nTo: {USER}\r\nSubject: m{i}\r\n\r\n"
            f"body {i}\r\n.leading dot\r\n").encode()


def test_pop3_reads_deletes_and_keeps_uidl_stable(tmp_path: Path) -> None:
    with running_server(tmp_path, listeners=("pop3",), users={USER: PASSWORD}) as srv:
        user = srv.call(srv.store.get_user(USER))
        for i in range(3):
            srv.call(srv.store.append(user.id, "INBOX", msg(i)))
        inbox = srv.call(srv.store.get_mailbox(user.id, "INBOX"))

        p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=10)
        p.user(USER)
        p.pass_(PASSWORD)
        assert p.stat() == (3, 3 * len(msg(0)))
        _, lines, _ = p.retr(2)
        assert b"\r\n".join(lines) + b"\r\n" == msg(1)
        uidls = [x.split()[1].decode() for x in p.uidl()[1]]
        assert uidls == [uidl_for(inbox.uidvalidity, u) for u in (1, 2, 3)]
        # another client's IMAP-side flag change does not disturb UIDL
        srv.call(srv.store.store_flags(inbox.id, [1], "add", Flags(SEEN)))
        # a message arriving during the session is not shown (RFC 1939: frozen maildrop)
        srv.call(srv.store.append(user.id, "INBOX", msg(9)))
        assert p.stat()[0] == 3
        # one POP3 session per maildrop
        p2 = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=10)
        p2.user(USER)
        try:
            p2.pass_(PASSWORD)
            raise AssertionError("second session got the maildrop")
        except poplib.error_proto as e:
            assert b"[IN-USE]" in e.args[0]
        p2.quit()
        p.dele(1)
        p.quit()
        uids = [e.uid for e in srv.call(srv.store.list_entries(inbox.id))]
        assert uids == [2, 3, 4]
        # a dropped connection deletes nothing
        p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=10)
        p.user(USER)
        p.pass_(PASSWORD)
        assert p.uidl(1).split()[2].decode() == uidls[1]
        p.dele(1)
        p.file.close()
        p.sock.close()
        # the lock is released as soon as the server sees the connection drop
        deadline = time.monotonic() + 5
        while True:
            p2 = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=10)
            p2.user(USER)
            try:
                p2.pass_(PASSWORD)
                break
            except poplib.error_proto:
                p2.quit()
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert p2.stat()[0] == 3
        p2.quit()


def test_pop3_wrong_password_is_refused(tmp_path: Path) -> None:
    with running_server(tmp_path, listeners=("pop3",), users={USER: PASSWORD}) as srv:
        p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=10)
        p.user(USER)
        try:
            p.pass_("wrong password")
            raise AssertionError("accepted a wrong password")
        except poplib.error_proto as e:
            assert e.args[0].startswith(b"-ERR [AUTH]")
        p.quit()
