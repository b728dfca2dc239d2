"""Postfix (Debian package, a private instance on loopback) as a remote peer, both ways:
Postroom's relay delivers to it, and it delivers to Postroom's MX."""

from __future__ import annotations

import smtplib
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from harness import running_server
from interop_helpers import require

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from peers import Postfix, free_port

pytestmark = [pytest.mark.interop, pytest.mark.slow]

BOB, PW = "bob@example.com", "bob password 1"
CAROL = "carol@remote.test"


def wait(pred: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_postroom_relays_to_postfix_and_postfix_delivers_to_postroom(tmp_path: Path) -> None:
    require("postfix")
    mx_port = free_port()
    with Postfix([CAROL], transports={"example.com": f"127.0.0.1:{mx_port}"}) as pf, \
            running_server(tmp_path, listeners=("smtp", "submission"), users={BOB: PW},
                           extra={"listen": {"smtp": [f"127.0.0.1:{mx_port}"]},
                                  "relay": {"routes": {
                                      "remote.test": f"127.0.0.1:{pf.smtp_port}"}}}) as srv:
        # Postroom -> Postfix: a user submits to a remote address
        with smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=10) as s:
            s.starttls(context=ssl._create_unverified_context())
            s.login(BOB, PW)
            s.sendmail(BOB, [CAROL], b"From: bob@example.com\r\nTo: carol@remote.test\r\n"
                       b"Subject: to postfix\r\n\r\nHi Carol.\r\n")
        wait(lambda: pf.delivered(CAROL) == 1)
        stored = next((pf.maildir(CAROL) / "new").iterdir()).read_bytes()
        assert b"Subject: to postfix" in stored and b"by mx.example.com" in stored
        wait(lambda: srv.call(srv.store.list_queue()) == [])
        # Postfix -> Postroom: mail handed to Postfix for example.com reaches Bob
        with smtplib.SMTP("127.0.0.1", pf.smtp_port, timeout=10) as s:
            s.sendmail(CAROL, [BOB], b"From: carol@remote.test\r\nTo: bob@example.com\r\n"
                       b"Subject: from postfix\r\n\r\nHi Bob.\r\n")
        user = srv.call(srv.store.get_user(BOB))
        inbox = srv.call(srv.store.get_mailbox(user.id, "INBOX"))
        wait(lambda: len(srv.call(srv.store.list_entries(inbox.id))) == 1)
        entry = srv.call(srv.store.list_entries(inbox.id))[0]
        body = srv.call(srv.store.read_message(entry.message_id))
        assert b"Subject: from postfix" in body and b"Return-Path: <carol@remote.test>" in body
