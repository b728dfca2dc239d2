"""kill -9 in the middle of a delivery: nothing is lost, what was not acknowledged by the
remote server is tried again (at-least-once)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from relay_fakesmtp import FakeSmtp

from postroom.dns.mock import MockResolver
from postroom.queue.runner import Bounce, QueueRunner
from postroom.queue.sqlite_queue import SqliteQueueStore
from postroom.smtp.client_protocol import TlsMode
from postroom.store.models import QueuedRecipient
from postroom.store.sqlite import SqliteStore

WORKER = Path(__file__).with_name("relay_crash_worker.py")
MSG = b"From: a@here.test\r\nSubject: crash\r\n\r\nbody\r\n"


def test_kill9_mid_delivery_then_retry(tmp_path: Path) -> None:
    data = tmp_path / "data"

    async def main() -> None:
        store = await SqliteStore.open(data)
        item = await store.enqueue(
            MSG, "a@here.test", [QueuedRecipient("b@remote.test"), QueuedRecipient("c@stall.test")]
        )
        await store.close()
        ok = await FakeSmtp().start()
        stall = await FakeSmtp(stall_in_data=True).start()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            str(data),
            str(ok.port),
            str(stall.port),
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        assert child.stdout is not None
        assert await asyncio.wait_for(child.stdout.readline(), 20) == b"READY\n"
        for _ in range(1000):
            if any(line.startswith("S: 354") for line in stall.transcript):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # the content is on its way; no reply will come
        child.kill()
        await child.wait()
        await stall.stop()

        store = await SqliteStore.open(data)
        try:
            assert await store.check_integrity() == []
            entry = await SqliteQueueStore(store).get(item.id)
            assert entry is not None
            states = {r.address: r.state for r in entry.recipients}
            assert states["c@stall.test"] == "pending"  # never acknowledged
            bounces: list[Bounce] = []

            async def bounce(b: Bounce) -> None:
                bounces.append(b)

            runner = QueueRunner(
                store,
                "mail.here.test",
                MockResolver(),
                tls_mode=TlsMode.NONE,
                bounce=bounce,
                routes={
                    "remote.test": f"127.0.0.1:{ok.port}",
                    "stall.test": f"127.0.0.1:{ok.port}",
                },
            )
            await runner.run_once()
            assert await SqliteQueueStore(store).get(item.id) is None
            delivered = [r for m in ok.messages for r in m.rcpts]
            assert "c@stall.test" in delivered and "b@remote.test" in delivered
            assert bounces == []
            assert await store.check_integrity() == []
        finally:
            await store.close()
            await ok.stop()

    asyncio.run(main())
