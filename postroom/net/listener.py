"""TCP listeners: bind, accept, enforce connection limits, hand each connection to a
protocol shell.

Theory of operation: ``start_listener`` binds every ``host:port`` of one listener kind
(``smtp``, ``imaps`` ...) and calls ``handler(reader, writer, info)`` for each accepted
connection. Before the handler runs, the shared ``ConnectionLimiter`` is asked for a
slot (global and per client IP); when it refuses, the listener writes the protocol's
overload line (``421 4.7.0 ...``, ``* BYE ...``, ``-ERR ...``) and closes. Implicit TLS
listeners get an ``ssl`` context and the handshake happens before the handler runs.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("postroom.net")


@dataclass
class ConnectionInfo:
    """What a protocol shell knows about its peer; ``tls_*`` change after STARTTLS."""

    listener: str
    peer_ip: str
    peer_port: int
    local_ip: str
    local_port: int
    tls_version: str | None = None
    tls_cipher: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def tls(self) -> bool:
        return self.tls_version is not None

    def update_tls(self, writer: asyncio.StreamWriter) -> None:
        obj = writer.get_extra_info("ssl_object")
        if obj is not None:
            self.tls_version = obj.version()
            cipher = obj.cipher()
            self.tls_cipher = cipher[0] if cipher else None


def _add(counts: dict[str, int], ip: str, delta: int) -> None:
    n = counts.get(ip, 0) + delta
    if n <= 0:
        counts.pop(ip, None)
    else:
        counts[ip] = n


class ConnectionLimiter:
    """Counts open connections overall and per client IP (shared by all listeners).

    With several worker processes (postroom/workers.py) each counts its own and hears
    of the others' (``remote_open``/``remote_close``, through the master); the limits
    apply to the sum. The news takes a moment to arrive, so connections accepted at
    the same instant by different workers may pass a limit by up to one per worker.
    ``on_change(ip, +1 | -1)`` reports this process's own changes."""

    def __init__(self, max_total: int, max_per_ip: int) -> None:
        self.max_total = max_total
        self.max_per_ip = max_per_ip
        self.total = 0
        self.per_ip: dict[str, int] = {}
        self.remote: dict[int, dict[str, int]] = {}  # worker -> ip -> open connections
        self.remote_total = 0
        self.remote_per_ip: dict[str, int] = {}
        self.on_change: Callable[[str, int], None] | None = None

    def try_acquire(self, ip: str) -> bool:
        n = self.per_ip.get(ip, 0) + self.remote_per_ip.get(ip, 0)
        if self.total + self.remote_total >= self.max_total or n >= self.max_per_ip:
            return False
        self.total += 1
        _add(self.per_ip, ip, 1)
        if self.on_change is not None:
            self.on_change(ip, 1)
        return True

    def release(self, ip: str) -> None:
        self.total -= 1
        _add(self.per_ip, ip, -1)
        if self.on_change is not None:
            self.on_change(ip, -1)

    def remote_open(self, worker: int, ip: str, n: int = 1) -> None:
        _add(self.remote.setdefault(worker, {}), ip, n)
        _add(self.remote_per_ip, ip, n)
        self.remote_total += n

    def remote_close(self, worker: int, ip: str) -> None:
        counts = self.remote.get(worker, {})
        if counts.get(ip, 0) <= 0:
            return  # opened before we heard of that worker (it restarted): ignore
        _add(counts, ip, -1)
        _add(self.remote_per_ip, ip, -1)
        self.remote_total -= 1

    def forget(self, worker: int) -> None:
        """Worker ``worker`` ended: its connections ended with it."""
        for ip, n in self.remote.pop(worker, {}).items():
            _add(self.remote_per_ip, ip, -n)
            self.remote_total -= n


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, ConnectionInfo], Awaitable[None]]


