"""Postroom's memory under large messages: many sessions each sending one big message.

    python bench/smtp_rss.py [--sessions 50] [--size 25000000] [--interval 0.02]

Starts Postroom (``[limits] message_size = 52428800``) on a loopback port, opens
``--sessions`` SMTP sessions, then all send one ``--size`` message at once (MAIL + RCPT
+ DATA pipelined, content in 1 MB writes). A thread samples the server's
/proc/PID/status (VmRSS, split into RssAnon and RssFile) every ``--interval`` seconds;
VmHWM is the kernel's own peak. The goal: peak RSS under 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from peers import SmtpLoadClient, free_port, stop_process
from smtp_bench import (
    SENDER,
    USER,
    message_body,
    message_head,
    run_loop,
    start_postroom,
)

GOAL_MB = 300
CHUNK = 1 << 20


def status_kb(pid: int) -> dict[str, int]:
    """The ``Vm*``/``Rss*`` lines of /proc/PID/status, in kB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.startswith(("Vm", "Rss")):
                out[key] = int(value.split()[0])
    return out


class RssSampler(threading.Thread):
    """Samples a process's memory until stopped; keeps the peaks."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.stop_flag = threading.Event()
        self.samples: list[tuple[float, dict[str, int]]] = []

    def run(self) -> None:
        t0 = time.perf_counter()
        while not self.stop_flag.is_set():
            self.samples.append((time.perf_counter() - t0, status_kb(self.pid)))
            self.stop_flag.wait(self.interval)

    def peak(self, key: str) -> tuple[float, int]:
        """(seconds into the run, kB) of the highest ``key`` sample."""
        return max(((t, s[key]) for t, s in self.samples), key=lambda x: x[1])

    def stop(self) -> None:
        self.stop_flag.set()
        self.join()


async def send_big(c: SmtpLoadClient, k: int, body: bytes) -> bool:
    head = message_head(k, 0)
    if not await c.begin(SENDER, USER, len(head) + len(body)):
        print(f"session {k}: refused")
        return False
    c.w.write(head)
    view = memoryview(body)
    for off in range(0, len(body), CHUNK):
        c.w.write(view[off:off + CHUNK])
        await c.w.drain()
    c.w.write(b".\r\n")
    code = await c.reply()
    if code != 250:
        print(f"session {k}: final reply {code}")
    return code == 250


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--size", type=int, default=25_000_000)
    ap.add_argument("--interval", type=float, default=0.02)
    a = ap.parse_args()
    body = message_body(a.size)
    with tempfile.TemporaryDirectory(prefix="smtp-rss-") as tmp:
        port = free_port()
        proc = start_postroom(Path(tmp), port, message_size=52_428_800)
        try:
            idle = status_kb(proc.pid)
            clients = await asyncio.gather(*(SmtpLoadClient.connect(port)
                                             for _ in range(a.sessions)))
            connected = status_kb(proc.pid)
            sampler = RssSampler(proc.pid, a.interval)
            sampler.start()
            t0 = time.perf_counter()
            ok = await asyncio.gather(*(send_big(c, k, body) for k, c in enumerate(clients)))
            elapsed = time.perf_counter() - t0
            await asyncio.sleep(0.2)
            sampler.stop()
            final = status_kb(proc.pid)
            await asyncio.gather(*(c.quit() for c in clients))
        finally:
            stop_process(proc)
    mb = 1024
    t_rss, peak_rss = sampler.peak("VmRSS")
    _, peak_anon = sampler.peak("RssAnon")
    _, peak_file = sampler.peak("RssFile")
    print(f"{sum(ok)}/{a.sessions} messages of {a.size / 1e6:.0f} MB accepted in "
          f"{elapsed:.1f} s ({sum(ok) * a.size / elapsed / 1e6:.0f} MB/s), "
          f"{len(sampler.samples)} samples")
    print(f"RSS idle {idle['VmRSS'] / mb:.0f} MB, after {a.sessions} EHLOs "
          f"{connected['VmRSS'] / mb:.0f} MB, after the run {final['VmRSS'] / mb:.0f} MB")
    print(f"peak sampled VmRSS {peak_rss / mb:.0f} MB at {t_rss:.1f} s "
          f"(peak RssAnon {peak_anon / mb:.0f} MB, peak RssFile {peak_file / mb:.0f} MB)")
    hwm = final["VmHWM"] / mb
    print(f"VmHWM (kernel peak) {hwm:.0f} MB; goal < {GOAL_MB} MB: "
          f"{'met' if max(hwm, peak_rss / mb) < GOAL_MB else 'NOT met'}")


if __name__ == "__main__":
    run_loop(main())
