"""SMTP on the real store through the whole App: MX, submission, relay refusal."""

from __future__ import annotations

import smtplib
import ssl
from pathlib import Path

import pytest
from harness import running_server

BOB, ANN = "bob@example.com", "ann@example.com"
PASSWORDS = {BOB: "bob password 1", ANN: "ann password 1"}
MSG = b"From: x@remote.test\r\nTo: bob@example.com\r\nSubject: hi\r\n\r\nHello.\r\n"


def inbox(srv, address: str) -> list[bytes]:  # type: ignore[no-untyped-def]
    user = srv.call(srv.store.get_user(address))
    mb = srv.call(srv.store.get_mailbox(user.id, "INBOX"))
    return [srv.call(srv.store.read_message(e.message_id))
            for e in srv.call(srv.store.list_entries(mb.id))]


def test_mx_delivers_locally_and_refuses_relay(tmp_path: Path) -> None:
    with running_server(tmp_path, listeners=("smtp",), users=PASSWORDS) as srv:
        srv.call(srv.store.add_alias("team@example.com", [BOB, ANN]))
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as s:
            s.ehlo("client.remote.test")
            assert "auth" not in s.esmtp_features  # no AUTH on the MX by default
            refused = s.sendmail("x@remote.test", ["team@example.com", "nobody@example.com",
                                                   "Bob+news@Example.com"], MSG)
            assert refused == {"nobody@example.com": (550, b"5.1.1 <nobody@example.com>: "
                                                           b"no such user here")}
            code, text = s.docmd("MAIL", "FROM:<x@remote.test>")
            assert code == 250
            code, text = s.docmd("RCPT", "TO:<victim@elsewhere.test>")
            assert (code, text[:5]) == (550, b"5.7.1")
            s.rset()
        bob, ann = inbox(srv, BOB), inbox(srv, ANN)
        assert len(bob) == 1 and len(ann) == 1  # one copy per user, even via two addresses
        assert bob[0].startswith(b"Return-Path: <x@remote.test>\r\nReceived: from "
                                 b"client.remote.test")
        assert bob[0].endswith(MSG)


def test_submission_requires_auth_and_owned_sender_and_queues_remote(tmp_path: Path) -> None:
    # remote.test leads to a closed port: the queue runner's first attempt defers the
    # recipient (it stays pending) rather than bouncing it before the test looks.
    closed = {"relay": {"routes": {"remote.test": "127.0.0.1:9"}}}
    with running_server(tmp_path, listeners=("submission",), users=PASSWORDS,
                        extra=closed) as srv:
        with smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=10) as s:
            s.starttls(context=ssl._create_unverified_context())
            s.ehlo("laptop")
            code, _ = s.docmd("MAIL", "FROM:<bob@example.com>")
            assert code == 530
            s.login(BOB, PASSWORDS[BOB])
            with pytest.raises(smtplib.SMTPSenderRefused) as e:
                s.sendmail(ANN, [ANN], MSG)
            assert e.value.smtp_code == 553
            s.sendmail("bob+lists@example.com", [ANN, "carol@remote.test"],
                       b"Subject: no id\r\n\r\nbody\r\n")
        ann = inbox(srv, ANN)
        assert len(ann) == 1
        assert b"\r\nMessage-ID: <" in ann[0] and b"\r\nDate: " in ann[0]
        assert b"with ESMTPSA" in ann[0]
        queued = srv.call(srv.store.list_queue())
        assert [r.address for r in queued[0].recipients] == ["carol@remote.test"]
        assert queued[0].mail_from == "bob+lists@example.com"


def test_quota_answered_at_rcpt(tmp_path: Path) -> None:
    with running_server(tmp_path, listeners=("smtp",), users=PASSWORDS) as srv:
        srv.call(srv.store.set_quota(BOB, 1000))
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as s:
            s.ehlo("client.remote.test")
            # declared size larger than the whole quota: permanent
            assert s.docmd("MAIL", "FROM:<x@remote.test> SIZE=5000")[0] == 250
            code, text = s.docmd("RCPT", f"TO:<{BOB}>")
            assert (code, text[:5]) == (552, b"5.2.2")
            s.rset()
            # fits the quota: accepted; then the mailbox is full: temporary
            s.sendmail("x@remote.test", [BOB], b"Subject: a\r\n\r\n" + b"x" * 500 + b"\r\n")
            assert s.docmd("MAIL", "FROM:<x@remote.test> SIZE=400")[0] == 250
            code, text = s.docmd("RCPT", f"TO:<{BOB}>")
            assert (code, text[:5]) == (452, b"4.2.2")
