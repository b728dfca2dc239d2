"""Incoming message content, in memory while small, in a temporary file beyond.

Theory of operation: the SMTP shell writes the Received header and then every
``DataChunk`` into a ``SpooledMessage``. Up to ``memory_limit`` bytes stay in a
``bytearray``; the write that would cross it moves everything into a private
temporary file in the spool directory (mode 0600, ``tempfile``), and later writes
append there. So a session costs at most ``memory_limit`` of RAM however large its
message (50 sessions x 25 MB stay near 50 MB). The backend reads the content back with
``open()`` (a fresh reader each time) or ``read_all()``, or takes ``path`` to link or
copy the file. ``close()`` deletes the file; a spool is single-use.

Durability is not this module's job: the file is not fsync'd. The backend's
``deliver`` makes the message durable in the store before it returns.
"""

from __future__ import annotations

import io
import os
import tempfile
from types import TracebackType
from typing import BinaryIO

DEFAULT_MEMORY_LIMIT = 1024 * 1024


class SpooledMessage:
    """Write-once message content; see the module docstring."""

    def __init__(
        self,
        spool_dir: str | os.PathLike[str] | None = None,
        *,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        self.spool_dir = os.fspath(spool_dir) if spool_dir is not None else None
        self.memory_limit = memory_limit
        self.path: str | None = None
        self._memory: bytearray | None = bytearray()
        self._file: BinaryIO | None = None
        self._size = 0
        self._finished = False
        self._closed = False

    @property
    def size(self) -> int:
        """Bytes written so far (the whole message once ``finish`` was called)."""
        return self._size

    @property
    def in_memory(self) -> bool:
        return self.path is None

    def write(self, data: bytes) -> None:
        """Append ``data``; spills to disk when the memory limit would be crossed."""
        if self._finished or self._closed:
            raise ValueError("spool is finished")
        if not data:
            return
        if self._memory is not None:
            if len(self._memory) + len(data) <= self.memory_limit:
                self._memory += data
                self._size += len(data)
                return
            self._spill()
        assert self._file is not None
        self._file.write(data)
        self._size += len(data)

    def _spill(self) -> None:
        fd, path = tempfile.mkstemp(prefix="smtp-", suffix=".msg", dir=self.spool_dir)
        self.path = path
        self._file = os.fdopen(fd, "wb")
        assert self._memory is not None
        self._file.write(self._memory)
        self._memory = None

    def finish(self) -> None:
        """No more writes: flush the file so readers see everything."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._finished = True

    def open(self) -> BinaryIO:
        """A new reader positioned at the start (call after ``finish``)."""
        if self._closed:
            raise ValueError("spool is closed")
        if not self._finished:
            self.finish()
        if self._memory is not None:
            return io.BytesIO(bytes(self._memory))
        assert self.path is not None
        return open(self.path, "rb")  # the caller closes it

    def read_all(self) -> bytes:
        """The whole content (beware: loads a spilled file into memory)."""
        if self._memory is not None and not self._closed:
            return bytes(self._memory)
        with self.open() as f:
            return f.read()

    def close(self) -> None:
        """Release memory and delete the temporary file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._file is not None:
            self._file.close()
            self._file = None
        self._memory = None
        if self.path is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> SpooledMessage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
