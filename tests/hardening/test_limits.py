"""Limits under attack, against the whole server (tests/harness.py) on loopback: floods
of idle connections, huge literal announcements, endless lines, deep nesting, huge
sequence sets and pipelining without reading. Each attack gets the protocol's refusal,
the server's memory stays bounded (the RSS of the server process, ``postroom serve``
started by tests/harness.py) and a well-behaved client is still served.

Attackers use other 127.x source addresses (127.0.9.x, 127.0.10.x), so the per-IP
limit sees distinct clients; the well-behaved client comes from 127.0.20.x."""

from __future__ import annotations

import resource
import socket
import time
from collections.abc import Iterator

import pytest
from hardening_clients import Imap, Pop3, Smtp
from hardening_net import connect_from, rss_kib
from harness import ServerProcess, server_process

ALICE, ALICE_PW = "alice@example.com", "alice password"
MAX_CONNECTIONS, PER_IP = 2000, 50
MIB = 1024  # KiB


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    limits = {"max_connections": MAX_CONNECTIONS, "max_connections_per_ip": PER_IP,
              "message_size": 10_000_000}
    with server_process(tmp_path_factory.mktemp("limits"), listeners=("smtp", "imap", "pop3"),
                        users={ALICE: ALICE_PW}, extra={"limits": limits}) as server:
        imap = Imap(server.ports["imap"])
        imap.line()
        imap.login(ALICE, ALICE_PW)
        imap.send(b"a APPEND INBOX {21}\r\n")
        imap.line()
        imap.send(b"Subject: one\r\n\r\nbody\r\n")
        assert imap.until(b"a")[-1].startswith(b"a OK")
        imap.close()
        yield server


def well_behaved(srv: ServerProcess, source: str = "127.0.20.1") -> float:
    """A normal SMTP delivery, IMAP login + SELECT and POP3 login + STAT from
    ``source``; returns the seconds it took."""
    t0 = time.monotonic()
    s = Smtp(srv.ports["smtp"], source)
    assert s.reply()[0].startswith(b"220")
    assert s.cmd(b"EHLO good.example")[0].startswith(b"250")
    assert s.cmd(b"MAIL FROM:<good@example.org>")[0].startswith(b"250")
    assert s.cmd(b"RCPT TO:<" + ALICE.encode() + b">")[0].startswith(b"250")
    assert s.cmd(b"DATA")[0].startswith(b"354")
    assert s.cmd(b"Subject: good\r\n\r\nhello\r\n.")[0].startswith(b"250")
    s.close()
    i = Imap(srv.ports["imap"], source)
    assert i.line().startswith(b"* OK")
    assert i.login(ALICE, ALICE_PW)[-1].split()[1] == b"OK"
    assert i.cmd(b"SELECT INBOX")[-1].split()[1] == b"OK"
    i.close()
    p = Pop3(srv.ports["pop3"], source)
    assert p.line().startswith(b"+OK")
    assert p.cmd(b"USER " + ALICE.encode()).startswith(b"+OK")
    assert p.cmd(b"PASS " + ALICE_PW.encode()).startswith(b"+OK")
    assert p.cmd(b"STAT").startswith(b"+OK")
    assert p.cmd(b"QUIT").startswith(b"+OK")
    p.close()
    return time.monotonic() - t0


OVERLOAD = {"smtp": b"421 ", "imap": b"* BYE ", "pop3": b"-ERR "}


def refused(srv: ServerProcess, kind: str, source: str) -> bool:
    s = connect_from(source, srv.ports[kind])
    try:
        data = s.recv(200)
        return data.startswith(OVERLOAD[kind]) and s.recv(10) == b""
    finally:
        s.close()


