"""kill -9 of the whole server while SMTP clients send: every message that got its 250
is in the mailbox after a restart, exactly once (issue: SMTP, Durability)."""

from __future__ import annotations

import asyncio
import smtplib
import threading
import time
from pathlib import Path

import pytest
from harness import ServerProcess, server_process

from postroom.store.sqlite import SqliteStore

BOB = "bob@example.com"


@pytest.mark.slow
def test_kill9_during_smtp_loses_no_acknowledged_message(tmp_path: Path) -> None:
    with server_process(tmp_path, listeners=("smtp",), users={BOB: "a long password"},
                        extra={"limits": {"max_connections_per_ip": 1000}},
                        started=False) as server:
        kill_rounds(server, tmp_path)


def kill_rounds(server: ServerProcess, tmp_path: Path) -> None:
    port = server.ports["smtp"]
    acked: list[str] = []
    lock = threading.Lock()

    def client(worker: int, round_no: int, stop: threading.Event) -> None:
        i = 0
        while not stop.is_set():
            token = f"r{round_no}-w{worker}-{i}"
            i += 1
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=5) as s:
                    while not stop.is_set():
                        s.sendmail("a@remote.test", [BOB],
                                   f"Subject: {token}\r\n\r\nbody\r\n".encode())
                        with lock:
                            acked.append(token)
                        token = f"r{round_no}-w{worker}-{i}"
                        i += 1
            except (OSError, smtplib.SMTPException):
                time.sleep(0.01)

    for round_no in range(3):
        server.start()
        stop = threading.Event()
        threads = [threading.Thread(target=client, args=(w, round_no, stop)) for w in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.8 + 0.3 * round_no)
        server.kill()
        stop.set()
        for t in threads:
            t.join(10)

    async def check() -> None:
        store = await SqliteStore.open(tmp_path / "data")
        try:
            assert await store.check_integrity() == []
            user = await store.get_user(BOB)
            assert user is not None
            mb = await store.get_mailbox(user.id, "INBOX")
            assert mb is not None
            subjects = []
            for e in await store.list_entries(mb.id):
                head = await store.read_message(e.message_id, 0, 2000)
                line = next(ln for ln in head.split(b"\r\n") if ln.startswith(b"Subject: "))
                subjects.append(line[9:].decode())
            assert acked, "nothing was acknowledged"
            missing = set(acked) - set(subjects)
            assert not missing, f"{len(missing)} acknowledged messages lost"
            dupes = {s for s in subjects if subjects.count(s) > 1}
            assert not dupes, f"stored twice: {sorted(dupes)[:5]}"
        finally:
            await store.close()

    asyncio.run(check())
