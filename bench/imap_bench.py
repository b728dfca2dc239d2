"""IMAP benchmark, Postroom and Dovecot side by side on this machine.

    python bench/imap_bench.py [--messages 100000] [--reps 5] [--clients 20]
        [--login-cycles 10] [--session-cycles 50] [--rounds 2] [--idle 1000]
        [--parts abc] [--no-dovecot] [--profile DIR [--gil]] [--workers N]

(a) One mailbox of ``--messages`` small, varied messages (plain, alternative, mixed with
    an attachment; about 70 % \\Seen; internal dates spread over a year): SELECT,
    UID FETCH 1:* (FLAGS), FETCH of ENVELOPE + BODYSTRUCTURE for a 50-message window
    (a different window each repetition, then the same window again), and
    UID SEARCH UNSEEN SINCE <six months ago>; the median of ``--reps`` repetitions, in
    ms, each repetition running on both servers in turn. Dovecot's first SELECT indexes
    the maildir and is reported apart (``first``); Postroom's is the first after start.
(b) ``--clients`` concurrent clients, each on its own account (100 messages): a cycle is
    LOGIN, LIST, STATUS, SELECT, FETCH (10 messages: FLAGS ENVELOPE RFC822.SIZE), STORE
    +FLAGS \\Deleted on the first, EXPUNGE, APPEND, LOGOUT (``--login-cycles`` per
    client); then the same with the session kept (LOGIN once, the seven middle commands
    ``--session-cycles`` times). Commands/s over all clients and the server's CPU per
    command (/proc; Dovecot's whole process tree, exited children included), the best
    of ``--rounds`` rounds alternating the servers; mean latency per command is printed.
(c) Memory of ``--idle`` concurrent sessions, each logged in to its own account, INBOX
    selected and in IDLE: the server's RSS before (idle baseline), with half and with all
    the sessions, from /proc (Dovecot: summed over all its processes, and PSS, which
    shares libraries fairly). Postroom is restarted first, on the same data.

Both servers check the same argon2id hash and hold the same messages; Postroom is
provisioned through the store (``append_many``), Dovecot gets maildir files written
directly (flags and sizes in the names, internal date as mtime). Dovecot runs with
imap-login in high-performance mode (``service_count = 0``, ``process_min_avail = 2``)
and limits raised for 1,000+ sessions (one imap process each, its default). The load
generator is one asyncio process speaking raw IMAP (literals framed, LITERAL+ for
APPEND); it scans answers in C (``bytes.find``, one regex for literals) so that it stays
cheap. The machine may be shared: compare the two columns of one run, not runs.

With ``--profile DIR`` each Postroom phase runs under ``py-spy record`` (raw collapsed
stacks in DIR) and the hottest frames are printed; the timings are then perturbed. With
``--gil`` only the thread holding the GIL is sampled: where the one core of Python time
goes, without threads waiting on fsync or the network.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import calendar
import collections
import email.header
import email.utils
import random
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from peers import (
    Dovecot,
    cpu_seconds,
    free_port,
    memory_kb,
    process_tree,
    serve_postroom,
    stop_process,
)

from postroom.auth.passwords import hash_password
from postroom.store.models import ANSWERED, FLAGGED, SEEN, Flags
from postroom.store.sqlite import SqliteStore

PASSWORD = "bench password"
DOMAIN = "example.com"
BIG = f"big@{DOMAIN}"
YEAR = 365 * 86400
WINDOW = 50

DOVECOT_EXTRA = """
# imap_bench: room for 1,000+ concurrent sessions (one imap process each).
default_client_limit = 5000
default_process_limit = 2048
protocol imap {
  mail_max_userip_connections = 5000
}
"""

# ---------------------------------------------------------------------- messages

FIRST = ["Alice", "Bob", "Chloé", "Dmitri", "Eve", "François", "Grace", "Hiro", "Ines",
         "Jürgen", "Kofi", "Lena", "Mateo", "Nadia", "Oskar", "Priya"]
LAST = ["Martin", "Nguyen", "Schmidt", "Rossi", "Kowalski", "Okafor", "Tanaka", "Silva"]
SUBJECTS = ["Quarterly report", "Lunch on Friday?", "Invoice {n}", "Build {n} failed",
            "Meeting notes", "Your order {n} has shipped", "Café et croissants",
            "Re: project timeline", "Fwd: conference {n}", "Weekly digest #{n}"]
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "mail", "server",
         "message", "queue", "deliver", "mailbox", "folder", "search", "index", "flag",
         "seen", "draft", "answered", "budget", "invoice", "meeting", "tomorrow", "thanks",
         "regards", "please", "review", "attached", "document", "schedule"]


def _phrase(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _addr(name: str) -> str:
    local = name.lower().replace(" ", ".").encode("ascii", "ignore").decode()
    return f"{local}@example.org"


def _header_value(text: str) -> str:
    """An RFC 2047 encoded word when ``text`` is not ASCII."""
    if text.isascii():
        return text
    return email.header.Header(text, "utf-8").encode()


def _text(rng: random.Random, size: int) -> str:
    out, n = [], 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12)))
        out.append(line)
        n += len(line) + 2
    return "\r\n".join(out) + "\r\n"


def make_message(i: int, when: float, rng: random.Random) -> bytes:
    """One small message (about 0.5-4 KB, CRLF): plain (60 %), alternative text+HTML
    (25 %) or mixed with a small base64 attachment (15 %)."""
    sender = _phrase(rng)
    subject = rng.choice(SUBJECTS).format(n=rng.randint(1, 9999))
    if rng.random() < 0.3:
        subject = "Re: " + subject
    head = (f"From: {_header_value(sender)} <{_addr(sender)}>\r\n"
            f"To: User <user@{DOMAIN}>\r\n"
            + (f"Cc: {_phrase(rng)} <{_addr(_phrase(rng))}>\r\n" if rng.random() < 0.2
               else "")
            + f"Subject: {_header_value(subject)}\r\n"
            f"Date: {email.utils.formatdate(when)}\r\n"
            f"Message-ID: <{i}.{int(when)}@bench.example.org>\r\nMIME-Version: 1.0\r\n")
    kind = rng.random()
    text = _text(rng, rng.randint(200, 2500))
    if kind < 0.60:
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text).encode()
    b = f"=_b{i}"
    if kind < 0.85:
        html = "<html><body><p>" + text.replace("\r\n", "</p>\r\n<p>") + "</p></body></html>"
        parts = [("text/plain; charset=utf-8", "", text),
                 ("text/html; charset=utf-8", "", html + "\r\n")]
        ctype = "multipart/alternative"
    else:
        blob = rng.randbytes(rng.randint(300, 1200))
        data = base64.encodebytes(blob).decode().replace("\n", "\r\n")
        parts = [("text/plain; charset=utf-8", "", text),
                 (f'application/pdf; name="doc{i}.pdf"',
                  f'Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment;'
                  f' filename="doc{i}.pdf"\r\n', data)]
        ctype = "multipart/mixed"
    body = "".join(f"--{b}\r\nContent-Type: {t}\r\n{extra}\r\n{content}"
                   for t, extra, content in parts) + f"--{b}--\r\n"
    return (head + f'Content-Type: {ctype}; boundary="{b}"\r\n\r\n' + body).encode()


@dataclass
class Mail:
    data: bytes
    when: float
    bits: int

    def maildir_flags(self) -> str:
        return "".join(c for bit, c in ((FLAGGED, "F"), (ANSWERED, "R"), (SEEN, "S"))
                       if self.bits & bit)


def mailbox(n: int, now: float, seed: int) -> Iterator[Mail]:
    """``n`` messages, oldest first, internal dates spread over the year before ``now``;
    about 70 % \\Seen, 10 % \\Answered, 5 % \\Flagged."""
    rng = random.Random(seed)
    dates = sorted(now - rng.random() * YEAR for _ in range(n))
    for i, when in enumerate(dates):
        bits = (SEEN if rng.random() < 0.7 else 0) | (ANSWERED if rng.random() < 0.1 else 0) \
            | (FLAGGED if rng.random() < 0.05 else 0)
        yield Mail(make_message(i, when, rng), when, bits)


# ---------------------------------------------------------------------- the client

LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n")


class ImapError(Exception):
    pass


class ImapClient:
    """Raw IMAP over one connection. ``command`` returns the whole answer (untagged
    responses and the tagged line) as bytes, found with C-level scans: the next literal
    announcement ``{n}`` at a line end is skipped over, the tagged line is the first
    ``CRLF tag SP`` outside any literal."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r, self.w = reader, writer
        self.buf = bytearray()
        self.n = 0

    @classmethod
    async def connect(cls, port: int) -> ImapClient:
        r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        c = cls(r, w)
        greeting = await c.line()
        if not greeting.startswith(b"* OK"):
            raise ImapError(f"greeting {greeting!r}")
        return c

    async def _fill(self) -> None:
        data = await self.r.read(1 << 18)
        if not data:
            raise ImapError("connection closed")
        self.buf += data

    async def line(self) -> bytes:
        """One response line (no literal expected)."""
        while (i := self.buf.find(b"\r\n")) < 0:
            await self._fill()
        out = bytes(self.buf[:i + 2])
        del self.buf[:i + 2]
        return out

    async def _answer(self, tag: bytes) -> bytes:
        buf, pos = self.buf, 0
        mark = b"\r\n" + tag + b" "
        while True:
            at_start = pos == 0 and buf.startswith(mark[2:])
            t = -2 if at_start else buf.find(mark, max(pos - 2, 0))
            m = LITERAL.search(buf, pos)
            if m is not None and (t == -1 or m.start() < t):
                end = m.end() + int(m.group(1))
                while len(buf) < end:
                    await self._fill()
                pos = end
                continue
            if t != -1:
                e = buf.find(b"\r\n", t + 2)
                if e != -1:
                    out = bytes(buf[:e + 2])
                    del buf[:e + 2]
                    return out
            elif m is None:  # no literal before the end: no need to scan this again
                pos = max(pos, len(buf) - 32)
            await self._fill()

    async def command(self, text: str, literal: bytes | None = None,
                      ok: bool = True) -> bytes:
        """Send ``text`` (and ``literal`` as a LITERAL+ ``{n+}``); the whole answer."""
        self.n += 1
        tag = f"a{self.n}".encode()
        if literal is None:
            self.w.write(tag + b" " + text.encode() + b"\r\n")
        else:
            self.w.write(tag + b" " + text.encode() + f" {{{len(literal)}+}}\r\n".encode()
                         + literal + b"\r\n")
        out = await self._answer(tag)
        if ok:
            status = out[out.rfind(tag + b" ") + len(tag) + 1:][:3]
            if status != b"OK ":
                raise ImapError(f"{text[:60]!r}: {out[-300:]!r}")
        return out

    async def login(self, user: str) -> None:
        await self.command(f'LOGIN {user} "{PASSWORD}"')

    async def idle(self) -> None:
        self.n += 1
        self.w.write(f"a{self.n} IDLE\r\n".encode())
        while not (await self.line()).startswith(b"+"):
            pass

    async def logout(self) -> None:
        try:
            await self.command("LOGOUT", ok=False)
        finally:
            self.w.close()