def wait_for(predicate: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.mark.slow
def test_thousands_of_idle_connections_are_capped(srv: ServerProcess) -> None:
    """2,000 idle connections from 40 addresses: the per-IP limit (50) and then the
    global one (2,000) answer with each protocol's overload line, a well-behaved client
    is served while the server is loaded, and memory per idle connection is small."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = MAX_CONNECTIONS + 500  # the clients' ends (the server raises its own limit)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"needs {need} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    kinds = ("smtp", "imap", "pop3")
    before = rss_kib(srv.pid)
    held: list[socket.socket] = []
    try:
        for a in range(1, 40):
            for j in range(PER_IP):
                held.append(connect_from(f"127.0.9.{a}", srv.ports[kinds[j % 3]]))
        for s in held[::97]:  # the sessions are live: they greeted
            assert s.recv(100)[:1] in (b"2", b"*", b"+")
        for kind in kinds:
            assert refused(srv, kind, "127.0.9.1"), f"per-IP limit not enforced on {kind}"
        assert well_behaved(srv) < 5.0
        for j in range(MAX_CONNECTIONS - len(held)):  # fill the global limit
            held.append(connect_from("127.0.10.1", srv.ports[kinds[j % 3]]))
        assert len(held) == MAX_CONNECTIONS
        time.sleep(0.2)
        grown = rss_kib(srv.pid) - before
        for kind in kinds:
            assert refused(srv, kind, "127.0.10.2"), f"global limit not enforced on {kind}"
        assert grown < 64 * len(held), f"{grown} KiB for {len(held)} idle connections"
        for s in held[-10:]:
            s.close()
        del held[-10:]
        wait_for(lambda: not refused(srv, "pop3", "127.0.20.2"))
        assert well_behaved(srv, "127.0.20.3") < 5.0
    finally:
        for s in held:
            s.close()
    wait_for(lambda: not refused(srv, "smtp", "127.0.9.1"))
    print(f"2000 idle connections: RSS +{grown} KiB ({grown / MAX_CONNECTIONS:.1f} KiB each)")


def send_junk(sock: socket.socket, total: int, chunk: bytes) -> None:
    sent = 0
    while sent < total:
        sock.sendall(chunk)
        sent += len(chunk)


JUNK = b"x" * 65536


@pytest.mark.slow
def test_ten_megabyte_line_without_crlf(srv: ServerProcess) -> None:
    """10 MB without a line end: thrown away as it arrives, answered as a too-long
    line once the CRLF comes, and the session goes on."""
    before = rss_kib(srv.pid)
    s = Smtp(srv.ports["smtp"], "127.0.9.101")
    s.reply()
    send_junk(s.sock, 10 * 1024 * 1024, JUNK)
    assert s.cmd(b"")[0].startswith(b"500")
    assert s.cmd(b"NOOP")[0].startswith(b"250")
    s.close()
    i = Imap(srv.ports["imap"], "127.0.9.102")
    i.line()
    i.send(b"a1 NOOP ")
    send_junk(i.sock, 10 * 1024 * 1024, JUNK)
    i.send(b"\r\n")
    assert b" BAD " in i.line()
    assert i.cmd(b"NOOP")[-1].split()[1] == b"OK"
    i.close()
    p = Pop3(srv.ports["pop3"], "127.0.9.103")
    p.line()
    send_junk(p.sock, 10 * 1024 * 1024, JUNK)
    assert p.cmd(b"").startswith(b"-ERR")
    assert p.cmd(b"NOOP").startswith(b"-ERR")  # NOOP is a TRANSACTION command
    assert p.cmd(b"CAPA").startswith(b"+OK")
    p.close()
    grown = rss_kib(srv.pid) - before
    print(f"3 x 10 MB lines: server RSS {before} -> {before + grown} KiB")
    assert grown < 16 * MIB, f"RSS grew {grown} KiB for 3 x 10 MB lines"


@pytest.mark.slow
def test_gigabyte_literal_and_chunk_announcements(srv: ServerProcess) -> None:
    """``{1000000000}`` is refused before the client sends it; a non-synchronizing one
    (LITERAL+) and ``BDAT 1000000000`` are read and thrown away, never held."""
    before = rss_kib(srv.pid)
    i = Imap(srv.ports["imap"], "127.0.9.111")
    i.line()
    i.login(ALICE, ALICE_PW)
    i.send(b"a1 APPEND INBOX {1000000000}\r\n")
    assert i.line().startswith(b"a1 NO [TOOBIG]")
    i.send(b"a2 LOGIN {1000000000}\r\n")
    assert i.line().startswith(b"a2 ")  # refused at once, not "+ Ready"
    i.send(b"a3 APPEND INBOX {1000000000+}\r\n")
    send_junk(i.sock, 20 * 1024 * 1024, JUNK)  # still inside the literal when we leave
    i.close()
    s = Smtp(srv.ports["smtp"], "127.0.9.112")
    s.reply()
    s.cmd(b"EHLO x")
    assert s.cmd(b"MAIL FROM:<a@example.org> SIZE=1000000000")[0].startswith(b"552")
    assert s.cmd(b"MAIL FROM:<a@example.org>")[0].startswith(b"250")
    assert s.cmd(b"RCPT TO:<" + ALICE.encode() + b">")[0].startswith(b"250")
    s.send(b"BDAT 1000000000 LAST\r\n")
    send_junk(s.sock, 20 * 1024 * 1024, JUNK)
    s.close()
    assert well_behaved(srv, "127.0.20.4") < 5.0
    grown = rss_kib(srv.pid) - before
    print(f"1 GB literal / BDAT announcements: server RSS {before} -> {before + grown} KiB")
    assert grown < 16 * MIB, f"RSS grew {grown} KiB"


def test_deep_nesting_and_huge_specs_are_refused_quickly(srv: ServerProcess) -> None:
    """SEARCH nesting, BODY[1.1.1...] part numbers and HEADER.FIELDS lists beyond the
    parser's limits get ``BAD [LIMIT]`` at once; the session goes on."""
    i = Imap(srv.ports["imap"], "127.0.9.121")
    i.line()
    i.login(ALICE, ALICE_PW)
    assert i.cmd(b"SELECT INBOX")[-1].split()[1] == b"OK"
    attacks = [
        b"SEARCH " + b"(" * 60 + b"ALL" + b")" * 60,
        b"SEARCH " + b"NOT " * 15000 + b"ALL",
        b"SEARCH " + b"OR ALL " * 9000 + b"ALL",
        b"UID SEARCH " + b"(" * 30000,
        b"FETCH 1 BODY[" + b"1." * 20000 + b"1]",
        b"FETCH 1 (BODY[HEADER.FIELDS (" + b"X " * 30000 + b")])",
        b"FETCH 1 (" + b"FLAGS " * 10000 + b")",
    ]
    for attack in attacks:
        t0 = time.monotonic()
        answer = i.cmd(attack)[-1]
        assert answer.split()[1] == b"BAD" and b"[LIMIT]" in answer, (attack[:40], answer)
        assert time.monotonic() - t0 < 1.0
    assert i.cmd(b"NOOP")[-1].split()[1] == b"OK"
    i.close()


def test_huge_sequence_sets(srv: ServerProcess) -> None:
    """A 100,000-element set does not fit the 64 KiB line limit and is refused as a
    too-long line; the large sets that fit (10,000 elements) and the widest
    ranges are answered quickly and only for existing messages."""
    i = Imap(srv.ports["imap"], "127.0.9.122")
    i.line()
    i.login(ALICE, ALICE_PW)
    selected = i.cmd(b"SELECT INBOX")
    exists = next(int(ln.split()[1]) for ln in selected if ln.endswith(b" EXISTS"))
    hundred_k = b",".join(b"%d" % n for n in range(1, 100_001))
    assert i.cmd(b"UID FETCH " + hundred_k + b" FLAGS")[-1].split()[1] == b"BAD"
    big = b",".join(b"%d" % n for n in range(1, 30_000, 3))
    for command in (b"UID FETCH " + big + b" (FLAGS)", b"UID SEARCH UID " + big,
                    b"UID FETCH 1:4294967295 (FLAGS)", b"UID STORE " + big + b" +FLAGS (x)",
                    b"UID COPY 1:4294967295 Trash", b"SEARCH 1:4294967295"):
        t0 = time.monotonic()
        lines = i.cmd(command)
        assert lines[-1].split()[1] == b"OK", (command[:30], lines[-1])
        assert len(lines) <= exists + 2, lines  # at most one answer per message
        assert time.monotonic() - t0 < 2.0, command[:30]
    assert i.cmd(b"FETCH 4294967295 FLAGS")[-1].split()[1] == b"BAD"  # RFC 9051 6.4.8
    i.close()


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "command"), [
    ("smtp", b"EHLO x\r\n"), ("imap", b"a CAPABILITY\r\n"), ("pop3", b"CAPA\r\n")])
