"""Store benchmark: durable appends/s for 1, 10 and 100 concurrent appenders of 5 KB
messages, and bytes on disk per message; inline bodies vs one file per body.

    python bench/store_bench.py [--messages N] [--size BYTES]

Every append returns only after its fsync (group commit shares them). Run on an idle
machine; compare the rows of one run, not runs on different days.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

from postroom.store.sqlite import SqliteStore


def message(i: int, size: int) -> bytes:
    head = (f"From: Sender <sender@example.org>\r\nTo: user@example.com\r\n"
            f"Subject: benchmark message {i}\r\nMessage-ID: <{i}@bench>\r\n"
            f"Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n\r\n").encode()
    line = b"The quick brown fox jumps over the lazy dog, again and again. 0123456789\r\n"
    body = line * (max(0, size - len(head)) // len(line) + 1)
    return head + body[: max(0, size - len(head))]


def disk_usage(path: Path) -> int:
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file())


async def run(concurrency: int, total: int, size: int, inline_max: int) -> tuple[float, float]:
    tmp = Path(tempfile.mkdtemp(prefix="store-bench-", dir=os.environ.get("BENCH_DIR")))
    try:
        store = await SqliteStore.open(tmp, inline_max=inline_max)
        await store.add_domain("example.com")
        user = await store.add_user("user@example.com", "x")
        base = disk_usage(tmp)
        per = total // concurrency
        msgs = [message(i, size) for i in range(per)]

        async def worker() -> None:
            for m in msgs:
                await store.append(user.id, "INBOX", m)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
        batches = store._writer.batches if store._writer else 0
        await store.close()
        # checkpoint the WAL so the size is what stays on disk
        import sqlite3

        c = sqlite3.connect(tmp / "postroom.db")
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        c.close()
        per_msg = (disk_usage(tmp) - base) / (per * concurrency)
        print(f"  {concurrency:>4} appenders  {per * concurrency / elapsed:>9.0f} appends/s"
              f"  {per * concurrency / max(batches, 1):>6.1f} appends/fsync"
              f"  {per_msg:>8.0f} bytes on disk/message")
        return per * concurrency / elapsed, per_msg
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--size", type=int, default=5000)
    args = ap.parse_args()
    for label, inline_max in (("inline bodies (default up to 128 KiB)", 128 * 1024),
                              ("one file per body", 0)):
        print(f"{label}, {args.size}-byte messages, durability on:")
        for conc in (1, 10, 100):
            n = args.messages if conc > 1 else max(200, args.messages // 5)
            await run(conc, n, args.size, inline_max)


if __name__ == "__main__":
    asyncio.run(main())
