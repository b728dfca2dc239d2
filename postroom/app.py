"""The one lifecycle owner (shared/STYLE.md habit 13).

``App.run`` opens the store, builds TLS, binds every configured listener, reports ready,
then waits for a stop request (SIGTERM/SIGINT in ``serve``). Shutdown unwinds in reverse:
stop accepting, give sessions a grace period to finish, cancel the rest, close the store
(which drains the group-commit writer, so every acknowledged write is on disk).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from postroom.config import Config
from postroom.net.listener import ConnectionLimiter, start_listener
from postroom.net.tls import self_signed, server_context
from postroom.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from postroom.workers import WorkerLink

log = logging.getLogger("postroom")

GRACE_SECONDS = 10.0
# Descriptors beyond the client connections: listeners, the store and its blobs, relay
# sessions, DNS sockets, log files.
SPARE_DESCRIPTORS = 512


def raise_descriptor_limit(max_connections: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards what ``max_connections`` needs (the
    hard limit caps it; Debian's default soft limit is 1024), as Postfix and Dovecot
    do; returns the soft limit in force. Warns when the hard limit is too low, since
    accept() would then fail with EMFILE before the connection limit answers 421."""
    need = max_connections + SPARE_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    if soft != resource.RLIM_INFINITY and soft < need:
        log.warning("open files limit %d is below limits.max_connections + %d = %d; "
                    "raise it (ulimit -n, LimitNOFILE=) or lower max_connections",
                    soft, SPARE_DESCRIPTORS, need)
    return soft


class App:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.store: SqliteStore | None = None
        self.ssl_context: ssl.SSLContext | None = None
        self.stop_event = asyncio.Event()
        self.ready_event = asyncio.Event()
        self.bound: dict[str, list[tuple[str, int]]] = {}

    def tls_context(self) -> ssl.SSLContext:
        cfg = self.config
        if cfg.tls.cert is not None and cfg.tls.key is not None:
            cert, key = cfg.tls.cert, cfg.tls.key
        else:
            cert, key = self_signed(cfg.data_dir / "tls", cfg.hostname)
        return server_context(cert, key)

    async def run(self, on_ready: Callable[[App], None] | None = None, *,
                  worker: WorkerLink | None = None) -> None:
        """Serve until ``stop``. ``worker``: this is one of several worker processes
        (postroom/workers.py); its master bound the listening sockets and owns the
        data folder, and the link carries news to and from the other workers."""
        from postroom.services import MailSystem

        cfg = self.config
        tasks: set[asyncio.Task[None]] = set()
        raise_descriptor_limit(cfg.limits.max_connections)
        async with contextlib.AsyncExitStack() as stack:
            self.store = await SqliteStore.open(cfg.data_dir, primary=worker is None)
            stack.push_async_callback(self.store.close)
            self.ssl_context = self.tls_context()
            system = MailSystem(cfg, self.store, self.ssl_context)
            stack.push_async_callback(system.close)
            limiter = ConnectionLimiter(cfg.limits.max_connections,
                                        cfg.limits.max_connections_per_ip)
            if worker is not None:
                system.runs_queue = worker.index == 0
                await worker.attach(self, system, limiter)
                stack.callback(worker.close)
            servers: list[asyncio.base_events.Server] = []
            for kind, addrs in cfg.listen.items():
                spec = system.listener(kind)
                if spec is None:
                    log.warning("listener %s is not implemented yet: skipped", kind)
                    continue
                handler, implicit_tls, overload = spec
                started = await start_listener(
                    kind, list(addrs), handler, limiter=limiter, overload_reply=overload,
                    ssl_context=self.ssl_context if implicit_tls else None, tasks=tasks,
                    sockets=None if worker is None else worker.sockets.get(kind, []))
                servers += started
                self.bound[kind] = [s.sockets[0].getsockname()[:2] for s in started]
            await system.start()
            log.info("ready: %s", ", ".join(
                f"{k} {h}:{p}" for k, v in self.bound.items() for h, p in v) or "no listeners")
            self.ready_event.set()
            if on_ready is not None:
                on_ready(self)
            await self.stop_event.wait()
            log.info("stopping: no new connections; %d session(s) open", len(tasks))
            for srv in servers:
                srv.close()
            system.stopping.set()
            if tasks:
                _, pending = await asyncio.wait(list(tasks), timeout=GRACE_SECONDS)
                for t in pending:
                    t.cancel()
                if pending:
                    await asyncio.wait(pending, timeout=2)
            # Closed transports finish closing on the next loop iterations: give them
            # those before the store closes and the loop ends.
            await asyncio.sleep(0.05)
            log.info("stopped")

    def stop(self) -> None:
        self.stop_event.set()


def serve(config: Config, on_ready: Callable[[App], None] | None = None) -> None:
    """Run until SIGTERM/SIGINT. With ``workers`` > 1 this process becomes the master
    of that many worker processes."""
    if config.workers > 1:
        from postroom.workers import Master

        raise SystemExit(Master(config).run())
    run_app(config, on_ready=on_ready)


def run_app(config: Config, *, on_ready: Callable[[App], None] | None = None,
            worker: WorkerLink | None = None) -> None:
    """One server process until SIGTERM/SIGINT; uvloop when it is installed."""
    try:
        import uvloop

        runner: Callable[..., object] = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run

    async def main() -> None:
        app = App(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, app.stop)
        await app.run(on_ready, worker=worker)

    runner(main())
