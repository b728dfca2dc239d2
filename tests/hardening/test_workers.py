"""Several worker processes (``workers = 2``, postroom/workers.py) on one data folder:
what one process knew alone must hold across them. Each test finds out which worker
serves a connection (from /proc: the server-side socket's inode in the worker's
descriptors), so it can put the two ends of a scenario in different workers.

- new mail delivered through one worker wakes IDLE sessions in the other;
- the POP3 maildrop lock holds across workers;
- the connection limits count every worker's connections;
- failed logins slow down logins in every worker (the shared auth throttle);
- mail queued by any worker is delivered by the queue runner (worker 0);
- a killed worker is replaced, and its connections stop counting;
- SIGTERM stops every worker and records a clean stop.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hardening_clients import Imap, Pop3
from hardening_peer import peer
from harness import ServerProcess, server_process

ALICE, PW = "alice@example.com", "alice password"
FORWARD, REMOTE = "fwd@example.com", "peer@remote.test"


def serving_pid(client: socket.socket, server: ServerProcess) -> int:
    """The worker process holding the server side of ``client``'s connection."""
    local_port = client.getsockname()[1]
    server_port = client.getpeername()[1]
    inode = None
    for _ in range(50):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            f = line.split()
            if (int(f[1].split(":")[1], 16) == server_port
                    and int(f[2].split(":")[1], 16) == local_port):
                inode = f[9]
        if inode is not None:
            break
        time.sleep(0.02)
    assert inode is not None, "no server-side socket for this connection"
    for pid in server.worker_pids():
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                        return pid
    raise AssertionError("no worker holds the connection")


def one_per_worker(server: ServerProcess, connect: Callable[[], object],
                   sock_of: Callable[[object], socket.socket]) -> dict[int, object]:
    """Connect until every worker holds one connection (closing the extra ones at
    once: they count against the per-IP limit)."""
    got: dict[int, object] = {}
    for attempt in range(300):
        c = connect()
        pid = serving_pid(sock_of(c), server)
        if pid in got:
            sock_of(c).close()
            # The idlest worker accepts first; vary the moment so the other gets one.
            time.sleep(0.01 + (attempt % 7) * 0.01)
        else:
            got[pid] = c
        if len(got) == len(server.worker_pids()):
            break
    assert len(got) == 2, "the kernel never gave a connection to the second worker"
    return got


@pytest.fixture(scope="module")
def remote() -> Iterator[object]:
    with peer() as p:
        yield p


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, remote: object
        ) -> Iterator[ServerProcess]:
    port = remote.server_address[1]  # type: ignore[attr-defined]
    with server_process(
            tmp_path_factory.mktemp("workers"), listeners=("smtp", "imap", "pop3"),
            users={ALICE: PW}, aliases={FORWARD: [REMOTE]},
            extra={"workers": 2, "limits": {"max_connections_per_ip": 6},
                   "relay": {"routes": {"remote.test": f"127.0.0.1:{port}"}}}) as server:
        assert len(server.worker_pids()) == 2
        yield server


def imap_idle(server: ServerProcess, source: str) -> Imap:
    i = Imap(server.ports["imap"], source)
    assert i.line().startswith(b"* OK")
    assert i.login(ALICE, PW)[-1].split()[1] == b"OK"
    assert i.cmd(b"SELECT INBOX")[-1].split()[1] == b"OK"
    i.send(b"i IDLE\r\n")
    assert i.line().startswith(b"+ ")
    return i


def test_idle_sessions_in_every_worker_see_mail_delivered_by_either(
        srv: ServerProcess) -> None:
    idlers = one_per_worker(srv, lambda: imap_idle(srv, "127.0.40.1"),
                            lambda c: c.sock)  # type: ignore[attr-defined]
    senders = one_per_worker(
        srv, lambda: smtplib.SMTP("127.0.0.1", srv.ports["smtp"],
                                  source_address=("127.0.40.2", 0), timeout=5),
        lambda c: c.sock)  # type: ignore[attr-defined]
    try:
        for n, (pid, smtp) in enumerate(sorted(senders.items()), start=1):
            smtp.sendmail("someone@elsewhere.test", [ALICE],  # type: ignore[attr-defined]
                          f"Subject: from worker {pid}\r\n\r\nhi\r\n".encode())
            for idle_pid, idler in idlers.items():
                idler.sock.settimeout(3)  # type: ignore[attr-defined]
                line = b""
                with contextlib.suppress(TimeoutError):
                    while not line.endswith(b" EXISTS"):
                        line = idler.line()  # type: ignore[attr-defined]
                assert line == b"* %d EXISTS" % n, (
                    f"IDLE in worker {idle_pid} did not hear of mail through {pid}: {line!r}")
    finally:
        for c in senders.values():
            c.quit()  # type: ignore[attr-defined]
        for c in idlers.values():
            c.close()  # type: ignore[attr-defined]


