"""Message bodies too large to keep inline in SQLite live as files under ``blobs/``.

Durability (DESIGN.md section 3): a body file is written and fsync'd, and its directory
entry fsync'd, *before* the database row that names it is committed. A crash in between
leaves an orphan file, never a row without its file; ``sweep_orphans`` removes old
orphans when the server starts (never young ones: a body written by a running process
is an orphan until its row commits, and CLI commands open the store while the server
runs). Files are named by a random token and never rewritten (messages are immutable).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        created = False
        for i in range(256):
            d = root / f"{i:02x}"
            if not d.exists():
                d.mkdir()
                created = True
        if created:
            _fsync_dir(root)

    def path(self, name: str) -> Path:
        return self.root / name[:2] / name

    def write(self, chunks: Iterable[bytes]) -> str:
        """Write a new file from ``chunks``, fsync it and its directory; return its name."""
        name = secrets.token_hex(16)
        p = self.path(name)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            p.unlink(missing_ok=True)
            raise
        os.close(fd)
        _fsync_dir(p.parent)
        return name

    def read(self, name: str, start: int = 0, end: int | None = None) -> bytes:
        with open(self.path(name), "rb") as f:
            if start:
                f.seek(start)
            return f.read() if end is None else f.read(max(0, end - start))

    def remove(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def sweep_orphans(self, known: set[str], older_than: float) -> int:
        """Remove the files not in ``known`` last modified before ``older_than``."""
        n = 0
        for d in self.root.iterdir():
            if not d.is_dir():
                continue
            for f in d.iterdir():
                if f.name in known:
                    continue
                try:
                    if f.stat().st_mtime < older_than:
                        f.unlink()
                        n += 1
                except FileNotFoundError:
                    pass
        return n


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