def test_pipelining_without_reading_is_backpressured(srv: ServerProcess, kind: str,
                                                      command: bytes) -> None:
    """A client that sends commands (each with a long answer) and never reads: the
    server stops reading once its answers cannot go out, so the client soon cannot
    send either; nothing piles up in the server, and others are still served."""
    before = rss_kib(srv.pid)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    s.bind(("127.0.9.131", 0))
    s.connect(("127.0.0.1", srv.ports[kind]))
    s.setblocking(False)
    block = command * (65536 // len(command))
    sent = 0
    last = time.monotonic()
    try:
        while time.monotonic() - last < 0.5 and sent < 256 * 1024 * 1024:
            try:
                sent += s.send(block)
                last = time.monotonic()
            except BlockingIOError:
                time.sleep(0.01)
        assert sent < 16 * 1024 * 1024, f"the server read {sent} octets it could not answer"
        assert well_behaved(srv, "127.0.20.5") < 5.0
        grown = rss_kib(srv.pid) - before
        print(f"{kind} pipelining without reading: {sent} octets accepted, "
              f"server RSS {before} -> {before + grown} KiB")
        assert grown < 16 * MIB, f"RSS grew {grown} KiB"
    finally:
        s.close()


def test_server_raises_its_open_files_limit() -> None:
    """Started with Debian's soft limit of 1024 descriptors, the server raises it to
    what ``max_connections`` needs, so accept() does not fail with EMFILE before the
    connection limit can answer 421."""
    import subprocess
    import sys

    code = ("import resource; from postroom.app import raise_descriptor_limit; "
            "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 4096)); "
            "print(raise_descriptor_limit(2000), resource.getrlimit(resource.RLIMIT_NOFILE)[0], "
            "raise_descriptor_limit(10000))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["2512", "2512", "4096"]
    assert "open files limit 4096 is below" in out.stderr
