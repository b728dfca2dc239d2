"""SpooledMessage and the Received header."""

from __future__ import annotations

from pathlib import Path

import pytest

from postroom.smtp.received import build_received, ip_literal, new_queue_id, with_keyword
from postroom.smtp.spool import SpooledMessage


def test_spool_stays_in_memory_then_spills(tmp_path: Path) -> None:
    with SpooledMessage(tmp_path, memory_limit=10) as spool:
        spool.write(b"12345")
        spool.write(b"")
        spool.write(b"67890")
        assert spool.in_memory and spool.size == 10 and spool.read_all() == b"1234567890"
        spool.write(b"x")
        assert spool.path is not None and Path(spool.path).parent == tmp_path
        spool.write(b"yz")
        spool.finish()
        with pytest.raises(ValueError):
            spool.write(b"late")
        assert spool.read_all() == b"1234567890xyz"
        with spool.open() as a, spool.open() as b:
            assert a.read(3) == b"123" and b.read() == b"1234567890xyz"
        path = spool.path
    assert not Path(path).exists()
    spool.close()  # idempotent
    with pytest.raises(ValueError):
        spool.open()


def test_spool_open_finishes_implicitly(tmp_path: Path) -> None:
    spool = SpooledMessage(str(tmp_path), memory_limit=1)
    spool.write(b"abc")
    with spool.open() as f:
        assert f.read() == b"abc"
    spool.close()
    assert list(tmp_path.iterdir()) == []


def test_with_keyword() -> None:
    kw = with_keyword
    assert kw(esmtp=False, tls=False, authenticated=False, smtputf8=False) == "SMTP"
    assert kw(esmtp=True, tls=False, authenticated=False, smtputf8=False) == "ESMTP"
    assert kw(esmtp=True, tls=True, authenticated=False, smtputf8=False) == "ESMTPS"
    assert kw(esmtp=True, tls=False, authenticated=True, smtputf8=False) == "ESMTPA"
    assert kw(esmtp=True, tls=True, authenticated=True, smtputf8=False) == "ESMTPSA"
    assert kw(esmtp=True, tls=True, authenticated=True, smtputf8=True) == "UTF8SMTPSA"


def test_ip_literal() -> None:
    assert ip_literal("192.0.2.1") == "[192.0.2.1]"
    assert ip_literal("2001:db8::1") == "[IPv6:2001:db8::1]"
    assert ip_literal("::ffff:192.0.2.1") == "[192.0.2.1]"
    assert ip_literal("fe80::1%eth0") == "[IPv6:fe80::1]"
    assert ip_literal("unix(socket)") == "[unix_socket_]"


def test_received_header() -> None:
    h = build_received(
        helo="client (evil)\r\nX-Injected: yes",
        peer_ip="192.0.2.1",
        hostname="mx.test",
        protocol="ESMTPS",
        queue_id="ABC123",
        recipients=['"john doe"@example.org'],
        rdns="client.example",
        tls_version="TLSv1.3",
        tls_cipher="TLS_AES_256_GCM_SHA384",
        timestamp=0,
    ).decode()
    lines = h.split("\r\n")
    assert lines[0] == "Received: from client__evil___X-Injected:_yes (client.example [192.0.2.1])"
    assert lines[1] == "\tby mx.test (Postroom) with ESMTPS id ABC123"
    assert lines[2] == "\t(TLSv1.3 TLS_AES_256_GCM_SHA384)"
    assert lines[3].startswith('\tfor <"john doe"@example.org>; ')
    assert lines[4] == ""
    two = build_received(
        helo="c",
        peer_ip="192.0.2.1",
        hostname="mx.test",
        protocol="SMTP",
        queue_id="Q",
        recipients=["a@x.test", "b@x.test"],
        timestamp=0,
    ).decode()
    assert "for" not in two and two.split("\r\n")[1].endswith("id Q;")


def test_queue_ids_are_unique_and_sort_by_time() -> None:
    ids = {new_queue_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert new_queue_id(1_700_000_000) < new_queue_id(1_800_000_000)
