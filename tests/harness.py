"""A real Postroom server for tests.

``running_server``: the whole App on ephemeral loopback ports, run in a background
thread of the test process with its own event loop, provisioned through the store.
``server_process``: ``postroom serve`` in a subprocess (for kill -9, and for measuring
the server's own memory), provisioned through the store before it starts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from postroom import admin
from postroom.app import App
from postroom.config import Config
from postroom.store.sqlite import SqliteStore

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


def _config(tmp_path: Path, listeners: tuple[str, ...], plaintext: bool,
            extra: dict[str, Any] | None) -> dict[str, Any]:
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
    return raw


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_value(k)} = {_toml_value(x)}"
                                for k, x in v.items()) + " }"
    raise TypeError(f"no TOML for {v!r}")


def to_toml(raw: dict[str, Any]) -> str:
    """The config dict as TOML: top-level scalars, then one table per dict."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in raw.items() if not isinstance(v, dict)]
    for k, v in raw.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines += [f"{_toml_value(kk)} = {_toml_value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


async def provision_store(data_dir: Path, users: dict[str, str] | None = None,
                          aliases: dict[str, list[str]] | None = None) -> None:
    """Domains, users and aliases, written straight into the store (server stopped)."""
    store = await SqliteStore.open(data_dir)
    try:
        addresses = list(users or {}) + list(aliases or {})
        for d in sorted({a.split("@")[1].lower() for a in addresses} | {"example.com"}):
            await store.add_domain(d)
        for address, password in (users or {}).items():
            await admin.add_user(store, address, password)
        for address, targets in (aliases or {}).items():
            await store.add_alias(address, targets)
    finally:
        await store.close()


def _greets(kind: str, port: int) -> bool:
    """The listener accepts and (plaintext kinds) sends its greeting: a worker serves
    it, not just a master's listening socket."""
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5) as s:
            if kind in ("smtp", "submission", "imap", "pop3"):
                s.settimeout(1.0)
                return bool(s.recv(1))
            return True
    except OSError:
        return False


@dataclass
class ServerProcess:
    """``postroom serve`` in a subprocess; ``start`` and ``kill`` may repeat."""

    config: Path
    data_dir: Path
    ports: dict[str, int]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "postroom", "-c", str(self.config), "serve"],
            stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
            start_new_session=True)  # its own process group: kill() reaches every worker
        deadline = time.monotonic() + timeout
        for kind, port in self.ports.items():
            while not _greets(kind, port):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.proc.kill()
                    self.proc.wait()
                    raise AssertionError("server did not start")
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL to the server and all its worker processes at once: no shutdown, no
        flush, as in a crash of the machine's processes."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def worker_pids(self) -> list[int]:
        """The worker processes (children of the master) when ``workers`` > 1."""
        assert self.proc is not None
        out = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    stat = Path(entry.path, "stat").read_text()
                except OSError:
                    continue
                if int(stat.rpartition(")")[2].split()[1]) == self.proc.pid:
                    out.append(int(entry.name))
        return sorted(out)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM and wait for the graceful shutdown."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("server did not stop on SIGTERM") from None


@contextmanager
def server_process(tmp_path: Path, *, listeners: tuple[str, ...] = ALL,
                   users: dict[str, str] | None = None,
                   aliases: dict[str, list[str]] | None = None, plaintext: bool = True,
                   extra: dict[str, Any] | None = None,
                   started: bool = True) -> Iterator[ServerProcess]:
    """A provisioned server process on fixed free ports, stopped (SIGTERM) at the end.
    With ``started=False`` the caller starts (and kills) it."""
    ports = {k: free_port() for k in listeners}
    raw = _config(tmp_path, (), plaintext, extra)
    raw["listen"] = {k: [f"127.0.0.1:{p}"] for k, p in ports.items()}
    Config.from_dict(raw)  # a mistake in the test's config fails here, readably
    config = tmp_path / "postroom.toml"
    config.write_text(to_toml(raw))
    data_dir = Path(raw["data_dir"])
    asyncio.run(provision_store(data_dir, users, aliases))
    server = ServerProcess(config, data_dir, ports)
    if started:
        server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def running_server(tmp_path: Path, *, listeners: tuple[str, ...] = ALL,
                   users: dict[str, str] | None = None, plaintext: bool = True,
                   extra: dict[str, Any] | None = None) -> Iterator[RunningServer]:
    config = Config.from_dict(_config(tmp_path, listeners, plaintext, extra))
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
