"""kill -9 of the whole server at random moments while SMTP clients deliver (to a local
mailbox and, through an alias, to a remote peer via the outbound queue) and IMAP
clients APPEND, over several rounds. Afterwards: every acknowledged message is stored
exactly once, every UID an APPEND acknowledged still names that message (UIDs are
never reused), and the queue delivers every acknowledged remote message to the peer
(at least once: a crash between the peer's 250 and the record may repeat one).

tests/integration/test_server_crash.py covers SMTP alone; this adds IMAP and the
relay queue, with one process and with two worker processes (the whole process group
is killed)."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import os
import random
import re
import smtplib
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from hardening_peer import peer
from harness import server_process

from postroom.store.sqlite import SqliteStore

ALICE, BOB, PW = "alice@example.com", "bob@example.com", "a long password"
FORWARD, REMOTE = "fwd@example.com", "peer@remote.test"
SUBJECT = re.compile(rb"^Subject: (\S+)", re.MULTILINE)


class Acked:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.local: list[str] = []
        self.remote: list[str] = []
        self.appended: list[tuple[str, int, int]] = []  # token, UIDVALIDITY, UID


def smtp_client(port: int, to: str, bucket: list[str], acked: Acked, name: str,
                stop: threading.Event) -> None:
    i = 0
    while not stop.is_set():
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=5) as s:
                while not stop.is_set():
                    token = f"{name}-{i}"
                    i += 1
                    s.sendmail("sender@elsewhere.test", [to],
                               f"Subject: {token}\r\n\r\nbody {token}\r\n".encode())
                    with acked.lock:
                        bucket.append(token)
        except (OSError, smtplib.SMTPException):
            time.sleep(0.02)


APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")


def imap_client(port: int, acked: Acked, name: str, stop: threading.Event) -> None:
    i = 0
    while not stop.is_set():
        try:
            imap = imaplib.IMAP4("127.0.0.1", port, timeout=5)
        except (OSError, imaplib.IMAP4.error, EOFError):
            time.sleep(0.02)
            continue
        try:
            imap.login(ALICE, PW)
            while not stop.is_set():
                token = f"{name}-{i}"
                i += 1
                typ, data = imap.append("INBOX", None, None,
                                        f"Subject: {token}\r\n\r\nbody\r\n".encode())
                if typ == "OK":
                    m = APPENDUID.search(data[0] or b"")
                    assert m is not None, data
                    with acked.lock:
                        acked.appended.append((token, int(m.group(1)), int(m.group(2))))
        except (OSError, imaplib.IMAP4.error, EOFError):
            time.sleep(0.02)
        finally:
            with contextlib.suppress(OSError):
                imap.shutdown()


async def stored(data_dir: Path, user: str) -> tuple[dict[str, list[int]], int, int]:
    """Subject token -> UIDs in ``user``'s INBOX; UIDVALIDITY; UIDNEXT."""
    store = await SqliteStore.open(data_dir)
    try:
        assert await store.check_integrity() == []
        account = await store.get_user(user)
        assert account is not None
        mb = await store.get_mailbox(account.id, "INBOX")
        assert mb is not None
        out: dict[str, list[int]] = {}
        for e in await store.list_entries(mb.id):
            head = await store.read_message(e.message_id, 0, 4000)
            m = SUBJECT.search(head)
            out.setdefault(m.group(1).decode() if m else "?", []).append(e.uid)
        return out, mb.uidvalidity, mb.uidnext
    finally:
        await store.close()


async def pending_queue(data_dir: Path) -> int:
    store = await SqliteStore.open(data_dir)
    try:
        return sum(len(item.recipients) for item in await store.list_queue())
    finally:
        await store.close()


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_kill9_with_smtp_imap_append_and_relay(tmp_path: Path, workers: int) -> None:
    rng = random.Random(int(os.environ.get("POSTROOM_CRASH_SEED", "1")))
    acked = Acked()
    rounds = 4
    with peer() as remote, server_process(
            tmp_path, listeners=("smtp", "imap"), users={ALICE: PW, BOB: PW},
            aliases={FORWARD: [REMOTE]}, started=False,
            extra={"workers": workers, "limits": {"max_connections_per_ip": 1000}, "relay": {
                "routes": {"remote.test": f"127.0.0.1:{remote.server_address[1]}"}}}) as server:
        data = server.data_dir
        smtp_port, imap_port = server.ports["smtp"], server.ports["imap"]
        for round_no in range(rounds):
            server.start()
            stop = threading.Event()
            threads = [threading.Thread(target=smtp_client, args=(
                smtp_port, BOB, acked.local, acked, f"r{round_no}l{w}", stop)) for w in range(3)]
            threads += [threading.Thread(target=smtp_client, args=(
                smtp_port, FORWARD, acked.remote, acked, f"r{round_no}f{w}", stop))
                for w in range(2)]
            threads += [threading.Thread(target=imap_client, args=(
                imap_port, acked, f"r{round_no}i{w}", stop)) for w in range(3)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.4, 1.2))
            server.kill()
            stop.set()
            for t in threads:
                t.join(10)
        # A last, clean run: the queue catches up with what the crashes interrupted.
        server.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with remote.lock:
                if set(acked.remote) <= set(remote.received):
                    break
            time.sleep(0.1)
        server.stop()
        received = list(remote.received)

    assert acked.local and acked.remote and acked.appended, "nothing was acknowledged"
    local, _, _ = asyncio.run(stored(data, BOB))
    lost = [t for t in acked.local if t not in local]
    assert not lost, f"{len(lost)} acknowledged SMTP messages lost: {lost[:5]}"
    assert not [t for t, uids in local.items() if len(uids) > 1], "stored twice"

    appended, uidvalidity, uidnext = asyncio.run(stored(data, ALICE))
    pairs = [(v, u) for _, v, u in acked.appended]
    assert len(set(pairs)) == len(pairs), "an APPENDUID was given out twice (UID reused)"
    for token, validity, uid in acked.appended:
        assert validity == uidvalidity
        assert appended.get(token) == [uid], f"{token}: acknowledged as UID {uid}, " \
                                              f"stored as {appended.get(token)}"
    all_uids = [u for uids in appended.values() for u in uids]
    assert len(set(all_uids)) == len(all_uids) and max(all_uids) < uidnext

    missing = set(acked.remote) - set(received)
    assert not missing, f"{len(missing)} acknowledged relayed messages never reached the peer"
    assert asyncio.run(pending_queue(data)) == 0
    dupes = sum(n - 1 for n in Counter(received).values() if n > 1)
    print(f"{rounds} kill -9 rounds ({workers} worker(s)), zero loss; acked: "
          f"{len(acked.local)} local, {len(acked.appended)} appended, "
          f"{len(acked.remote)} relayed ({dupes} relayed twice after a crash)")
