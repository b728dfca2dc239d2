"""POP3 benchmark, Postroom and Dovecot side by side on this machine.

    python bench/pop3_bench.py [--small 1000] [--large 20] [--logins 200] [--clients 4]

Measures RETR throughput (messages/s, MB/s) over 1,000 messages of 5 KB and 20 of 5 MB,
and login-STAT-QUIT cycles/s with several concurrent clients. Both servers check the
same argon2id password hash, serve the same messages and run as separate processes;
the load generator is one asyncio process. Dovecot runs only when it is installed
(Debian dovecot-pop3d).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from peers import Dovecot, free_port, serve_postroom, stop_process

from postroom.auth.passwords import hash_password, make_scram_credentials
from postroom.store.sqlite import SqliteStore

PASSWORD = "bench password"


def message(i: int, size: int) -> bytes:
    head = (f"From: Sender <sender@example.org>\r\nTo: user@example.com\r\n"
            f"Subject: message {i}\r\nMessage-ID: <{i}.{size}@bench>\r\n\r\n").encode()
    line = b"The quick brown fox jumps over the lazy dog. 0123456789 abcdefghijklmnopq\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


class Client:
    """A minimal POP3 client: enough to log in, STAT, RETR and QUIT."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r, self.w = reader, writer

    @classmethod
    async def connect(cls, port: int) -> Client:
        r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
        c = cls(r, w)
        await c.line()
        return c

    async def line(self) -> bytes:
        ln = await self.r.readline()
        if not ln.startswith(b"+"):
            raise RuntimeError(f"server said {ln!r}")
        return ln

    async def cmd(self, text: str) -> bytes:
        self.w.write(text.encode() + b"\r\n")
        return await self.line()

    async def login(self, user: str) -> None:
        await self.cmd(f"USER {user}")
        await self.cmd(f"PASS {PASSWORD}")

    async def retr(self, n: int) -> int:
        self.w.write(f"RETR {n}\r\n".encode())
        await self.line()
        data = await self.r.readuntil(b"\r\n.\r\n")
        return len(data)

    async def quit(self) -> None:
        await self.cmd("QUIT")
        self.w.close()


async def retr_all(port: int, user: str, count: int) -> tuple[float, int]:
    c = await Client.connect(port)
    await c.login(user)
    t0 = time.perf_counter()
    total = 0
    for n in range(1, count + 1):
        total += await c.retr(n)
    elapsed = time.perf_counter() - t0
    await c.quit()
    return elapsed, total


async def login_cycles(port: int, cycles: int, clients: int) -> float:
    """Each client logs in as its own user (POP3 allows one session per maildrop)."""
    async def one(k: int, who: str) -> None:
        for _ in range(k):
            c = await Client.connect(port)
            await c.login(who)
            await c.cmd("STAT")
            await c.quit()

    t0 = time.perf_counter()
    await asyncio.gather(*(one(cycles // clients, f"login{i}@example.com")
                           for i in range(clients)))
    return (cycles // clients * clients) / (time.perf_counter() - t0)


async def measure(name: str, port: int, small: int, large: int, logins: int,
                  clients: int) -> dict[str, float]:
    el, total = await retr_all(port, "small@example.com", small)
    r = {"small_msgs": small / el, "small_mb": total / el / 1e6}
    el, total = await retr_all(port, "large@example.com", large)
    r["large_msgs"], r["large_mb"] = large / el, total / el / 1e6
    r["logins"] = await login_cycles(port, logins, clients)
    print(f"{name:>9}: RETR 5 KB {r['small_msgs']:8.0f} msg/s {r['small_mb']:7.1f} MB/s | "
          f"RETR 5 MB {r['large_msgs']:6.1f} msg/s {r['large_mb']:7.1f} MB/s | "
          f"login-STAT-QUIT {r['logins']:6.1f}/s")
    return r


async def provision(data: Path, pw_hash: str, small: int, large: int, clients: int) -> None:
    store = await SqliteStore.open(data)
    await store.add_domain("example.com")
    for user, n, size in (("small", small, 5000), ("large", large, 5_000_000)):
        u = await store.add_user(f"{user}@example.com", pw_hash,
                                 make_scram_credentials(PASSWORD))
        for i in range(n):
            await store.append(u.id, "INBOX", message(i, size))
    for i in range(clients):
        u = await store.add_user(f"login{i}@example.com", pw_hash)
        for j in range(10):
            await store.append(u.id, "INBOX", message(j, 5000))
    await store.close()


def start_postroom(root: Path, port: int) -> subprocess.Popen[bytes]:
    cfg = root / "postroom.toml"
    cfg.write_text(f'hostname = "localhost"\ndata_dir = "{root / "data"}"\n'
                   f'[listen]\npop3 = ["127.0.0.1:{port}"]\n'
                   '[auth]\nplaintext_networks = ["127.0.0.0/8"]\n'
                   '[limits]\nmax_connections_per_ip = 10000\n')
    return serve_postroom(cfg, port)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--large", type=int, default=20)
    ap.add_argument("--logins", type=int, default=200)
    ap.add_argument("--clients", type=int, default=4)
    a = ap.parse_args()
    pw_hash = hash_password(PASSWORD)
    results = {}
    with tempfile.TemporaryDirectory(prefix="pop3-bench-") as tmp:
        root = Path(tmp)
        await provision(root / "data", pw_hash, a.small, a.large, a.clients)
        port = free_port()
        proc = start_postroom(root, port)
        try:
            results["postroom"] = await measure("Postroom", port, a.small, a.large, a.logins,
                                                a.clients)
        finally:
            stop_process(proc)
    if Dovecot.available():
        names = ["small", "large"] + [f"login{i}" for i in range(a.clients)]
        users = {f"{n}@example.com": "{ARGON2ID}" + pw_hash for n in names}
        with Dovecot(users, raw_passwords=True) as d:
            for i in range(a.small):
                d.deliver("small@example.com", message(i, 5000))
            for i in range(a.large):
                d.deliver("large@example.com", message(i, 5_000_000))
            for i in range(a.clients):
                for j in range(10):
                    d.deliver(f"login{i}@example.com", message(j, 5000))
            results["dovecot"] = await measure("Dovecot", d.pop3_port, a.small, a.large,
                                               a.logins, a.clients)
        p, d_ = results["postroom"], results["dovecot"]
        print("    ratio: " + "  ".join(f"{k} {p[k] / d_[k]:.2f}x" for k in p))
    else:
        print("Dovecot not installed (apt-get install dovecot-pop3d): no comparison")


if __name__ == "__main__":
    asyncio.run(main())
