"""Shared by the hardening tests: the repository root on ``sys.path`` (for ``fuzz``),
process RSS, and loopback sockets from chosen 127.x source addresses."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def rss_kib(pid: int | str = "self") -> int:
    """Resident set size of a process, from /proc/<pid>/status (KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def connect_from(source: str, port: int, timeout: float = 5.0) -> socket.socket:
    """A TCP connection to 127.0.0.1:``port`` from ``source`` (another 127.x address,
    so per-IP limits see distinct clients)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_until(s: socket.socket, marker: bytes, limit: int = 1 << 20) -> bytes:
    """Read until ``marker`` shows up (or EOF); raises on timeout."""
    data = b""
    while marker not in data and len(data) < limit:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data
