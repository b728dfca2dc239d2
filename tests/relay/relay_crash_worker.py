"""Run by test_relay_crash.py in a child process: one queue pass over the given store,
routing remote.test and stall.test to the parent's fake peers. The parent kills us with
SIGKILL while a delivery is in flight."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from postroom.dns.mock import MockResolver
from postroom.queue.runner import Bounce, QueueRunner
from postroom.smtp.client_protocol import TlsMode
from postroom.store.sqlite import SqliteStore


async def main() -> None:
    data, port_ok, port_stall = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    store = await SqliteStore.open(data)

    async def bounce(b: Bounce) -> None:
        pass

    runner = QueueRunner(
        store,
        "mail.here.test",
        MockResolver(),
        tls_mode=TlsMode.NONE,
        routes={"remote.test": f"127.0.0.1:{port_ok}", "stall.test": f"127.0.0.1:{port_stall}"},
        bounce=bounce,
    )
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    await runner.run_once()
    sys.stdout.write("DONE\n")  # not reached: the stall peer never answers
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
