"""A session cancelled by its owner (shutdown after the grace period) ends quietly:
no "Exception in callback" traceback per cancelled session, the slot is released."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from postroom.net.listener import ConnectionInfo, ConnectionLimiter, start_listener


def test_cancelled_sessions_end_without_loop_errors() -> None:
    async def main() -> tuple[list[dict[str, Any]], int]:
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        tasks: set[asyncio.Task[None]] = set()
        limiter = ConnectionLimiter(10, 10)
        started = asyncio.Event()

        async def idle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       info: ConnectionInfo) -> None:
            if len(tasks) == 3:
                started.set()
            await asyncio.sleep(3600)

        servers = await start_listener("test", ["127.0.0.1:0"], idle, limiter=limiter,
                                       overload_reply=b"busy\r\n", tasks=tasks)
        port = servers[0].sockets[0].getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        await asyncio.wait_for(started.wait(), 5)
        for srv in servers:
            srv.close()
        pending = list(tasks)
        for t in pending:
            t.cancel()
        await asyncio.wait(pending, timeout=5)
        await asyncio.sleep(0.05)  # let the done-callbacks run
        for c in clients:
            c.close()
        return errors, limiter.total

    errors, open_slots = asyncio.run(main())
    assert not errors, [e.get("message") for e in errors]
    assert open_slots == 0