def test_pop3_maildrop_lock_holds_across_workers(srv: ServerProcess) -> None:
    def login() -> Pop3:
        p = Pop3(srv.ports["pop3"], "127.0.40.3")
        assert p.line().startswith(b"+OK")
        assert p.cmd(b"USER " + ALICE.encode()).startswith(b"+OK")
        return p

    sessions = one_per_worker(srv, login, lambda c: c.sock)  # type: ignore[attr-defined]
    first, second = sessions.values()
    try:
        assert first.cmd(b"PASS " + PW.encode()).startswith(b"+OK")  # type: ignore[attr-defined]
        answer = second.cmd(b"PASS " + PW.encode())  # type: ignore[attr-defined]
        assert answer.startswith(b"-ERR [IN-USE]"), answer
        assert first.cmd(b"QUIT").startswith(b"+OK")  # type: ignore[attr-defined]
        third = login()
        assert third.cmd(b"PASS " + PW.encode()).startswith(b"+OK")
        third.close()
    finally:
        for s in sessions.values():
            s.close()  # type: ignore[attr-defined]


def greeted(server: ServerProcess, source: str) -> socket.socket | None:
    """A connection from ``source`` that was greeted; None if refused."""
    s = socket.socket()
    s.settimeout(5)
    s.bind((source, 0))
    s.connect(("127.0.0.1", server.ports["pop3"]))
    if s.recv(100).startswith(b"+OK"):
        return s
    s.close()
    return None


def test_connection_limits_count_every_worker(srv: ServerProcess) -> None:
    held: list[socket.socket | None] = []
    where: list[int] = []
    for attempt in range(300):  # six connections, at least one in each worker
        s = greeted(srv, "127.0.40.4")
        assert s is not None, "a connection under the per-IP limit was refused"
        pid = serving_pid(s, srv)
        if len(held) == 5 and set(where) == {pid}:
            s.close()
            time.sleep(0.01 + (attempt % 7) * 0.01)  # as in one_per_worker
            continue
        held.append(s)
        where.append(pid)
        if len(held) == 6:
            break
    try:
        assert len(held) == 6 and len(set(where)) == 2
        time.sleep(0.2)  # the news of the last ones reaches the other worker
        for _ in range(6):  # whichever worker gets it: over the limit
            assert greeted(srv, "127.0.40.4") is None
        for s in held[:3]:
            s.close()  # type: ignore[union-attr]
        time.sleep(0.2)
        again = [greeted(srv, "127.0.40.4") for _ in range(3)]
        assert all(again)
        held += again
    finally:
        for s in held:
            if s is not None:
                s.close()


def test_failed_logins_slow_down_every_worker(srv: ServerProcess) -> None:
    """Production throttle: 0.5 s after the first failure, doubling. Two failures in
    one worker make the third, in the other worker, wait 2 s (not 0.5 s)."""

    def connect() -> Imap:
        i = Imap(srv.ports["imap"], "127.0.40.5")
        assert i.line().startswith(b"* OK")
        return i

    sessions = one_per_worker(srv, connect, lambda c: c.sock)  # type: ignore[attr-defined]
    first, second = sessions.values()
    try:
        for _ in range(2):
            assert first.login(ALICE, "wrong")[-1].split()[1] == b"NO"  # type: ignore[attr-defined]
        t0 = time.monotonic()
        assert second.login(ALICE, "wrong")[-1].split()[1] == b"NO"  # type: ignore[attr-defined]
        waited = time.monotonic() - t0
        assert waited > 1.5, f"the other worker did not count the failures ({waited:.2f} s)"
        t0 = time.monotonic()  # a right password is not delayed
        assert second.login(ALICE, PW)[-1].split()[1] == b"OK"  # type: ignore[attr-defined]
        assert time.monotonic() - t0 < 1.0
    finally:
        for s in sessions.values():
            s.close()  # type: ignore[attr-defined]


def test_mail_queued_by_any_worker_is_delivered(srv: ServerProcess, remote: object) -> None:
    senders = one_per_worker(
        srv, lambda: smtplib.SMTP("127.0.0.1", srv.ports["smtp"],
                                  source_address=("127.0.40.6", 0), timeout=5),
        lambda c: c.sock)  # type: ignore[attr-defined]
    tokens = []
    t0 = time.monotonic()
    try:
        for pid, smtp in senders.items():
            token = f"queued-by-{pid}"
            tokens.append(token)
            smtp.sendmail("someone@elsewhere.test", [FORWARD],  # type: ignore[attr-defined]
                          f"Subject: {token}\r\n\r\nhi\r\n".encode())
    finally:
        for c in senders.values():
            c.quit()  # type: ignore[attr-defined]
    while time.monotonic() - t0 < 5:
        with remote.lock:  # type: ignore[attr-defined]
            if set(tokens) <= set(remote.received):  # type: ignore[attr-defined]
                break
        time.sleep(0.05)
    with remote.lock:  # type: ignore[attr-defined]
        missing = set(tokens) - set(remote.received)  # type: ignore[attr-defined]
    assert not missing, f"not delivered within 5 s: {missing}"


