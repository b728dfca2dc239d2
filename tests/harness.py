"""A real Postroom server for tests: the whole App on ephemeral loopback ports, run in a
background thread with its own event loop, provisioned through the store."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from postroom import admin
from postroom.app import App
from postroom.config import Config

ALL = ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps")


@dataclass
class RunningServer:
    app: App
    loop: asyncio.AbstractEventLoop
    data_dir: Path
    ports: dict[str, int] = field(default_factory=dict)

    def call(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the server's loop (e.g. a store query) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def store(self) -> Any:
        return self.app.store


@contextmanager
def running_server(tmp_path: Path, *, listeners: tuple[str, ...] = ALL,
                   users: dict[str, str] | None = None, plaintext: bool = True,
                   extra: dict[str, Any] | None = None) -> Iterator[RunningServer]:
    raw: dict[str, Any] = {
        "hostname": "mx.example.com",
        "data_dir": str(tmp_path / "data"),
        "listen": {k: ["127.0.0.1:0"] for k in listeners},
        "auth": {"plaintext_networks": ["127.0.0.0/8"] if plaintext else []},
    }
    for k, v in (extra or {}).items():
        if isinstance(v, dict):
            raw.setdefault(k, {}).update(v)
        else:
            raw[k] = v
    config = Config.from_dict(raw)
    app = App(config)
    loop = asyncio.new_event_loop()
    failure: list[BaseException] = []

    def target() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(app.run())
        except BaseException as e:  # reported to the test
            failure.append(e)
            app.ready_event.set()

    # App's events must belong to the server loop.
    app.stop_event = asyncio.Event()
    app.ready_event = asyncio.Event()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    for _ in range(300):
        if app.ready_event.is_set() or failure:
            break
        threading.Event().wait(0.05)
    if failure:
        raise failure[0]
    server = RunningServer(app, loop, config.data_dir,
                           {k: v[0][1] for k, v in app.bound.items()})

    async def provision() -> None:
        assert app.store is not None
        domains = {u.split("@")[1].lower() for u in (users or {})} | {"example.com"}
        for d in sorted(domains):
            await app.store.add_domain(d)
        for address, password in (users or {}).items():
            await admin.add_user(app.store, address, password)

    server.call(provision())
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(app.stop)
        thread.join(30)
        loop.close()