def split_address(addr: str) -> tuple[str, int]:
    """``"127.0.0.1:25"`` / ``"[::1]:25"`` -> (host, port)."""
    host, _, port = addr.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def discard_buffered(reader: asyncio.StreamReader) -> int:
    """Drop bytes the client sent before a TLS handshake (STARTTLS injection,
    RFC 3207 section 4.2 / RFC 2595 / RFC 9051 section 6.2.1). Returns how many."""
    buf = getattr(reader, "_buffer", None)
    if not buf:
        return 0
    n = len(buf)
    buf.clear()
    return n


def hold_ports(addresses: list[str]) -> list[socket.socket]:
    """Sockets bound, not listening, to ``addresses`` the way ``asyncio.start_server``
    binds (every address a name resolves to, SO_REUSEADDR, IPv6 sockets IPv6-only),
    with SO_REUSEPORT: a master process (postroom/workers.py) holds the ports with them
    (and resolves port 0) while each worker listens on its own socket (``listen_like``)."""
    out: list[socket.socket] = []
    try:
        for addr in addresses:
            host, port = split_address(addr)
            infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
            for family, kind, proto, _, sockaddr in dict.fromkeys(infos):
                out.append(_bound(family, kind, proto, sockaddr))
    except BaseException:
        for sock in out:
            sock.close()
        raise
    return out


def listen_like(held: socket.socket, backlog: int = 1024) -> socket.socket:
    """A listening SO_REUSEPORT socket on the address ``held`` is bound to: the kernel
    spreads new connections evenly over the workers' sockets (by a hash of the
    addresses), where one shared socket goes to whichever worker wakes first - and an
    event loop accepts every waiting connection at once."""
    sock = _bound(held.family, held.type, held.proto, held.getsockname())
    sock.listen(backlog)
    return sock


def _bound(family: int, kind: int, proto: int, sockaddr: Any) -> socket.socket:
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def start_listener(
    name: str,
    addresses: list[str],
    handler: Handler,
    *,
    limiter: ConnectionLimiter,
    overload_reply: bytes,
    ssl_context: ssl.SSLContext | None = None,
    limit: int = 64 * 1024,
    tasks: set[asyncio.Task[None]] | None = None,
    sockets: list[socket.socket] | None = None,
) -> list[asyncio.Server]:
    """Bind ``addresses`` (or serve the listening ``sockets`` a master process bound,
    postroom/workers.py) and serve ``handler``. ``tasks`` collects running connection
    tasks so the owner can wait for or cancel them on shutdown."""
    running = tasks if tasks is not None else set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        local = writer.get_extra_info("sockname") or ("?", 0)
        ip = str(peer[0])
        if not limiter.try_acquire(ip):
            log.info("%s %s refused: connection limit", name, ip)
            try:
                writer.write(overload_reply)
                await asyncio.wait_for(writer.drain(), 5)
            except (TimeoutError, OSError):
                pass
            writer.close()
            return
        info = ConnectionInfo(name, ip, int(peer[1]), str(local[0]), int(local[1]))
        info.update_tls(writer)
        task = asyncio.current_task()
        if task is not None:
            running.add(task)
        try:
            await handler(reader, writer, info)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError):
            pass
        except asyncio.CancelledError:
            # The owner cancelled the session (shutdown): end normally. Nothing awaits
            # this task but asyncio's stream callback, which (Python 3.11) calls
            # task.exception() and logs "Exception in callback" for a cancelled task.
            pass
        except Exception:
            log.exception("%s %s: session failed", name, ip)
        finally:
            limiter.release(ip)
            if task is not None:
                running.discard(task)
            try:
                writer.close()
            except Exception:
                pass

    servers = []
    for sock in sockets or ():
        servers.append(await asyncio.start_server(
            on_connect, sock=sock, ssl=ssl_context, limit=limit, backlog=1024,
            ssl_handshake_timeout=30 if ssl_context else None))
    for addr in addresses if sockets is None else ():
        host, port = split_address(addr)
        srv = await asyncio.start_server(
            on_connect, host, port, ssl=ssl_context, limit=limit, reuse_address=True,
            backlog=1024, ssl_handshake_timeout=30 if ssl_context else None,
        )
        servers.append(srv)
        log.info("listening %s on %s", name, addr)
    return servers
