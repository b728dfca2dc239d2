"""kill -9 in the middle of 10 concurrent appenders loses nothing acknowledged
(issue: foundation, "Done when")."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from postroom.store.sqlite import SqliteStore

WORKER = Path(__file__).with_name("crash_worker.py")


def run_round(data: Path, round_no: int, run_for: float) -> list[tuple[int, str]]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, str(WORKER), str(data), str(round_no)],
                            stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"READY\n"
    acks: list[tuple[int, str]] = []
    deadline = time.monotonic() + run_for
    os.set_blocking(proc.stdout.fileno(), False)
    buf = b""
    while time.monotonic() < deadline:
        chunk = proc.stdout.read()
        if chunk:
            buf += chunk
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Lines the child wrote before dying were acknowledged: read them all.
    while True:
        chunk = proc.stdout.read()
        if not chunk:
            break
        buf += chunk
    proc.stdout.close()
    for line in buf.split(b"\n"):
        parts = line.split()
        if len(parts) == 3 and parts[0] == b"ACK":
            acks.append((int(parts[1]), parts[2].decode()))
    return acks


@pytest.mark.slow
def test_kill9_loses_no_acknowledged_append(tmp_path: Path) -> None:
    data = tmp_path / "data"
    all_acks: list[tuple[int, str]] = []
    rng = random.Random(7)
    for round_no in range(3):
        acks = run_round(data, round_no, 1.0 + rng.random())
        assert acks, "the worker acknowledged nothing"
        if all_acks:  # UIDs handed out before a crash are never handed out again
            assert min(u for u, _ in acks) > max(u for u, _ in all_acks)
        all_acks += acks

        async def check(all_acks: list[tuple[int, str]]) -> None:
            store = await SqliteStore.open(data)
            try:
                assert await store.check_integrity() == []
                user = await store.get_user("crash@example.com")
                assert user is not None
                mb = await store.get_mailbox(user.id, "INBOX")
                assert mb is not None
                entries = {e.uid: e for e in await store.list_entries(mb.id)}
                for uid, token in all_acks:
                    assert uid in entries, f"acknowledged UID {uid} lost"
                    head = await store.read_message(entries[uid].message_id, 0, 200)
                    assert f"Subject: {token}\r\n".encode() in head
            finally:
                await store.close()

        asyncio.run(check(all_acks))