def test_a_killed_worker_is_replaced_and_its_connections_forgotten(
        srv: ServerProcess) -> None:
    held = [greeted(srv, "127.0.40.7") for _ in range(6)]
    assert all(held)
    victim = serving_pid(held[0], srv)  # type: ignore[arg-type]
    os.kill(victim, 9)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = srv.worker_pids()
        if len(pids) == 2 and victim not in pids:
            break
        time.sleep(0.1)
    assert len(srv.worker_pids()) == 2 and victim not in srv.worker_pids()
    time.sleep(0.5)  # the new worker's listeners are up
    survivors = [s for s in held if s is not None and _alive(s)]
    fresh = [greeted(srv, "127.0.40.7") for _ in range(6 - len(survivors))]
    try:
        assert all(fresh), "the dead worker's connections still count"
        time.sleep(0.2)  # news of the fresh connections reaches the other worker
        assert greeted(srv, "127.0.40.7") is None
    finally:
        for s in held + fresh:
            if s is not None:
                s.close()


def _alive(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        s.setblocking(True)


def test_sigterm_stops_every_worker_and_records_a_clean_stop(tmp_path: Path) -> None:
    with server_process(tmp_path, listeners=("imap",), users={ALICE: PW},
                        extra={"workers": 2}) as server:
        workers = server.worker_pids()
        assert len(workers) == 2
        i = Imap(server.ports["imap"], "127.0.40.8")
        assert i.line().startswith(b"* OK")
        server.stop()
        assert server.proc is not None and server.proc.returncode == 0
        for pid in workers:
            assert not Path(f"/proc/{pid}").exists() or \
                "zombie" in Path(f"/proc/{pid}/status").read_text()
        i.close()
    with sqlite3.connect(tmp_path / "data" / "postroom.db") as conn:
        assert conn.execute("SELECT value FROM meta WHERE key='running'").fetchone() == ("0",)


def test_limiter_sums_the_workers_and_forgets_a_dead_one() -> None:
    from postroom.net.listener import ConnectionLimiter

    told: list[tuple[str, int]] = []
    lim = ConnectionLimiter(max_total=5, max_per_ip=3)
    lim.on_change = lambda ip, d: told.append((ip, d))
    lim.remote_open(1, "10.0.0.1")
    lim.remote_open(1, "10.0.0.1")
    assert lim.try_acquire("10.0.0.1")
    assert not lim.try_acquire("10.0.0.1")  # 2 elsewhere + 1 here = the per-IP limit
    lim.remote_open(2, "10.0.0.2")
    assert lim.try_acquire("10.0.0.3")
    assert not lim.try_acquire("10.0.0.4")  # 5 in all
    lim.remote_close(2, "10.0.0.9")  # never heard of: ignored
    lim.forget(1)
    assert lim.remote_total == 1 and lim.remote_per_ip == {"10.0.0.2": 1}
    assert lim.try_acquire("10.0.0.1") and lim.try_acquire("10.0.0.1")
    lim.release("10.0.0.1")
    assert told == [("10.0.0.1", 1), ("10.0.0.3", 1), ("10.0.0.1", 1), ("10.0.0.1", 1),
                    ("10.0.0.1", -1)]


def test_a_replaced_worker_learns_the_failed_logins(srv: ServerProcess) -> None:
    """Failures counted before a worker died still slow down logins in the worker that
    replaces it (the others send it their counts)."""
    source = "127.0.40.9"

    def connect() -> Imap:
        i = Imap(srv.ports["imap"], source)
        assert i.line().startswith(b"* OK")
        return i

    first = connect()
    for _ in range(2):  # 0.5 s, then 1 s
        assert first.login(ALICE, "wrong")[-1].split()[1] == b"NO"
    first.close()
    before = set(srv.worker_pids())
    os.kill(min(before), 9)
    deadline = time.monotonic() + 10
    while len(set(srv.worker_pids()) - before) != 1 or len(srv.worker_pids()) != 2:
        assert time.monotonic() < deadline, "the killed worker was not replaced"
        time.sleep(0.1)
    (replaced,) = set(srv.worker_pids()) - before
    time.sleep(0.5)  # its listeners are up
    sessions = one_per_worker(srv, connect, lambda c: c.sock)  # type: ignore[attr-defined]
    try:
        t0 = time.monotonic()
        answer = sessions[replaced].login(ALICE, "wrong")  # type: ignore[attr-defined]
        waited = time.monotonic() - t0
        assert answer[-1].split()[1] == b"NO"
        assert waited > 1.5, f"the new worker forgot the failures ({waited:.2f} s)"
    finally:
        for s in sessions.values():
            s.close()  # type: ignore[attr-defined]
