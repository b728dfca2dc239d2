"""analyze() over a memory-mapped file gives exactly what it gives over bytes."""

from __future__ import annotations

import mmap
from pathlib import Path

import pytest
from mime_helpers import CORPUS as CORPUS_DIR

from postroom.mime import analyze, normalize_crlf
from postroom.mime.mapped import MappedBytes

CORPUS = sorted(CORPUS_DIR.glob("*/*.eml"))


def mapped_info(tmp_path: Path, data: bytes) -> bytes:
    f = tmp_path / "m.eml"
    f.write_bytes(data)
    with open(f, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        return analyze(MappedBytes(mm)).to_json()


@pytest.mark.parametrize("path", CORPUS[::4], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_same_through_mmap(tmp_path: Path, path: Path) -> None:
    data = normalize_crlf(path.read_bytes())
    if data:
        assert mapped_info(tmp_path, data) == analyze(data).to_json()


def test_large_text_line_counts_across_chunks(tmp_path: Path) -> None:
    body = b"line of text\r\n" * 300_000  # > 4 MiB, several 1 MiB chunks
    data = (b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n"
            b"Content-Type: text/plain\r\n\r\n" + body + b"\r\n--XX--\r\n")
    assert mapped_info(tmp_path, data) == analyze(data).to_json()


def test_count_and_find_semantics(tmp_path: Path) -> None:
    f = tmp_path / "x"
    f.write_bytes(b"ab\r\nab\r\nab")
    with open(f, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        m = MappedBytes(mm)
        src = b"ab\r\nab\r\nab"
        for sub in (b"\n", b"ab", b"\r\n"):
            for start in range(len(src)):
                assert m.count(sub, start, len(src)) == src.count(sub, start, len(src))
                assert m.find(sub, start) == src.find(sub, start)
        assert m.startswith(b"ab", 4) and not m.startswith(b"ab", 5)
        assert m[0:2] == b"ab" and len(m) == len(src)