def untagged(answer: bytes) -> int:
    """How many untagged responses an answer holds."""
    return answer.count(b"\r\n* ") + answer.startswith(b"* ")


def exists_of(answer: bytes) -> int:
    m = re.search(rb"\* (\d+) EXISTS", answer)
    if m is None:
        raise ImapError("no EXISTS in SELECT answer")
    return int(m.group(1))


# ---------------------------------------------------------------------- servers


async def provision_postroom(data: Path, pw_hash: str, users: dict[str, list[Mail]]
                             ) -> None:
    store = await SqliteStore.open(data)
    await store.add_domain(DOMAIN)
    for address, mails in users.items():
        u = await store.add_user(address, pw_hash)
        for i in range(0, len(mails), 1000):
            await store.append_many(u.id, "INBOX", [(m.data, Flags(m.bits), m.when)
                                                    for m in mails[i:i + 1000]])
    await store.close()


def provision_dovecot(d: Dovecot, users: dict[str, list[Mail]]) -> None:
    for address, mails in users.items():
        for m in mails:
            d.put(address, m.data, m.maildir_flags(), m.when)


def start_postroom(root: Path, data: Path, port: int) -> subprocess.Popen[bytes]:
    cfg = root / "postroom.toml"
    cfg.write_text(f'hostname = "localhost"\ndata_dir = "{data}"\nworkers = {WORKERS}\n'
                   f'[listen]\nimap = ["127.0.0.1:{port}"]\n'
                   '[auth]\nplaintext_networks = ["127.0.0.0/8"]\n'
                   '[limits]\nmax_connections = 10000\nmax_connections_per_ip = 10000\n')
    return serve_postroom(cfg, port)


