"""Run by test_crash.py in a child process: 10 concurrent appenders, each acknowledged
append printed as ``ACK <uid> <token>`` the moment the store returns. The parent kills us
with SIGKILL at an arbitrary moment."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from postroom.store.sqlite import SqliteStore


async def appender(store: SqliteStore, user_id: int, worker: int, limit: int) -> None:
    for i in range(limit):
        token = f"w{worker}-{i}-{sys.argv[2]}"
        body = f"Subject: {token}\r\nFrom: a@b\r\n\r\n".encode() + (
            b"x" * (200_000 if i % 7 == 0 else 5000)) + b"\r\n"
        r = await store.append(user_id, "INBOX", body)
        sys.stdout.write(f"ACK {r.uid} {token}\n")
        sys.stdout.flush()


async def main() -> None:
    store = await SqliteStore.open(Path(sys.argv[1]), primary=True)
    user = await store.get_user("crash@example.com")
    if user is None:
        await store.add_domain("example.com")
        user = await store.add_user("crash@example.com", "h")
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    await asyncio.gather(*(appender(store, user.id, w, 10_000) for w in range(10)))


if __name__ == "__main__":
    asyncio.run(main())
