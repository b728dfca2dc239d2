"""Several worker processes serving one data folder (``workers = N`` in the config).

Theory of operation: one Python process runs one event loop and, because of the GIL,
uses about one core. With ``workers`` > 1, ``postroom serve`` becomes a **master**: it
prepares the data folder (migrations, recovery after an unclean stop, orphan sweep:
``SqliteStore(primary=True)``), creates the TLS files, binds (without listening) every
listener address with SO_REUSEPORT, which holds the ports, then forks the workers.
Each worker is a whole server (``App.run``) listening on its own SO_REUSEPORT sockets
on those addresses (the kernel spreads connections evenly over them) and on its own
store connections; SQLite serialises the writers of the processes (each still
group-commits its own) and every UID and modseq is allocated inside a transaction, so
nothing about the store changes.

What one process used to know alone travels as news between the workers, each a
line on a socketpair to the master, which repeats it to every other worker:

* ``F <mailbox id>...``: mailboxes changed (the change feed): IDLE and selected
  sessions in other workers wake up and ask the store what changed.
* ``Q``: mail was queued; worker 0 runs the outbound queue and wakes it.
* ``A <ip>`` / ``S <ip>``: a failed / successful login (the shared auth throttle:
  delays and blocks count failures in every worker).
* ``C <ip>`` / ``D <ip>``: a connection opened / closed (the connection limits apply to
  the sum over the workers; news takes microseconds, so connections accepted at the
  same instant by different workers may pass a limit by one per worker).
* ``R`` (from the master, on behalf of a worker that ended): forget its connections.
* ``N`` (from the master, on behalf of a worker that (re)started): every worker answers
  ``Z`` (forget what I told you) and ``K <ip> <n>`` lines (my open connections), so the
  newcomer counts the connections that were open before it came, and
  ``T <newcomer> <network> <blocked until> <failure times>`` lines (the failed logins it
  knows of), which only the newcomer takes in.

The POP3 maildrop lock is a ``flock`` (postroom/services.py ``MaildropLock``), so it
holds across processes without news. The master restarts a worker that dies (after
a pause that grows if it keeps dying), and stops them all on SIGTERM/SIGINT, then
records the clean stop. A worker whose master is gone (its link reads EOF) stops.

The master loop is plain ``selectors`` with no threads, so forking a replacement
worker from it is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import selectors
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from postroom.config import Config
from postroom.net.listener import ConnectionLimiter, hold_ports, listen_like

if TYPE_CHECKING:
    from postroom.app import App
    from postroom.services import MailSystem

log = logging.getLogger("postroom.workers")

MAX_LINE = 1 << 20  # a line of news; F lines are cut well below it
IDS_PER_LINE = 2000
MAX_BACKLOG = 32 << 20  # news waiting for one worker; beyond it the worker is stuck
RESTART_PAUSE = (0.5, 30.0)  # first and longest pause before restarting a worker
STOP_WAIT = 20.0  # seconds the workers get to stop after SIGTERM (App: 10 s grace)


# --------------------------------------------------------------------------- worker side


class WorkerLink:
    """A worker's end of its link to the master: sends this worker's news, applies the
    others' (``attach`` wires it to the app's feed, throttle, limiter and queue)."""

    def __init__(self, index: int, sock: socket.socket,
                 sockets: dict[str, list[socket.socket]]) -> None:
        self.index = index
        self.sock = sock
        self.sockets = sockets  # listener kind -> this worker's listening sockets
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._lock = threading.Lock()
        self._changed: set[int] = set()
        self._flush_scheduled = False

    async def attach(self, app: App, system: MailSystem, limiter: ConnectionLimiter) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        reader, self._writer = await asyncio.open_connection(sock=self.sock, limit=MAX_LINE)
        assert app.store is not None
        store = app.store
        store.feed.remote = self._feed_changed
        system.throttle.on_record = lambda ip, ok: self.send(f"{'S' if ok else 'A'} {ip}")
        limiter.on_change = lambda ip, d: self.send(f"{'C' if d > 0 else 'D'} {ip}")
        system.remote_queue_wake = lambda: self.send("Q")

        def apply(sender: int, kind: str, args: list[str]) -> None:
            if kind == "F":
                store.feed.publish([int(a) for a in args], local=True)
            elif kind == "Q":
                if system.runner is not None:
                    system.runner.wake()
            elif kind == "A" and args:
                system.throttle.record_failure(args[0], notify=False)
            elif kind == "S" and args:
                system.throttle.record_success(args[0], notify=False)
            elif kind == "C" and args:
                limiter.remote_open(sender, args[0])
            elif kind == "D" and args:
                limiter.remote_close(sender, args[0])
            elif kind in ("R", "Z"):
                limiter.forget(sender)
            elif kind == "K" and len(args) == 2:
                limiter.remote_open(sender, args[0], int(args[1]))
            elif kind == "N":
                self.send("Z")
                for ip, n in list(limiter.per_ip.items()):
                    self.send(f"K {ip} {n}")
                for key, until, times in system.throttle.snapshot():
                    stamps = ",".join(repr(t) for t in times) or "-"
                    self.send(f"T {sender} {key} {until!r} {stamps}")
            elif kind == "T" and len(args) == 4 and int(args[0]) == self.index:
                times = [float(t) for t in args[3].split(",") if t != "-"]
                system.throttle.restore(args[1], float(args[2]), times)

        async def read() -> None:
            try:
                while True:
                    line = await reader.readline()
                    if not line:
                        break
                    parts = line.decode("ascii", "replace").split()
                    if len(parts) >= 2 and parts[0].lstrip("-").isdigit():
                        try:
                            apply(int(parts[0]), parts[1], parts[2:])
                        except ValueError:
                            log.warning("worker %d: bad news line %r", self.index, line[:80])
            except (ConnectionError, asyncio.LimitOverrunError, ValueError):
                pass
            log.warning("worker %d: the master is gone; stopping", self.index)
            app.stop()

        self._reader_task = asyncio.create_task(read())

    def send(self, line: str) -> None:
        """Queue a line for the master (from the event loop; the store's writer thread
        goes through ``_feed_changed``)."""
        self._write((line + "\n").encode("ascii", "replace"))

    def _write(self, data: bytes) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    def _feed_changed(self, ids: set[int]) -> None:
        """From the store's writer thread: coalesce, and send once per loop turn."""
        loop = self._loop
        if loop is None:
            return
        with self._lock:
            self._changed |= ids
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._flush_changed)

    def _flush_changed(self) -> None:
        with self._lock:
            ids, self._changed = sorted(self._changed), set()
            self._flush_scheduled = False
        for i in range(0, len(ids), IDS_PER_LINE):
            self._write(("F " + " ".join(map(str, ids[i:i + IDS_PER_LINE])) + "\n").encode())

    def close(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
        if self._writer is not None:
            self._writer.close()


def _run_worker(config: Config, index: int, link: socket.socket,
                sockets: dict[str, list[socket.socket]]) -> int:
    """The body of a forked worker process; returns its exit status."""
    from postroom.app import run_app

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    own = {kind: [listen_like(s) for s in held] for kind, held in sockets.items()}
    for held in sockets.values():
        for s in held:
            s.close()  # the master's copy holds the port; this process listens on its own
    try:
        run_app(config, worker=WorkerLink(index, link, own))
    except Exception:
        log.exception("worker %d failed", index)
        return 1
    return 0


# --------------------------------------------------------------------------- master side


@dataclass
class _Worker:
    index: int
    pid: int = 0
    link: socket.socket | None = None
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: bytearray = field(default_factory=bytearray)
    started: float = 0.0
    pause: float = RESTART_PAUSE[0]
    restart_at: float | None = None


class Master:
    """Binds, forks, relays news between workers, restarts and stops them."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.sockets: dict[str, list[socket.socket]] = {}
        self.workers = [_Worker(i) for i in range(config.workers)]
        self.sel = selectors.DefaultSelector()
        self.stopping = False
        self._wake: tuple[int, int] = (-1, -1)  # the signal wake-up pipe

    # -- lifecycle ----------------------------------------------------------------------

    def run(self) -> int:
        from postroom.app import App, raise_descriptor_limit

        cfg = self.config
        raise_descriptor_limit(cfg.limits.max_connections)
        asyncio.run(self._prepare_store())
        App(cfg).tls_context()  # the self-signed pair is made once, here
        for kind, addrs in cfg.listen.items():
            self.sockets[kind] = hold_ports(list(addrs))
        bound = [f"{k} {s.getsockname()[0]}:{s.getsockname()[1]}"
                 for k, socks in self.sockets.items() for s in socks]
        log.info("master %d: %d workers; ready: %s", os.getpid(), len(self.workers),
                 ", ".join(bound) or "no listeners")
        wake_r, wake_w = self._wake = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop_signal)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select via the fd
        self.sel.register(wake_r, selectors.EVENT_READ, None)
        try:
            for w in self.workers:
                self._spawn(w)
            self._loop(wake_r)
        finally:
            for w in self.workers:
                if w.pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(w.pid, signal.SIGKILL)
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(w.pid, 0)
            signal.set_wakeup_fd(-1)
            os.close(wake_r)
            os.close(wake_w)
            for socks in self.sockets.values():
                for s in socks:
                    s.close()
        asyncio.run(self._record_clean_stop())
        log.info("master %d: stopped", os.getpid())
        return 0

    async def _prepare_store(self) -> None:
        from postroom.store.sqlite import SqliteStore

        store = await SqliteStore.open(self.config.data_dir, primary=True)
        await store.close(stopped=False)

    async def _record_clean_stop(self) -> None:
        from postroom.store.sqlite import SqliteStore

        store = await SqliteStore.open(self.config.data_dir)
        try:
            await store.record_clean_stop()
        finally:
            await store.close()

    def _on_stop_signal(self, signum: int, frame: object) -> None:
        if not self.stopping:
            self.stopping = True
            self._stop_deadline = time.monotonic() + STOP_WAIT
            for w in self.workers:
                if w.pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(w.pid, signal.SIGTERM)

    def _spawn(self, w: _Worker) -> None:
        master_end, worker_end = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # the worker
            status = 1
            try:
                signal.set_wakeup_fd(-1)  # before its pipe closes
                master_end.close()
                self.sel.close()
                for fd in self._wake:
                    os.close(fd)
                for other in self.workers:
                    if other.link is not None:
                        other.link.close()
                status = _run_worker(self.config, w.index, worker_end, self.sockets)
            finally:
                logging.shutdown()
                os._exit(status)
        worker_end.close()
        master_end.setblocking(False)
        w.pid, w.link, w.started, w.restart_at = pid, master_end, time.monotonic(), None
        w.inbuf.clear()
        w.outbuf.clear()
        self.sel.register(master_end, selectors.EVENT_READ, w)
        self._broadcast(b"%d N\n" % w.index, exclude=w)
        log.info("master: worker %d started (pid %d)", w.index, pid)

    # -- the loop -----------------------------------------------------------------------

    def _loop(self, wake_r: int) -> None:
        while True:
            if self.stopping and not any(w.pid for w in self.workers):
                return
            if self.stopping and time.monotonic() > self._stop_deadline:
                log.warning("master: workers did not stop in %.0f s: killed", STOP_WAIT)
                return
            for key, events in self.sel.select(timeout=0.5):
                if key.data is None:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(wake_r, 512):
                            pass
                    continue
                w = key.data
                if events & selectors.EVENT_READ:
                    self._read(w)
                if events & selectors.EVENT_WRITE and w.link is not None:
                    self._flush(w)
            self._reap()
            now = time.monotonic()
            if not self.stopping:
                for w in self.workers:
                    if not w.pid and w.restart_at is not None and now >= w.restart_at:
                        self._spawn(w)

    def _read(self, w: _Worker) -> None:
        assert w.link is not None
        try:
            data = w.link.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close_link(w)
            return
        w.inbuf += data
        if len(w.inbuf) > MAX_LINE and b"\n" not in w.inbuf:
            log.error("master: worker %d sent an endless line; stopping it", w.index)
            self._kill(w)
            return
        end = w.inbuf.rfind(b"\n")
        if end < 0:
            return
        lines = bytes(w.inbuf[:end + 1])
        del w.inbuf[:end + 1]
        prefix = b"%d " % w.index
        out = b"".join(prefix + line + b"\n" for line in lines.split(b"\n") if line)
        self._broadcast(out, exclude=w)

    def _broadcast(self, data: bytes, exclude: _Worker | None = None) -> None:
        for other in self.workers:
            if other is exclude or other.link is None:
                continue
            other.outbuf += data
            if len(other.outbuf) > MAX_BACKLOG:
                log.error("master: worker %d does not read its news; stopping it", other.index)
                self._kill(other)
                continue
            self._flush(other)

    def _flush(self, w: _Worker) -> None:
        assert w.link is not None
        while w.outbuf:
            try:
                n = w.link.send(w.outbuf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._close_link(w)
                return
            del w.outbuf[:n]
        self.sel.modify(w.link, selectors.EVENT_READ | (selectors.EVENT_WRITE if w.outbuf else 0), w)

    def _close_link(self, w: _Worker) -> None:
        if w.link is not None:
            self.sel.unregister(w.link)
            w.link.close()
            w.link = None
            w.outbuf.clear()

    def _kill(self, w: _Worker) -> None:
        if w.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(w.pid, signal.SIGKILL)
        self._close_link(w)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except OSError as e:  # pragma: no cover
                if e.errno == errno.EINTR:
                    continue
                return
            if pid == 0:
                return
            for w in self.workers:
                if w.pid != pid:
                    continue
                w.pid = 0
                self._close_link(w)
                self._broadcast(b"%d R\n" % w.index, exclude=w)
                if self.stopping:
                    break
                code = os.waitstatus_to_exitcode(status)
                lived = time.monotonic() - w.started
                w.pause = RESTART_PAUSE[0] if lived > 60 else min(w.pause * 2, RESTART_PAUSE[1])
                w.restart_at = time.monotonic() + w.pause
                log.error("master: worker %d (pid %d) ended with %s; restarting in %.1f s",
                          w.index, pid, code, w.pause)
                break
