"""SMTP receiving benchmark: Postroom, Postfix and aiosmtpd side by side on this machine.

    python bench/smtp_bench.py [--small 2000] [--large 100] [--sessions 1,10,50]
                               [--servers postroom,postfix,aiosmtpd] [--rounds 1]
                               [--workers N]

Every server accepts mail for user@example.com on a loopback port and makes it durable
before its 250: Postroom stores it (group-committed fsync), Postfix fsyncs its queue file
(then delivers to a Maildir with ``virtual`` after the 250), the aiosmtpd peer writes
one file per message and fsyncs it. Each runs as its own process; the load generator is
one asyncio process.

Per configuration (sessions x message size): the sessions connect and say EHLO first;
then the clock starts and each session sends its share of the messages, MAIL + RCPT +
DATA in one write (PIPELINING), the content after the 354, one 250 counted per accepted
message. Accepted msgs/s runs to the last 250. The server's CPU seconds are read from
/proc (utime + stime, reaped children included, summed over its process tree) before
the clock starts and after the server is idle again: for Postfix that is once its queue
has been delivered, so its CPU per message includes the delivery it owes after the
250 ("done msgs/s" shows that rate too). Configurations run one after another, each
against every server in turn, so ratios come from the same minutes of machine time.

``--serve-aiosmtpd PORT DIR`` runs the aiosmtpd peer (used by the benchmark itself).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from peers import (
    Postfix,
    SmtpLoadClient,
    cpu_seconds,
    free_port,
    process_tree,
    serve_postroom,
    stop_process,
    wait_listening,
)

USER = "user@example.com"
SENDER = "sender@example.org"
PASSWORD = "a long password"
LINE = b"The quick brown fox jumps over the lazy dog. 0123456789 abcdefghijklmnopq\r\n"


def message_body(size: int) -> bytes:
    """About ``size`` bytes of CRLF lines, none starting with a dot (no stuffing)."""
    return LINE * max(1, size // len(LINE))


def message_head(session: int, n: int) -> bytes:
    return (f"From: Sender <{SENDER}>\r\nTo: <{USER}>\r\nSubject: bench {session}.{n}\r\n"
            f"Message-ID: <{session}.{n}.{time.monotonic_ns()}@bench>\r\n\r\n").encode()


# ---- load generator ---------------------------------------------------------------


@dataclass
class Run:
    sessions: int
    size: int
    sent: int
    accepted: int
    seconds: float  # to the last 250
    done_seconds: float  # until the server is idle (Postfix: queue delivered)
    cpu: float

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds

    @property
    def done_rate(self) -> float:
        return self.accepted / self.done_seconds

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / max(1, self.accepted)


async def load(server: Server, sessions: int, count: int, size: int) -> Run:
    body = message_body(size)
    share = [count // sessions + (i < count % sessions) for i in range(sessions)]
    clients = await asyncio.gather(*(SmtpLoadClient.connect(server.port) for _ in share))
    accepted = 0

    async def one(k: int, c: SmtpLoadClient, n: int) -> None:
        nonlocal accepted
        for i in range(n):
            ok = await c.send(SENDER, USER, message_head(k, i), body)  # not "+= await": a race
            accepted += ok

    before_done = server.done_count()
    cpu0 = cpu_seconds(server.pids())
    t0 = time.perf_counter()
    await asyncio.gather(*(one(k, c, n) for k, (c, n) in enumerate(zip(clients, share, strict=True))))
    t1 = time.perf_counter()
    await server.wait_idle(before_done + accepted)
    t2 = time.perf_counter()
    cpu = cpu_seconds(server.pids()) - cpu0
    await asyncio.gather(*(c.quit() for c in clients))
    return Run(sessions, size, sum(share), accepted, t1 - t0, t2 - t0, cpu)


# ---- servers ----------------------------------------------------------------------


class Server:
    """A server under test: its port, its processes, and when it is idle again."""

    name = ""
    port = 0

    def pids(self) -> list[int]:
        raise NotImplementedError

    def done_count(self) -> int:
        return 0

    async def wait_idle(self, done: int) -> None:
        return None

    def stop(self) -> None:
        raise NotImplementedError


WORKERS = 1  # --workers


def postroom_config(root: Path, port: int, message_size: int = 52_428_800) -> Path:
    cfg = root / "postroom.toml"
    cfg.write_text(f'hostname = "mx.bench.test"\ndata_dir = "{root / "data"}"\n'
                   f'workers = {WORKERS}\n'
                   f'[listen]\nsmtp = ["127.0.0.1:{port}"]\n'
                   f'[limits]\nmax_connections_per_ip = 10000\nmessage_size = {message_size}\n')
    return cfg


def start_postroom(root: Path, port: int, message_size: int = 52_428_800
                   ) -> subprocess.Popen[bytes]:
    """Provision example.com and USER with the CLI, then ``serve`` (log in root/)."""
    cfg = postroom_config(root, port, message_size)
    cli = [sys.executable, "-m", "postroom", "-c", str(cfg)]
    subprocess.run([*cli, "domain", "add", "example.com"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([*cli, "user", "add", USER, "--password-stdin"], check=True,
                   input=PASSWORD.encode(), stdout=subprocess.DEVNULL)
    return serve_postroom(cfg, port, log=root / "postroom.log")


class PostroomServer(Server):
    name = "Postroom"

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="smtp-bench-postroom-")
        self.port = free_port()
        self.proc = start_postroom(Path(self.tmp.name), self.port)

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    def stop(self) -> None:
        stop_process(self.proc)
        self.tmp.cleanup()


class AiosmtpdServer(Server):
    name = "aiosmtpd"

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="smtp-bench-aiosmtpd-")
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve-aiosmtpd",
                                      str(self.port), self.tmp.name])
        wait_listening(self.port, self.proc, "aiosmtpd")

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    def stop(self) -> None:
        stop_process(self.proc)
        self.tmp.cleanup()


class PostfixServer(Server):
    name = "Postfix"

    def __init__(self) -> None:
        self.peer = Postfix([USER]).__enter__()
        self.port = self.peer.smtp_port

    def pids(self) -> list[int]:
        return self.peer.pids()

    def done_count(self) -> int:
        return self.peer.delivered(USER)

    async def wait_idle(self, done: int) -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.peer.delivered(USER) >= done and self.peer.queue_empty():
                return
            await asyncio.sleep(0.02)
        raise RuntimeError("postfix did not deliver its queue within 600 s")

    def stop(self) -> None:
        self.peer.__exit__(None, None, None)


SERVERS: dict[str, Callable[[], Server]] = {
    "postroom": PostroomServer, "postfix": PostfixServer, "aiosmtpd": AiosmtpdServer}


def aiosmtpd_installed() -> bool:
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        return False
    return True


# ---- the aiosmtpd peer (a separate process) ---------------------------------------


def serve_aiosmtpd(port: int, directory: str) -> None:
    """aiosmtpd with a handler that writes each message to its own file and fsyncs it
    (in the default thread pool, so the event loop keeps serving) before the 250."""
    from aiosmtpd.smtp import SMTP

    counter = 0

    def store(name: str, data: bytes) -> None:
        fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                     0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    class FsyncHandler:
        async def handle_DATA(self, server: object, session: object, envelope: object
                              ) -> str:
            nonlocal counter
            counter += 1
            data = envelope.original_content  # type: ignore[attr-defined]
            await asyncio.get_running_loop().run_in_executor(
                None, store, f"{os.getpid()}.{counter}.eml", data)
            return "250 2.0.0 Ok"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handler = FsyncHandler()
        srv = await loop.create_server(
            lambda: SMTP(handler, hostname="aiosmtpd.bench.test",
                         data_size_limit=52_428_800),
            "127.0.0.1", port)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with srv:
            await stop.wait()

    run_loop(main())


def run_loop(coro: object) -> None:
    try:
        import uvloop

        uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:
        asyncio.run(coro)  # type: ignore[arg-type]


# ---- report -----------------------------------------------------------------------


def size_name(size: int) -> str:
    return f"{size // 1_000_000} MB" if size >= 1_000_000 else f"{size // 1000} KB"


def print_row(name: str, r: Run) -> None:
    print(f"{name:>9} {r.sessions:>4} {size_name(r.size):>6} {r.accepted:>5}/{r.sent:<5} "
          f"{r.seconds:7.2f} {r.rate:9.1f} {r.rate * r.size / 1e6:7.1f} "
          f"{r.done_rate:9.1f} {r.cpu_ms:9.2f}", flush=True)


def median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.rate)[len(runs) // 2]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", type=int, default=2000, help="5 KB messages per config")
    ap.add_argument("--large", type=int, default=100, help="1 MB messages per config")
    ap.add_argument("--small-size", type=int, default=5_000)
    ap.add_argument("--large-size", type=int, default=1_000_000)
    ap.add_argument("--sessions", default="1,10,50")
    ap.add_argument("--servers", default="postroom,postfix,aiosmtpd")
    ap.add_argument("--workers", type=int, default=1, help="Postroom worker processes")
    ap.add_argument("--rounds", type=int, default=1, help="repeat; the median is kept")
    a = ap.parse_args()
    global WORKERS
    WORKERS = a.workers
    sessions = [int(s) for s in a.sessions.split(",")]
    wanted = a.servers.split(",")
    if "postfix" in wanted and not Postfix.available():
        print("Postfix not installed (apt-get install postfix): no comparison")
        wanted.remove("postfix")
    if "aiosmtpd" in wanted and not aiosmtpd_installed():
        print("aiosmtpd not installed: no comparison")
        wanted.remove("aiosmtpd")
    configs = [(n, a.small_size, a.small) for n in sessions]
    configs += [(n, a.large_size, a.large) for n in sessions]
    servers: list[Server] = []
    results: dict[str, dict[tuple[int, int], list[Run]]] = {}
    try:
        for w in wanted:
            servers.append(SERVERS[w]())
        for s in servers:  # warm-up: processes, caches, store; not measured
            await load(s, max(sessions), 2 * max(sessions), a.small_size)
        print(f"{'server':>9} {'sess':>4} {'size':>6} {'ok/sent':>11} {'seconds':>7} "
              f"{'msgs/s':>9} {'MB/s':>7} {'done/s':>9} {'CPU ms/msg':>10}")
        for rnd in range(a.rounds):
            for n, size, count in configs:
                for s in servers:
                    r = await load(s, n, count, size)
                    results.setdefault(s.name, {}).setdefault((n, size), []).append(r)
                    print_row(s.name, r)
            if a.rounds > 1:
                print(f"-- end of round {rnd + 1}", flush=True)
    finally:
        for s in servers:
            s.stop()
    report(results, configs, a.small_size, a.large_size)


def report(results: dict[str, dict[tuple[int, int], list[Run]]],
           configs: list[tuple[int, int, int]], small: int, large: int) -> None:
    p = results.get("Postroom")
    if p is None:
        return
    for peer in ("Postfix", "aiosmtpd"):
        q = results.get(peer)
        if q is None:
            continue
        print(f"\nPostroom / {peer} (median of rounds): msgs/s ratio, CPU-per-message ratio")
        for n, size, count in configs:
            a, b = median_run(p[n, size]), median_run(q[n, size])
            if not count or not b.rate:
                continue  # a size left out (--large 0)
            print(f"  {n:>3} sessions x {size_name(size):>5}: msgs/s {a.rate / b.rate:5.2f}x   "
                  f"CPU/msg {a.cpu_ms / max(b.cpu_ms, 1e-9):5.2f}x")
    q = results.get("Postfix")
    if q is None or (10, small) not in p or (10, large) not in p:
        return
    a, b = median_run(p[10, small]), median_run(q[10, small])
    ratio = a.rate / b.rate
    print(f"\nGoal 1: 10 sessions x {size_name(small)}: {ratio:.2f}x Postfix's msgs/s "
          f"(goal >= 2.00x): {'met' if ratio >= 2 else 'NOT met'}")
    for n, size, count in configs:
        if size != large or not count:
            continue
        a, b = median_run(p[n, size]), median_run(q[n, size])
        ok = a.cpu_ms <= b.cpu_ms
        print(f"Goal 2: {n:>2} sessions x {size_name(size)}: CPU/msg Postroom {a.cpu_ms:.1f} ms, "
              f"Postfix {b.cpu_ms:.1f} ms (goal <=): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-aiosmtpd":
        serve_aiosmtpd(int(sys.argv[2]), sys.argv[3])
    else:
        run_loop(main())
