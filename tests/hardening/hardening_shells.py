"""The protocol shells (``handle_smtp``, ``handle_pop3``, ``handle_imap``) on loopback
with contexts built by the test - small timeouts, a fake directory - served from an
event loop in a background thread (the whole App cannot take per-test timeouts)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from postroom.auth.passwords import ScramCredentials
from postroom.auth.throttle import AuthThrottle, ThrottleSettings
from postroom.net.listener import ConnectionInfo, ConnectionLimiter, start_listener

T = TypeVar("T")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, ConnectionInfo],
                   Coroutine[Any, Any, None]]


class Directory:
    """alice@example.com / "alice password"."""

    async def verify_password(self, username: str, password: str) -> str | None:
        ok = (username.lower(), password) == ("alice@example.com", "alice password")
        return "alice@example.com" if ok else None

    async def scram_credentials(self, username: str) -> tuple[str, ScramCredentials] | None:
        return None


def fast_throttle() -> AuthThrottle:
    return AuthThrottle(ThrottleSettings(base_delay=0.01, max_delay=0.02, block_after=1000))


class ShellServer:
    """An event loop in a thread; ``serve(handler)`` binds 127.0.0.1:0 for it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: list[asyncio.Server] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.limiter = ConnectionLimiter(10_000, 10_000)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def serve(self, handler: Handler, name: str = "test") -> int:
        servers = self.run(start_listener(name, ["127.0.0.1:0"], handler, limiter=self.limiter,
                                          overload_reply=b"busy\r\n", tasks=self.tasks))
        self.servers += servers
        return int(servers[0].sockets[0].getsockname()[1])

    def open_sessions(self) -> int:
        return len(self.tasks)

    def stop(self) -> None:
        async def shutdown() -> None:
            for srv in self.servers:
                srv.close()
            for task in list(self.tasks):
                task.cancel()
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)

        self.run(shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def smtp_handler(tmp: Path, **limits: Any) -> Handler:
    from postroom.smtp.server import SmtpContext, SmtpLimits, handle_smtp

    class Accepting:
        async def check_sender(self, *a: Any) -> None:
            return None

        async def check_recipient(self, *a: Any) -> None:
            return None

        async def deliver(self, *a: Any) -> Any:
            from postroom.smtp.codes import Reply

            return Reply(250, "2.0.0", "Ok")

    ctx = SmtpContext(hostname="mx.test", listener="smtp", backend=Accepting(),
                      limits=SmtpLimits(**limits), spool_dir=str(tmp))

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter,
                      info: ConnectionInfo) -> None:
        await handle_smtp(r, w, info, ctx)

    return handler


def pop3_handler(**timeouts: Any) -> Handler:
    from postroom.pop3.server import Pop3Context, handle_pop3

    class NoMail:
        async def open_maildrop(self, user: str) -> None:
            return None

    ctx = Pop3Context(hostname="pop.test", backend=NoMail(), authenticator=Directory(),
                      throttle=fast_throttle(), plaintext_auth_allowed=lambda ip: True,
                      **timeouts)

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter,
                      info: ConnectionInfo) -> None:
        await handle_pop3(r, w, info, ctx)

    return handler


def imap_handler(server: ShellServer, data_dir: Path, **timeouts: Any) -> Handler:
    from postroom.imap.server import ImapContext, handle_imap
    from postroom.store.sqlite import SqliteStore

    store = server.run(SqliteStore.open(data_dir))
    ctx = ImapContext(hostname="imap.test", store=store, authenticator=Directory(),
                      throttle=fast_throttle(), plaintext_auth_allowed=lambda ip: True,
                      **timeouts)

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter,
                      info: ConnectionInfo) -> None:
        await handle_imap(r, w, info, ctx)

    return handler
