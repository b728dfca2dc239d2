"""Two Postroom instances on 127.0.0.2:25 and 127.0.0.3:25 with a DNS server on
loopback serving their MX records: a user of A submits, a user of B receives it,
DKIM-signed by A (issue: outbound delivery, Tests)."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dkim as dkimpy
import pytest
from harness import running_server

from postroom import dkim
from postroom.dns.testserver import LoopbackDnsServer

ALICE, BOB = "alice@a.test", "bob@b.test"
PW = "long enough password"


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def dns_server(zone: dict[str, dict[str, list[str]]]) -> Iterator[LoopbackDnsServer]:
    loop = asyncio.new_event_loop()
    server = LoopbackDnsServer(zone)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    ready.wait(10)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        t.join(10)
        loop.close()


@pytest.mark.slow
def test_two_instances_deliver_to_each_other_with_dkim(tmp_path: Path) -> None:
    deadline = time.monotonic() + 20  # a server of an earlier test may still be closing
    while not (port_free("127.0.0.2", 25) and port_free("127.0.0.3", 25)):
        if time.monotonic() > deadline:
            pytest.fail("port 25 on 127.0.0.2/127.0.0.3 is taken")
        time.sleep(0.2)
    keys_dir = tmp_path / "a" / "data" / "dkim"
    key = dkim.generate_key(keys_dir, "a.test")
    zone = {
        "a.test": {"MX": ["10 mx.a.test."]},
        "mx.a.test": {"A": ["127.0.0.2"]},
        "b.test": {"MX": ["10 mx.b.test."]},
        "mx.b.test": {"A": ["127.0.0.3"]},
        key.record_name: {"TXT": ['"' + key.txt_record() + '"']},
    }
    with dns_server(zone) as dns:
        relay = {"dns_server": dns.address}
        with running_server(tmp_path / "a", listeners=("smtp", "submission"),
                            users={ALICE: PW},
                            extra={"hostname": "mx.a.test", "relay": relay,
                                   "listen": {"smtp": ["127.0.0.2:25"]}}) as a, \
                running_server(tmp_path / "b", listeners=("smtp", "imap"), users={BOB: PW},
                               extra={"hostname": "mx.b.test", "relay": relay,
                                      "listen": {"smtp": ["127.0.0.3:25"]}}) as b:
            with smtplib.SMTP("127.0.0.1", a.ports["submission"], timeout=10) as s:
                s.starttls(context=ssl._create_unverified_context())
                s.login(ALICE, PW)
                s.sendmail(ALICE, [BOB], b"From: Alice <alice@a.test>\r\nTo: bob@b.test\r\n"
                           b"Subject: across\r\n\r\nHello from A.\r\n")
            got = wait_for_message(b, BOB)
            assert b"Subject: across" in got
            assert b"DKIM-Signature:" in got
            # strip our trace headers, then verify the signature with the published key
            body = got[got.index(b"DKIM-Signature:"):]

            def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
                return key.txt_record().encode() if name.decode().rstrip(".") == \
                    key.record_name else b""

            assert dkimpy.verify(body, dnsfunc=dnsfunc)
            # Bob reads it over IMAP
            imap = imaplib.IMAP4("127.0.0.1", b.ports["imap"])
            imap.login(BOB, PW)
            imap.select("INBOX")
            typ, data = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            assert typ == "OK" and b"Subject: across" in data[0][1]  # type: ignore[index]
            imap.logout()
            # the queue of A is empty once delivered
            assert a.call(a.store.list_queue()) == []


def wait_for_message(srv: Any, address: str, timeout: float = 20) -> bytes:
    deadline = time.monotonic() + timeout
    user = srv.call(srv.store.get_user(address))
    mb = srv.call(srv.store.get_mailbox(user.id, "INBOX"))
    while time.monotonic() < deadline:
        entries = srv.call(srv.store.list_entries(mb.id))
        if entries:
            return srv.call(srv.store.read_message(entries[0].message_id))  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"nothing arrived for {address}")
