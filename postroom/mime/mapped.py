"""A memory-mapped message that ``analyze`` can read like ``bytes``.

Large messages (tens of MB) are analysed straight from their file so the body is never
copied whole into memory: only header blocks and the slices the analyser asks for are.
Implements exactly the operations ``parser`` and ``preview`` use.
"""

from __future__ import annotations

import mmap
from typing import overload

_CHUNK = 1 << 20


class MappedBytes:
    def __init__(self, mm: mmap.mmap) -> None:
        self._mm = mm

    def __len__(self) -> int:
        return len(self._mm)

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> bytes: ...

    def __getitem__(self, index: int | slice) -> int | bytes:
        return self._mm[index]

    def find(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        return self._mm.find(sub, start, len(self._mm) if end is None else end)

    def startswith(self, prefix: bytes, start: int = 0) -> bool:
        return self._mm[start:start + len(prefix)] == prefix

    def count(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        stop = len(self._mm) if end is None else min(end, len(self._mm))
        if len(sub) == 1:  # chunked: no match can straddle two chunks
            return sum(self._mm[i:min(i + _CHUNK, stop)].count(sub)
                       for i in range(start, stop, _CHUNK))
        n, pos = 0, self.find(sub, start, stop)
        while pos >= 0:
            n += 1
            pos = self.find(sub, pos + len(sub), stop)
        return n
