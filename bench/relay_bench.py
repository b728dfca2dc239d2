"""Relay benchmark: Postroom's outbound queue against Postfix, both relaying to smtp-sink.

    python bench/relay_bench.py [--messages 10000] [--size 5000] [--domains 1,20]
                                [--sessions 10] [--modes e2e,drain]
                                [--servers postroom,postfix] [--profile /tmp/relay]

The sinks: one Postfix ``smtp-sink`` per destination domain, d1.test on
127.0.0.5:25 ... d20.test on 127.0.0.24:25, so every domain is its own next hop for
both servers (Postfix keeps a queue and a concurrency window per next hop; Postroom
groups jobs by route). A thread per sink reads its ``-c`` counters and stamps every
message it received; a run is done when the sinks have counted all its messages.

Per configuration (1 or 20 domains, recipients round-robin over them, one recipient
per message, 5 KB each):

* e2e: the messages are submitted while the server relays them, ``--sessions``
  concurrent SMTP sessions, MAIL + RCPT + DATA in one write (PIPELINING). Postroom
  takes them on its submission port after AUTH PLAIN; Postfix on its smtpd port
  (it relays for 127.0.0.0/8 through ``mynetworks``). The clock starts after EHLO
  (and AUTH) and stops when the sinks have counted every message: accepted and
  relayed. "accept s" is the time to the last 250.
* drain: the messages are in the queue before delivery may start. Postroom: the
  server is stopped, the messages go into the queue through the store
  (``SqliteStore.enqueue``), the clock starts when ``serve`` is spawned (its start-up
  is included; "startup s" says how long until it listened). Postfix: a second
  instance puts everything it accepts on hold (``check_client_access static:HOLD``);
  the clock starts at ``postsuper -H ALL`` and ``postqueue -f`` (release to the
  deferred queue and flush) and stops when the sinks have counted all.

"sink span" is first-to-last message at the sinks (the steady relay rate, start-up
excluded). The server's CPU (utime + stime of its process tree, reaped children
included) is read before and after. Configurations run one after another, each
against every server in turn, so ratios come from the same minutes of machine time.
``--profile DIR``: after the measured runs, one more Postroom run per mode and domain
count under ``py-spy record`` (not timed: py-spy slows the process it samples); the
collapsed stacks go to DIR and the top frames are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from peers import (
    Postfix,
    SmtpLoadClient,
    SmtpSink,
    cpu_seconds,
    free_port,
    process_tree,
    serve_postroom,
    stop_process,
)
from smtp_bench import run_loop

USER = "u@example.com"
PASSWORD = "a long password"
MAX_DOMAINS = 20
SINK_BASE = 5  # d1.test -> 127.0.0.5, d20.test -> 127.0.0.24
LINE = b"The quick brown fox jumps over the lazy dog. 0123456789 abcdefghijklmnopq\r\n"
RUN_LIMIT = 900.0  # seconds: no single run may take longer than this
GOAL = 1.5


def domain(i: int) -> str:
    return f"d{i + 1}.test"


def sink_address(i: int) -> str:
    return f"127.0.0.{SINK_BASE + i}"


def routes() -> dict[str, str]:
    return {domain(i): f"{sink_address(i)}:25" for i in range(MAX_DOMAINS)}


def recipient(n: int, domains: int) -> str:
    return f"r{n}@{domain(n % domains)}"


def message(n: int, rcpt: str, body: bytes) -> bytes:
    """A complete message (Date and Message-ID present: nothing for a server to add)."""
    head = (f"From: Bench <{USER}>\r\nTo: <{rcpt}>\r\nSubject: relay bench {n}\r\n"
            f"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
            f"Message-ID: <{n}.{time.monotonic_ns()}@bench.test>\r\n\r\n").encode()
    return head + body


def message_body(size: int) -> bytes:
    return LINE * max(1, size // len(LINE))


# ---- sinks ------------------------------------------------------------------------


class Sinks:
    """The MAX_DOMAINS smtp-sinks; counts summed over all."""

    def __init__(self) -> None:
        self.sinks = [SmtpSink(sink_address(i)) for i in range(MAX_DOMAINS)]

    def __enter__(self) -> Sinks:
        try:
            for s in self.sinks:
                s.__enter__()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for s in self.sinks:
            s.__exit__()

    def mark(self) -> tuple[list[int], int]:
        return [len(s.times) for s in self.sinks], sum(s.sessions for s in self.sinks)

    def messages(self) -> int:
        return sum(s.messages for s in self.sinks)

    def times_since(self, mark: tuple[list[int], int]) -> list[float]:
        return sorted(t for s, m in zip(self.sinks, mark[0], strict=True) for t in s.times[m:])

    def sessions_since(self, mark: tuple[list[int], int]) -> int:
        return sum(s.sessions for s in self.sinks) - mark[1]

    async def wait(self, target: int, deadline: float, alive: subprocess.Popen[bytes] | None
                   = None) -> None:
        """Until the sinks have counted ``target`` messages in all (bounded)."""
        while self.messages() < target:
            if time.monotonic() > deadline:
                raise RuntimeError(f"sinks counted {self.messages()} of {target} in time")
            if alive is not None and alive.poll() is not None:
                raise RuntimeError(f"server exited with {alive.returncode}")
            await asyncio.sleep(0.005)


# ---- load generator ---------------------------------------------------------------


async def submit(port: int, auth: bool, sessions: int, count: int, domains: int,
                 body: bytes, on_start: object = None) -> tuple[int, float]:
    """Submit ``count`` messages over ``sessions`` sessions; (accepted, t_start). The
    clock point is taken once every session is ready; the caller's ``on_start`` (a
    callable) runs at that moment."""
    clients = await asyncio.gather(*(SmtpLoadClient.connect(
        port, auth=(USER, PASSWORD) if auth else None) for _ in range(sessions)))
    accepted = 0

    async def one(k: int, c: SmtpLoadClient) -> None:
        nonlocal accepted
        for n in range(k, count, sessions):
            rcpt = recipient(n, domains)
            ok = await c.send(USER, rcpt, message(n, rcpt, body))
            accepted += ok

    if callable(on_start):
        on_start()
    t0 = time.perf_counter()
    await asyncio.gather(*(one(k, c) for k, c in enumerate(clients)))
    t1 = time.perf_counter()
    await asyncio.gather(*(c.quit() for c in clients))
    return accepted, t1 - t0


# ---- results ----------------------------------------------------------------------


@dataclass
class Run:
    server: str
    mode: str
    domains: int
    messages: int  # counted at the sinks
    seconds: float  # clock start to the last message at the sinks
    accept_seconds: float  # e2e: to the last 250; drain: to the server listening (Postroom)
    span: float  # first to last message at the sinks
    sessions: int  # SMTP sessions the sinks saw
    cpu: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def span_rate(self) -> float:
        return (self.messages - 1) / self.span if self.span > 0 else 0.0


def print_header() -> None:
    print(f"{'server':>8} {'mode':>5} {'doms':>4} {'msgs':>6} {'seconds':>8} {'msgs/s':>8} "
          f"{'accept s':>8} {'span msgs/s':>11} {'sink sess':>9} {'CPU ms/msg':>10}", flush=True)


def print_row(r: Run) -> None:
    print(f"{r.server:>8} {r.mode:>5} {r.domains:>4} {r.messages:>6} {r.seconds:8.2f} "
          f"{r.rate:8.1f} {r.accept_seconds:8.2f} {r.span_rate:11.1f} {r.sessions:>9} "
          f"{1000 * r.cpu / max(1, r.messages):10.2f}", flush=True)


def finish(server: str, mode: str, domains: int, count: int, sinks: Sinks,
           mark: tuple[list[int], int], t0: float, accept: float, cpu: float) -> Run:
    times = sinks.times_since(mark)
    if len(times) != count:
        print(f"WARNING: {server} {mode}: sinks counted {len(times)} messages, "
              f"expected {count}", flush=True)
    return Run(server, mode, domains, len(times), times[-1] - t0, accept,
               times[-1] - times[0], sinks.sessions_since(mark), cpu)


# ---- Postroom ---------------------------------------------------------------------


@contextlib.contextmanager
def py_spy(pid: int, out: Path | None) -> Iterator[None]:
    """``py-spy record`` of ``pid`` for the duration of the block (raw collapsed stacks,
    one root frame per thread); nothing when ``out`` is None."""
    if out is None:
        yield
        return
    spy = subprocess.Popen(
        ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--threads",
         "--duration", str(int(RUN_LIMIT)), "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(0.3)  # attached before the work starts
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            spy.wait(60)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()


class PostroomServer:
    """A Postroom with a submission listener and static routes to the sinks."""

    def __init__(self, keep: bool = False) -> None:
        self.tmp = tempfile.mkdtemp(prefix="relay-bench-postroom-")
        self.root = Path(self.tmp)
        self.keep = keep
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        table = ", ".join(f'"{d}" = "{hp}"' for d, hp in routes().items())
        self.cfg = self.root / "postroom.toml"
        self.cfg.write_text(
            f'hostname = "relay.bench.test"\ndata_dir = "{self.root / "data"}"\n'
            f'[listen]\nsubmission = ["127.0.0.1:{self.port}"]\n'
            f'[auth]\nplaintext_networks = ["127.0.0.0/8"]\n'
            f'[limits]\nmax_connections_per_ip = 10000\n'
            f'[relay]\nroutes = {{ {table} }}\n')
        cli = [sys.executable, "-m", "postroom", "-c", str(self.cfg)]
        subprocess.run([*cli, "domain", "add", "example.com"], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([*cli, "user", "add", USER, "--password-stdin"], check=True,
                       input=PASSWORD.encode(), stdout=subprocess.DEVNULL)

    def start(self) -> float:
        """Spawn ``serve``; seconds until it listens."""
        t0 = time.perf_counter()
        self.proc = serve_postroom(self.cfg, self.port, log=self.root / "postroom.log")
        return time.perf_counter() - t0

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def pids(self) -> list[int]:
        return [] if self.proc is None else process_tree(self.proc.pid)

    def queued(self) -> int:
        """Queue recipients not yet removed (a read-only look at the WAL database,
        fine while the server runs)."""
        conn = sqlite3.connect(f"file:{self.root / 'data' / 'postroom.db'}?mode=ro",
                               uri=True, timeout=30)
        try:
            return int(conn.execute("SELECT count(*) FROM queue_recipients").fetchone()[0])
        finally:
            conn.close()

    async def wait_queue_empty(self, deadline: float) -> None:
        while (n := self.queued()) > 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Postroom still has {n} queued recipients")
            await asyncio.sleep(0.05)

    def enqueue(self, count: int, domains: int, body: bytes) -> None:
        """Put ``count`` messages in the queue through the store (server stopped)."""
        code = (
            "import asyncio, sys\n"
            "sys.path.insert(0, sys.argv[1])\n"
            "from relay_bench import enqueue_offline\n"
            "asyncio.run(enqueue_offline(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),"
            " int(sys.argv[5])))\n")
        subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent),
                        str(self.root / "data"), str(count), str(domains), str(len(body))],
                       check=True)

    def cleanup(self) -> None:
        self.stop()
        if not self.keep:
            subprocess.run(["rm", "-rf", self.tmp], check=False)


async def enqueue_offline(data_dir: str, count: int, domains: int, size: int) -> None:
    """The drain set-up, in its own process: ``store.enqueue`` ``count`` messages."""
    from postroom.store.models import QueuedRecipient
    from postroom.store.sqlite import SqliteStore

    store = await SqliteStore.open(Path(data_dir))
    body = message_body(size)
    try:
        for start in range(0, count, 200):  # 200 in flight: group commits of many
            await asyncio.gather(*(
                store.enqueue(message(n, recipient(n, domains), body), USER,
                              [QueuedRecipient(recipient(n, domains))])
                for n in range(start, min(count, start + 200))))
    finally:
        await store.close()


async def postroom_e2e(p: PostroomServer, sinks: Sinks, a: argparse.Namespace,
                       domains: int, profile: Path | None = None) -> Run:
    """Submit and relay at once; with ``profile``, py-spy records the server throughout."""
    assert p.proc is not None
    with py_spy(p.proc.pid, profile):
        return await _postroom_e2e(p, sinks, a, domains)


async def _postroom_e2e(p: PostroomServer, sinks: Sinks, a: argparse.Namespace,
                        domains: int) -> Run:
    mark = sinks.mark()
    box: dict[str, float] = {}

    def started() -> None:
        box["cpu"] = cpu_seconds(p.pids())
        box["t0"] = time.perf_counter()

    accepted, accept = await submit(p.port, True, a.sessions, a.messages, domains,
                                    message_body(a.size), started)
    if accepted != a.messages:
        print(f"WARNING: Postroom accepted {accepted} of {a.messages}", flush=True)
    await sinks.wait(sum(mark[0]) + accepted, time.monotonic() + RUN_LIMIT, p.proc)
    await p.wait_queue_empty(time.monotonic() + 60)
    cpu = cpu_seconds(p.pids()) - box["cpu"]
    return finish("Postroom", "e2e", domains, accepted, sinks, mark, box["t0"], accept, cpu)


async def postroom_drain(p: PostroomServer, sinks: Sinks, a: argparse.Namespace,
                         domains: int, profile: Path | None = None) -> Run:
    """Stop, queue ``a.messages`` offline, start, wait for the sinks. With ``profile``:
    py-spy records the whole drain into that file (raw collapsed stacks)."""
    p.stop()
    p.enqueue(a.messages, domains, message_body(a.size))
    mark = sinks.mark()
    t0 = time.perf_counter()
    startup = p.start()
    assert p.proc is not None
    with py_spy(p.proc.pid, profile):
        await sinks.wait(sum(mark[0]) + a.messages, time.monotonic() + RUN_LIMIT, p.proc)
    await p.wait_queue_empty(time.monotonic() + 60)  # outcomes recorded
    cpu = cpu_seconds(p.pids())  # the process is new: all of its CPU is the drain's
    return finish("Postroom", "drain", domains, a.messages, sinks, mark, t0, startup, cpu)


# ---- Postfix ----------------------------------------------------------------------


HOLD_CF = "smtpd_end_of_data_restrictions = check_client_access static:HOLD\n"


def start_postfix(hold: bool) -> Postfix:
    return Postfix(["nobody@example.com"], transports=routes(),
                   extra_main_cf=HOLD_CF if hold else "").__enter__()


async def postfix_idle(p: Postfix, deadline: float) -> None:
    while not p.queue_empty():
        if time.monotonic() > deadline:
            raise RuntimeError("postfix queue not empty in time")
        await asyncio.sleep(0.01)


async def postfix_e2e(p: Postfix, sinks: Sinks, a: argparse.Namespace, domains: int) -> Run:
    mark = sinks.mark()
    box: dict[str, float] = {}

    def started() -> None:
        box["cpu"] = cpu_seconds(p.pids())
        box["t0"] = time.perf_counter()

    accepted, accept = await submit(p.smtp_port, False, a.sessions, a.messages, domains,
                                    message_body(a.size), started)
    if accepted != a.messages:
        print(f"WARNING: Postfix accepted {accepted} of {a.messages}", flush=True)
    await sinks.wait(sum(mark[0]) + accepted, time.monotonic() + RUN_LIMIT)
    await postfix_idle(p, time.monotonic() + 60)
    cpu = cpu_seconds(p.pids()) - box["cpu"]
    return finish("Postfix", "e2e", domains, accepted, sinks, mark, box["t0"], accept, cpu)


def held(p: Postfix) -> int:
    return sum(len(files) for _, _, files in os.walk(p.root / "queue" / "hold"))


async def postfix_drain(p: Postfix, sinks: Sinks, a: argparse.Namespace,
                        domains: int) -> Run:
    accepted, _ = await submit(p.smtp_port, False, a.sessions, a.messages, domains,
                               message_body(a.size))
    deadline = time.monotonic() + RUN_LIMIT
    while held(p) < accepted:  # cleanup writes the queue file before the 250
        if time.monotonic() > deadline:
            raise RuntimeError(f"postfix held {held(p)} of {accepted}")
        await asyncio.sleep(0.01)
    mark = sinks.mark()
    cpu0 = cpu_seconds(p.pids())
    t0 = time.perf_counter()
    p.command("postsuper", "-H", "ALL")
    p.command("postqueue", "-f")
    release = time.perf_counter() - t0
    await sinks.wait(sum(mark[0]) + accepted, time.monotonic() + RUN_LIMIT)
    await postfix_idle(p, time.monotonic() + 60)
    cpu = cpu_seconds(p.pids()) - cpu0
    return finish("Postfix", "drain", domains, accepted, sinks, mark, t0, release, cpu)


# ---- profile summary --------------------------------------------------------------


def summarize_profile(path: Path, top: int = 20) -> None:
    """Top frames of a py-spy raw (collapsed) profile: self and inclusive samples, main
    thread vs the others."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        frames = stack.split(";")
        total += count
        threads[frames[0]] += count
        frames = frames[1:] if frames[0].startswith("thread") or frames[0].startswith(
            "process") else frames
        if frames:
            own[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    print(f"\n{path}: {total} samples")
    for t, n in threads.most_common(8):
        print(f"  {100 * n / total:5.1f}%  {t}")
    print("  top self:")
    for f, n in own.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {f}")
    print("  top inclusive (postroom frames):")
    shown = 0
    for f, n in incl.most_common():
        if "postroom/" in f:
            print(f"  {100 * n / total:5.1f}%  {f}")
            shown += 1
            if shown >= top:
                break


# ---- main -------------------------------------------------------------------------


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--size", type=int, default=5_000)
    ap.add_argument("--domains", default="1,20")
    ap.add_argument("--sessions", type=int, default=10, help="concurrent submission sessions")
    ap.add_argument("--modes", default="e2e,drain")
    ap.add_argument("--servers", default="postroom,postfix")
    ap.add_argument("--profile", type=Path, help="directory: py-spy the Postroom drains")
    ap.add_argument("--keep", action="store_true", help="keep Postroom's folder (logs)")
    a = ap.parse_args()
    domain_counts = [int(d) for d in a.domains.split(",")]
    if max(domain_counts) > MAX_DOMAINS:
        ap.error(f"at most {MAX_DOMAINS} domains")
    modes = a.modes.split(",")
    servers = a.servers.split(",")
    if not SmtpSink.available():
        sys.exit("smtp-sink not installed (Debian: apt-get install postfix)")
    if "postfix" in servers and not Postfix.available():
        print("Postfix not installed: no comparison", flush=True)
        servers.remove("postfix")
    results: dict[tuple[str, str, int], Run] = {}
    postroom: PostroomServer | None = None
    pf: dict[str, Postfix] = {}
    with Sinks() as sinks:
        try:
            if "postroom" in servers:
                postroom = PostroomServer(keep=a.keep)
                postroom.start()
            if "postfix" in servers:
                if "e2e" in modes:
                    pf["e2e"] = start_postfix(hold=False)
                if "drain" in modes:
                    pf["drain"] = start_postfix(hold=True)
            # warm-up (not measured): sessions, caches, Postfix's processes
            warm = argparse.Namespace(**{**vars(a), "messages": 200})
            if postroom is not None:
                await postroom_e2e(postroom, sinks, warm, MAX_DOMAINS)
            if "e2e" in pf:
                await postfix_e2e(pf["e2e"], sinks, warm, MAX_DOMAINS)
            print(f"{a.messages} messages of {a.size} bytes, {a.sessions} submission "
                  f"sessions; domains {a.domains}", flush=True)
            print_header()
            for d in domain_counts:
                for mode in modes:
                    if postroom is not None:
                        run = await (postroom_e2e if mode == "e2e" else postroom_drain)(
                            postroom, sinks, a, d)
                        results["Postroom", mode, d] = run
                        print_row(run)
                    if mode in pf:
                        run = await (postfix_e2e if mode == "e2e" else postfix_drain)(
                            pf[mode], sinks, a, d)
                        results["Postfix", mode, d] = run
                        print_row(run)
            report(results, domain_counts, modes)
            if a.profile is not None and postroom is not None:
                a.profile.mkdir(parents=True, exist_ok=True)
                for d in domain_counts:
                    for mode in modes:
                        out = a.profile / f"postroom-{mode}-{d}.txt"
                        run = await (postroom_e2e if mode == "e2e" else postroom_drain)(
                            postroom, sinks, a, d, profile=out)
                        print(f"\nprofiled {mode}, {d} domain(s) (py-spy attached, not a "
                              f"measurement): {run.seconds:.2f} s, {run.rate:.1f} msgs/s")
                        summarize_profile(out)
        finally:
            if postroom is not None:
                postroom.cleanup()
            for p in pf.values():
                p.__exit__(None, None, None)


def report(results: dict[tuple[str, str, int], Run], domain_counts: list[int],
           modes: list[str]) -> None:
    lines = []
    for d in domain_counts:
        for mode in modes:
            p, q = results.get(("Postroom", mode, d)), results.get(("Postfix", mode, d))
            if p is None or q is None:
                continue
            ratio = p.rate / q.rate
            span = p.span_rate / q.span_rate if q.span_rate else 0.0
            cpu = (p.cpu / p.messages) / max(q.cpu / q.messages, 1e-9)
            verdict = "met" if ratio >= GOAL else "NOT met"
            lines.append(f"  {mode:>5} {d:>2} domain(s): msgs/s {ratio:5.2f}x  "
                         f"(sink span {span:5.2f}x, CPU/msg {cpu:5.2f}x)  "
                         f"goal >= {GOAL:.1f}x: {verdict}")
    if lines:
        print("\nPostroom / Postfix:")
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    run_loop(main())