@dataclass
class Server:
    name: str
    port: int
    pids: Callable[[], list[int]]
    pid: int | None = None  # the Python process to profile (Postroom only)
    restart: Callable[[], None] | None = None  # a fresh process on the same data


class PostroomProcess:
    """``python -m postroom serve`` on one IMAP port, restartable on the same data."""

    def __init__(self, root: Path, data: Path) -> None:
        self.root, self.data, self.port = root, data, free_port()
        self.proc = start_postroom(root, data, self.port)

    def restart(self) -> None:
        stop_process(self.proc)
        self.proc = start_postroom(self.root, self.data, self.port)

    def server(self) -> Server:
        return Server("Postroom", self.port, lambda: process_tree(self.proc.pid),
                      self.proc.pid if WORKERS == 1 else None, self.restart)


# ---------------------------------------------------------------------- profiling


PROFILE_GIL = False  # --gil
WORKERS = 1  # --workers


@contextmanager
def profiled(server: Server, out: Path | None, phase: str) -> Iterator[None]:
    """Run the block under ``py-spy record`` when profiling Postroom."""
    if out is None or server.pid is None:
        yield
        return
    path = out / f"{phase}.txt"
    gil = ["--gil"] if PROFILE_GIL else []
    spy = subprocess.Popen(["py-spy", "record", "--pid", str(server.pid), "--rate", "200",
                            "--format", "raw", "--nonblocking", *gil, "--output", str(path)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # let it attach
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)
        print_hot(path)


def print_hot(path: Path, top: int = 12) -> None:
    """Top frames by own samples (leaf) and by inclusive samples (any depth)."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    if not path.exists():
        print(f"    (no profile written to {path})")
        return
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if "(" in f and not f.startswith(
            ("process ", "thread "))]
        total += n
        if frames:
            own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    print(f"    profile {path.name}: {total} samples")
    for title, counter in (("own", own), ("inclusive", incl)):
        print(f"      top {title}:")
        for frame, n in counter.most_common(top):
            print(f"        {100 * n / max(total, 1):5.1f}%  {frame}")


# ---------------------------------------------------------------------- (a) big mailbox


async def timed(op: Callable[[], Awaitable[bytes]]) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    out = await op()
    return (time.perf_counter() - t0) * 1000, out


async def big_mailbox(srv: list[Server], reps: int, since: str, profile: Path | None
                      ) -> dict[str, dict[str, float]]:
    """The (a) operations, interleaved: each repetition runs on every server in turn, so
    that a burst of load from elsewhere on a shared machine hits both alike."""
    clients = {}
    for s in srv:
        clients[s.name] = c = await ImapClient.connect(s.port)
        await c.login(BIG)
    runs: dict[str, dict[str, list[float]]] = {s.name: collections.defaultdict(list)
                                               for s in srv}
    counts: dict[str, dict[str, int]] = {s.name: {} for s in srv}
    exists: dict[str, int] = {}

    async def op(s: Server, key: str, command: str) -> None:
        t0 = time.perf_counter()
        ans = await clients[s.name].command(command)
        runs[s.name][key].append((time.perf_counter() - t0) * 1000)
        if key == "select (first)":
            exists[s.name] = exists_of(ans)
        elif key.startswith("uid search"):
            counts[s.name][key] = len(ans.split(b"\r\n", 1)[0].split()) - 2
        elif not key.startswith(("select", " ")):
            counts[s.name][key] = untagged(ans)

    with profiled(srv[0], profile, "a-Postroom"):
        for s in srv:
            await op(s, "select (first)", "SELECT INBOX")
        n = min(exists.values())
        rng = random.Random(7)
        for _ in range(reps):
            lo = rng.randint(1, max(1, n - WINDOW + 1))
            window = f"FETCH {lo}:{min(n, lo + WINDOW - 1)} (ENVELOPE BODYSTRUCTURE)"
            for s in srv:
                await op(s, "select", "SELECT INBOX")
                await op(s, "uid fetch 1:* flags", "UID FETCH 1:* (FLAGS)")
                await op(s, "fetch 50 envelope+bodystructure", window)
                await op(s, "  the same 50 again", window)
                await op(s, "uid search unseen since", f"UID SEARCH UNSEEN SINCE {since}")
    for s in srv:
        await clients[s.name].logout()
        print(f"  {s.name}: {exists[s.name]} messages; results: "
              + ", ".join(f"{k} -> {v}" for k, v in counts[s.name].items()))
    return {name: {k: statistics.median(v) for k, v in r.items()} for name, r in runs.items()}


# ---------------------------------------------------------------------- (b) mixed load


class Tally:
    """Latency of each command kind over all clients (ms)."""

    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = collections.defaultdict(list)

    async def run(self, kind: str, op: Awaitable[bytes]) -> bytes:
        t0 = time.perf_counter()
        out = await op
        self.ms[kind].append((time.perf_counter() - t0) * 1000)
        return out

    def commands(self) -> int:
        return sum(len(v) for v in self.ms.values())

    def summary(self) -> str:
        return "  ".join(f"{k} {statistics.mean(v):.1f}" for k, v in self.ms.items())


async def mail_cycle(c: ImapClient, t: Tally, new: bytes) -> None:
    """LIST, STATUS, SELECT, FETCH, STORE, EXPUNGE, APPEND: seven commands."""
    await t.run("LIST", c.command('LIST "" "*"'))
    await t.run("STATUS", c.command("STATUS INBOX (MESSAGES UNSEEN UIDNEXT)"))
    n = exists_of(await t.run("SELECT", c.command("SELECT INBOX")))
    await t.run("FETCH", c.command(
        f"FETCH {max(1, n - 9)}:{n} (UID FLAGS RFC822.SIZE ENVELOPE)"))
    await t.run("STORE", c.command("STORE 1 +FLAGS.SILENT (\\Deleted)"))
    await t.run("EXPUNGE", c.command("EXPUNGE"))
    await t.run("APPEND", c.command("APPEND INBOX (\\Seen)", new))


async def mixed(s: Server, users: list[str], cycles: int, keep_session: bool,
                new: bytes, profile: Path | None) -> tuple[float, float]:
    """(commands/s, server CPU ms per command)."""
    t = Tally()

    async def with_logins(user: str) -> None:
        for _ in range(cycles):
            c = await t.run("connect", ImapClient.connect(s.port))  # type: ignore[arg-type]
            await t.run("LOGIN", c.login(user))  # type: ignore[arg-type]
            await mail_cycle(c, t, new)
            await t.run("LOGOUT", c.logout())  # type: ignore[arg-type]

    async def kept(user: str) -> None:
        c = await ImapClient.connect(s.port)
        await c.login(user)
        for _ in range(cycles):
            await mail_cycle(c, t, new)
        await c.logout()

    phase = f"b-{'session' if keep_session else 'login'}-{s.name}-{time.monotonic():.0f}"
    with profiled(s, profile, phase):
        cpu0, own0 = cpu_seconds(s.pids()), time.process_time()
        t0 = time.perf_counter()
        await asyncio.gather(*((kept if keep_session else with_logins)(u) for u in users))
        elapsed = time.perf_counter() - t0
        own = time.process_time() - own0
        await asyncio.sleep(0.5)  # let exited session processes be reaped and counted
        cpu = cpu_seconds(s.pids()) - cpu0
    ms = t.ms.pop("connect", [])
    print(f"  {s.name} {'kept sessions' if keep_session else 'login..logout'}: mean ms per"
          f" command: {t.summary()}" + (f"  (connect {statistics.mean(ms):.1f})" if ms else "")
          + f"\n    {elapsed:.1f} s; server CPU {cpu:.1f} s ({100 * cpu / elapsed:.0f} %),"
          f" load generator CPU {own:.1f} s")
    return t.commands() / elapsed, 1000 * cpu / t.commands()


# ---------------------------------------------------------------------- (c) IDLE memory


async def idle_memory(s: Server, users: list[str], settle: float) -> dict[str, float]:
    """Memory before, with half and with all of ``users`` in IDLE. The second half's
    growth per session is the marginal cost, free of one-off growth (thread pools,
    argon2's 19 MB per concurrent verification kept by malloc arenas, caches)."""
    if s.restart is not None:  # a baseline without what (a) and (b) left in memory
        s.restart()
    c = await ImapClient.connect(s.port)  # one login first: code paths loaded, caches on
    await c.login(users[0])
    await c.command("SELECT INBOX")
    await c.logout()
    await asyncio.sleep(0.5)
    base_rss, base_pss = memory_kb(s.pids())
    clients: list[ImapClient] = []
    gate = asyncio.Semaphore(16)

    async def open_one(user: str) -> None:
        async with gate:
            c = await ImapClient.connect(s.port)
            await c.login(user)
            await c.command("SELECT INBOX")
            await c.idle()
            clients.append(c)

    async def close_one(c: ImapClient) -> None:
        async with gate:
            c.w.write(b"DONE\r\n")
            await c.logout()

    half = len(users) // 2
    t0 = time.perf_counter()
    await asyncio.gather(*(open_one(u) for u in users[:half]))
    await asyncio.sleep(settle)
    half_rss, half_pss = memory_kb(s.pids())
    await asyncio.gather(*(open_one(u) for u in users[half:]))
    ramp = time.perf_counter() - t0 - settle
    await asyncio.sleep(settle)
    rss, pss = memory_kb(s.pids())
    procs = len(s.pids())
    n = len(clients)
    await asyncio.gather(*(close_one(c) for c in clients))
    print(f"  {s.name}: {n} IDLE sessions opened in {ramp:.1f} s; {procs} processes")
    rest = max(1, n - half)
    return {"baseline RSS MB": base_rss / 1024, f"RSS MB with {n} IDLE": rss / 1024,
            "RSS KB/session (average)": (rss - base_rss) / n,
            "RSS KB/session (marginal)": (rss - half_rss) / rest,
            "baseline PSS MB": base_pss / 1024, f"PSS MB with {n} IDLE": pss / 1024,
            "PSS KB/session (average)": (pss - base_pss) / n,
            "PSS KB/session (marginal)": (pss - half_pss) / rest}


# ---------------------------------------------------------------------- report


def table(title: str, note: str, rows: dict[str, dict[str, float]]) -> None:
    names = list(rows)
    keys = list(rows[names[0]])
    print(f"\n{title} ({note})")
    print(f"  {'':34}" + "".join(f"{n:>12}" for n in names)
          + ("   Postroom/Dovecot" if len(names) == 2 else ""))
    for k in keys:
        vals = [rows[n].get(k, float("nan")) for n in names]
        ratio = f"   {vals[0] / vals[1]:8.2f}x" if len(vals) == 2 and vals[1] else ""
        print(f"  {k:34}" + "".join(f"{v:12.2f}" if abs(v) < 10 else f"{v:12.1f}"
                                     for v in vals) + ratio)


@asynccontextmanager
async def servers(args: argparse.Namespace, root: Path, users: dict[str, list[Mail]],
                  pw_hash: str) -> AsyncIterator[list[Server]]:
    data = root / "data"
    t0 = time.perf_counter()
    await provision_postroom(data, pw_hash, users)
    print(f"provisioned Postroom in {time.perf_counter() - t0:.1f} s")
    pr = PostroomProcess(root, data)
    out = [pr.server()]
    try:
        if args.no_dovecot or not Dovecot.available():
            print("Dovecot not run (apt-get install dovecot-imapd): no comparison")
            yield out
            return
        with Dovecot({u: "{ARGON2ID}" + pw_hash for u in users}, raw_passwords=True,
                     extra_conf=DOVECOT_EXTRA) as d:
            t0 = time.perf_counter()
            await asyncio.to_thread(provision_dovecot, d, users)
            print(f"provisioned Dovecot maildirs in {time.perf_counter() - t0:.1f} s")
            out.append(Server("Dovecot", d.imap_port, d.pids))
            yield out
    finally:
        stop_process(pr.proc)


def raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--login-cycles", type=int, default=10)
    ap.add_argument("--session-cycles", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--parts", default="abc")
    ap.add_argument("--no-dovecot", action="store_true")
    ap.add_argument("--profile", type=Path, help="py-spy raw profiles of Postroom here")
    ap.add_argument("--gil", action="store_true", help="profile only the GIL holder")
    ap.add_argument("--workers", type=int, default=1, help="Postroom worker processes")
    a = ap.parse_args()
    raise_fd_limit(4 * a.idle + 1024)
    if a.profile:
        a.profile.mkdir(parents=True, exist_ok=True)
    global PROFILE_GIL, WORKERS
    PROFILE_GIL, WORKERS = a.gil, a.workers
    now = float(calendar.timegm((*time.gmtime()[:3], 12, 0, 0, 0, 0, 0)))
    since = time.strftime("%d-%b-%Y", time.gmtime(now - YEAR / 2))
    users: dict[str, list[Mail]] = {}
    if "a" in a.parts:
        users[BIG] = list(mailbox(a.messages, now, 1))
    mix = [f"mix{i}@{DOMAIN}" for i in range(a.clients)] if "b" in a.parts else []
    idle = [f"idle{i}@{DOMAIN}" for i in range(a.idle)] if "c" in a.parts else []
    for i, u in enumerate(mix):
        users[u] = list(mailbox(100, now, 100 + i))
    for i, u in enumerate(idle):
        users[u] = list(mailbox(10, now, 10_000 + i))
    new = make_message(0, now, random.Random(3))
    pw_hash = hash_password(PASSWORD)
    with tempfile.TemporaryDirectory(prefix="imap-bench-") as tmp:
        async with servers(a, Path(tmp), users, pw_hash) as srv:
            if "a" in a.parts:
                print(f"\n(a) one mailbox of {a.messages} messages, median of {a.reps}")
                table("(a) big mailbox", "ms, median; lower is better",
                      await big_mailbox(srv, a.reps, since, a.profile))
            if "b" in a.parts:
                print(f"\n(b) {a.clients} clients, {a.rounds} rounds alternating servers;"
                      " the best round of each")
                rows = {s.name: {} for s in srv}
                for keep, label, cycles in ((False, "login..logout", a.login_cycles),
                                            (True, "kept sessions", a.session_cycles)):
                    for _ in range(a.rounds):
                        for s in srv:
                            r = rows[s.name]
                            rate, cpu = await mixed(s, mix, cycles, keep, new, a.profile)
                            if rate > r.get(f"{label}: cmds/s", 0):
                                r[f"{label}: cmds/s"] = rate
                                r[f"{label}: server CPU ms/cmd"] = cpu
                table("(b) mixed load", "commands/s: higher is better; server CPU per"
                      " command: lower is better", rows)
            if "c" in a.parts:
                print(f"\n(c) {a.idle} IDLE sessions")
                rows = {s.name: await idle_memory(s, idle, 3.0) for s in srv}
                table("(c) memory", "lower is better", rows)


if __name__ == "__main__":
    asyncio.run(main())
